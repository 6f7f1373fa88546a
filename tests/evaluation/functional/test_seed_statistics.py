"""Seed statistics: mean ± sample std and the paired t interval, against hand computations."""
import math

import pytest

from coupleface.evaluation.functional.seed_statistics import mean_std, paired_difference


def test_mean_std_is_the_sample_std():
    out = mean_std([90.0, 91.0, 95.0])
    assert out['mean'] == pytest.approx(92.0)
    # deviations -2, -1, 3 -> squares 4 + 1 + 9 = 14, / (3 - 1) = 7
    assert out['std'] == pytest.approx(math.sqrt(7.0)) and out['n'] == 3
    assert math.isnan(mean_std([1.0])['std'])
    with pytest.raises(ValueError, match='no values'):
        mean_std([])


def test_paired_interval_by_hand():
    # differences 1.0, 1.5, 2.0: mean 1.5, std 0.5; t(0.975, 2) = 4.302653 (t table)
    d = paired_difference({0: 91.0, 1: 92.0, 2: 93.0}, {0: 90.0, 1: 90.5, 2: 91.0})
    half = 4.302653 * 0.5 / math.sqrt(3)
    assert d['mean'] == pytest.approx(1.5) and d['std'] == pytest.approx(0.5)
    assert d['low'] == pytest.approx(1.5 - half, abs=1e-5)
    assert d['high'] == pytest.approx(1.5 + half, abs=1e-5)
    assert d['resolved'] and d['n'] == 3


def test_pairing_removes_shared_seed_variation():
    # the seeds move both methods together by +-3; the method is always 0.4 better
    base = {0: 88.0, 1: 91.0, 2: 94.0, 3: 90.0, 4: 89.0}
    method = {s: v + 0.4 for s, v in base.items()}
    d = paired_difference(method, base)
    assert d['mean'] == pytest.approx(0.4) and d['std'] == pytest.approx(0.0, abs=1e-12)
    assert d['resolved']
    # a spread as large as the effect: unresolved (t(0.975, 4) = 2.776445)
    noisy = {0: 89.0, 1: 90.5, 2: 95.0, 3: 89.5, 4: 89.0}  # d = 1, -0.5, 1, -0.5, 0
    d = paired_difference(noisy, base)
    assert d['mean'] == pytest.approx(0.2)
    half = 2.776445 * math.sqrt(((0.8 ** 2) * 2 + (0.7 ** 2) * 2 + 0.2 ** 2) / 4) / math.sqrt(5)
    assert d['high'] == pytest.approx(0.2 + half, abs=1e-5) and not d['resolved']


def test_only_common_seeds_and_bad_input():
    d = paired_difference({0: 2.0, 1: 3.0, 7: 100.0}, {0: 1.0, 1: 1.0, 5: 0.0})
    assert d['n'] == 2 and d['mean'] == pytest.approx(1.5)
    one = paired_difference({0: 2.0}, {0: 1.0})
    assert one['mean'] == 1.0 and math.isnan(one['low']) and not one['resolved']
    with pytest.raises(ValueError, match='no common seed'):
        paired_difference({0: 1.0}, {1: 1.0})
    with pytest.raises(ValueError, match='confidence'):
        paired_difference({0: 1.0}, {0: 1.0}, confidence=95)
