"""Benchmark table statistics against hand computations."""
import math

import pytest

from coupleface.evaluation.benchmark_table import (
    against_reference,
    all_pairs_figures,
    differences_markdown,
    flatten_figures,
    markdown,
    summarise,
)

RUNS = {
    'teacher': {0: {'acc': 95.0, 'val': 94.0}},
    'student': {0: {'acc': 90.0, 'val': 89.0}, 1: {'acc': 91.0, 'val': 90.0},
                2: {'acc': 92.0, 'val': 91.0}},
    'fcd': {0: {'acc': 91.0, 'val': 92.0}, 1: {'acc': 92.5, 'val': 92.5},
            2: {'acc': 93.0, 'val': float('nan')}},
    'other': {0: {'acc': 89.0, 'val': 93.0}, 1: {'acc': 89.0, 'val': 93.0}},
}


def test_mean_std_and_paired_interval_by_hand():
    s = summarise(RUNS, keys=['acc', 'val'], baselines=['student', 'fcd'])
    fcd = s['rows']['fcd']
    assert fcd['figures']['acc']['mean'] == pytest.approx(92.1666667)
    # sample std of 91, 92.5, 93
    assert fcd['figures']['acc']['std'] == pytest.approx(math.sqrt(((91 - 92.1666667) ** 2 + (
        92.5 - 92.1666667) ** 2 + (93 - 92.1666667) ** 2) / 2))
    # NaN is skipped: two val seeds
    assert fcd['figures']['val']['n'] == 2
    d = fcd['vs']['student']['acc']
    # differences 1.0, 1.5, 1.0: mean 7/6, sd sqrt(1/12), t(0.975, 2) = 4.302653
    half = 4.302653 * math.sqrt(1 / 12) / math.sqrt(3)
    assert d['mean'] == pytest.approx(7 / 6)
    assert d['low'] == pytest.approx(7 / 6 - half, abs=1e-5)
    assert d['high'] == pytest.approx(7 / 6 + half, abs=1e-5)
    assert d['resolved']


def test_single_run_row_is_compared_with_every_baseline_seed():
    s = summarise(RUNS, keys=['acc'], baselines=['student'])
    d = s['rows']['teacher']['vs']['student']['acc']
    # 95 - (90, 91, 92) = 5, 4, 3: mean 4, sd 1
    assert d['n'] == 3 and d['mean'] == pytest.approx(4.0)
    half = 4.302653 * 1 / math.sqrt(3)
    assert d['low'] == pytest.approx(4 - half, abs=1e-5) and d['resolved']
    assert 'student' not in s['rows']['student']['vs']


def test_unresolved_difference_and_selection_on_validation():
    s = summarise(RUNS, keys=['acc', 'val'], baselines=['fcd'], select_on='val',
                  candidates=['fcd', 'other'])
    # 'other' is best on validation though worse on test: the choice is the validation's
    assert s['selected'] == 'other'
    d = s['rows']['other']['vs']['fcd']['acc']  # -2, -3.5 over seeds 0, 1
    assert d['n'] == 2 and d['mean'] == pytest.approx(-2.75)
    # sd of (-2, -3.5) = 1.0607; t(0.975, 1) = 12.7062: -2.75 ± 9.5297, contains 0
    assert d['low'] == pytest.approx(-12.2797, abs=1e-3) and not d['resolved']
    table = markdown(s, [('acc', 'acc (%)')], {'other': 'Other'}, ['teacher', 'fcd', 'other'],
                     extra={'train (s)': {'fcd': '12'}})
    lines = table.splitlines()
    assert lines[0] == '| model | seeds | acc (%) | train (s) |'
    assert lines[2] == '| teacher | 1 | 95.00 | n/a |'
    assert lines[3] == '| fcd | 3 | 92.17 ± 1.04 | 12 |'
    assert lines[4].startswith('| Other (best on val) | 2 | 89.00 ± 0.00 |')
    diff = differences_markdown(s, [('acc', 'acc')], {}, ['teacher', 'fcd', 'other'], 'fcd')
    assert diff.splitlines()[0] == '| vs fcd | Δ acc (95 % CI) |'
    # 95 - (91, 92.5, 93) = 4, 2.5, 2: mean 2.83, sd 1.041, ± 4.3027 * 1.041 / sqrt(3)
    assert '| teacher | +2.83 [+0.25, +5.42] |' in diff


def test_interval_containing_zero_is_marked():
    runs = {'a': {0: {'x': 1.0}, 1: {'x': 3.0}}, 'b': {0: {'x': 1.5}, 1: {'x': 1.5}}}
    s = summarise(runs, keys=['x'], baselines=['b'])
    d = s['rows']['a']['vs']['b']['x']
    assert not d['resolved']
    assert '(n.s.)' in differences_markdown(s, [('x', 'x')], {}, ['a'], 'b')


def test_flatten_and_all_pairs_keys():
    flat = flatten_figures({'synth_test/accuracy': 91.0, 'synth_test/tar@far=1e-04': float(
        'nan'), 'synth_test@masked_unmasked/accuracy': 80.0, 'format': 'x'},
        {'synth_test': 'test', 'synth_test@masked_unmasked': 'masked'})
    assert flat == {'test/accuracy': 91.0, 'masked/accuracy': 80.0}
    result = {'tar_at_far': {'0.01': {'tar': 0.5, 'measurable': True},
                             '0.0001': {'tar': 0.0, 'measurable': False}}}
    assert all_pairs_figures(result, 'test_all') == {'test_all/tar@far=1e-02': 50.0}


def test_against_reference_verdicts_by_hand():
    # reference: fcd - student per seed = 1.0, 1.5, 1.0 -> mean 1.1667, sd 0.2887, CI > 0
    reference = summarise(RUNS, keys=['acc'], baselines=['student'])
    sd = math.sqrt(((1 - 7 / 6) ** 2 * 2 + (1.5 - 7 / 6) ** 2) / 2)
    assert reference['rows']['fcd']['vs']['student']['acc']['std'] == pytest.approx(sd)

    def demo(fcd_acc):
        return summarise({'student': {0: {'acc': 90.0}}, 'fcd': {0: {'acc': fcd_acc}}},
                         keys=['acc'], baselines=['student'])

    labels = {'fcd': 'FCD', 'student': 'student'}
    args = ([('fcd', 'student')], [('acc', 'accuracy')], labels)
    clear = against_reference(demo(91.0), reference, *args).splitlines()[2]
    assert clear.startswith('| FCD − student | accuracy | +1.00 |')
    assert f'| {sd:.2f} | clearly above |' in clear  # 1.0 > 2 x 0.2887
    assert 'within the seed spread' in against_reference(demo(90.5), reference, *args)
    assert '| below |' in against_reference(demo(89.0), reference, *args)
    # an unresolved reference interval never gives "clearly above", however large the gap
    loose = summarise({'student': RUNS['student'],
                       'fcd': {0: {'acc': 95.0}, 1: {'acc': 87.0}, 2: {'acc': 93.0}}},
                      keys=['acc'], baselines=['student'])
    assert 'within the seed spread' in against_reference(demo(99.0), loose, *args)
    # rows absent from the reference are skipped
    assert len(against_reference(demo(91.0), {'rows': {}}, *args).splitlines()) == 2
