"""Thresholds at a target FAR: the conservative TAR@FAR point, never above the target."""
import numpy as np
import pytest

from coupleface.apis.calibration import calibrate_threshold, threshold_at_far
from coupleface.evaluation.functional import tar_at_far


def _far(scores, issame, threshold):
    neg = scores[~issame]
    return float(np.mean(neg >= threshold))


@pytest.mark.parametrize('far', [1e-3, 1e-2, 0.05, 0.3])
def test_lowest_threshold_within_target(far):
    rng = np.random.default_rng(0)
    issame = rng.random(4000) < 0.3
    scores = np.where(issame, rng.normal(0.6, 0.15, issame.size),
                      rng.normal(0.1, 0.15, issame.size)).round(3)  # ties on purpose
    thr = threshold_at_far(scores, issame, far)
    assert _far(scores, issame, thr) <= far
    # the ROC point's threshold is the lowest accepted score; ours lies halfway between it
    # and the highest rejected score, which would exceed the target
    point = tar_at_far(scores, issame, (far, ))[far]['threshold']
    lower = scores[scores < point].max()
    assert _far(scores, issame, lower) > far
    assert thr == pytest.approx((point + lower) / 2, abs=1e-12)
    assert lower < thr < point and not np.any(scores == thr)
    np.testing.assert_array_equal(scores >= thr, scores >= point)  # the same pairs accepted
    cal = calibrate_threshold(scores, issame, far)
    assert cal['far_actual'] == pytest.approx(_far(scores, issame, thr))
    assert cal['tar'] == pytest.approx(float(np.mean(scores[issame] >= thr)))
    assert cal['num_negatives'] == int((~issame).sum()) and cal['num_pairs'] == 4000


def test_small_example():
    # negatives 0.8 and 0.1: FAR 0.5 allows accepting 0.8 and 0.3 but not 0.1 -> the
    # threshold lies halfway between 0.3 (lowest accepted) and 0.1 (highest rejected)
    assert threshold_at_far([0.9, 0.8, 0.3, 0.1], [True, False, True, False],
                            far=0.5) == pytest.approx(0.2, abs=1e-15)
    # everything accepted: nothing lies below, the lowest score is the threshold
    assert threshold_at_far([0.9, 0.8, 0.3, 0.1], [True, False, True, False], far=1.0) == 0.1


def test_rescored_pair_near_the_threshold_keeps_its_decision():
    # The lowest accepted calibration score is a negative's (FAR 1/4 allows one); scored
    # again with float32-sized noise it must keep its decision, and so must the highest
    # rejected one. With the ROC point's own threshold (that very score) it would flip.
    scores = np.array([0.95, 0.7320304598081873, 0.6, 0.5, 0.4, 0.3], dtype=np.float64)
    issame = np.array([True, False, False, False, False, True])
    thr = threshold_at_far(scores, issame, far=0.25)
    assert tar_at_far(scores, issame, (0.25, ))[0.25]['threshold'] == scores[1]
    for noise in (-1e-6, -1e-7, 0.0, 1e-7, 1e-6):
        assert scores[1] + noise >= thr  # still accepted
        assert not scores[2] + noise >= thr  # still rejected


def test_unmeasurable_target_refused():
    scores, issame = [0.9, 0.8, 0.3, 0.1], [True, False, True, False]
    with pytest.raises(ValueError, match='2 negative pairs, at least 1000'):
        threshold_at_far(scores, issame, far=1e-3)
    with pytest.raises(ValueError, match='no negative'):
        threshold_at_far([0.9, 0.8], [True, True], far=0.5)


def test_top_negative_gives_infinite_threshold():
    # two negatives share the best score: any finite threshold accepts both (FAR 1/2 > 1/4)
    thr = threshold_at_far([0.9, 0.9, 0.8, 0.7, 0.5, 0.4], [False, False, True, True, False,
                                                            False], far=0.25)
    assert thr == np.inf
