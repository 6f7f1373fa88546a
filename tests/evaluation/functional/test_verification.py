"""K-fold verification accuracy: insightface protocol, checked against a plain loop."""
import time

import numpy as np
import pytest

from coupleface.evaluation.functional import (
    INSIGHTFACE_THRESHOLDS,
    kfold_accuracy,
    kfold_accuracy_from_scores,
    pair_distances,
)
from coupleface.evaluation.functional.verification import as_issame, as_scores


def _reference_kfold(emb1, emb2, issame, n_folds=10):
    """Independent plain-Python version of the insightface protocol."""
    thresholds = [i * 0.01 for i in range(400)]  # 0.00 .. 3.99, as np.arange(0, 4, 0.01)
    dist = []
    for a, b in zip(emb1, emb2):
        a = a / np.linalg.norm(a)
        b = b / np.linalg.norm(b)
        dist.append(float(np.sum((a - b) ** 2)))
    n = len(dist)
    # contiguous folds: the first n % n_folds folds hold one pair more (sklearn KFold)
    sizes = [n // n_folds + (1 if k < n % n_folds else 0) for k in range(n_folds)]
    starts = [sum(sizes[:k]) for k in range(n_folds)]

    def accuracy(threshold, idx):
        correct = 0
        for i in idx:
            if (dist[i] < threshold) == bool(issame[i]):
                correct += 1
        return correct / len(idx)

    accs, best = [], []
    for k in range(n_folds):
        test = list(range(starts[k], starts[k] + sizes[k]))
        train = [i for i in range(n) if not starts[k] <= i < starts[k] + sizes[k]]
        best_t, best_acc = None, -1.0
        for t in thresholds:
            acc = accuracy(t, train)
            if acc > best_acc:  # strict: the first best threshold wins ties
                best_t, best_acc = t, acc
        best.append(best_t)
        accs.append(accuracy(best_t, test))
    return accs, best


def _planted(n_pairs=603, dim=16, noise=1.1, seed=0):
    rng = np.random.default_rng(seed)
    issame = rng.random(n_pairs) < 0.5
    emb1 = rng.normal(size=(n_pairs, dim)) * rng.uniform(0.5, 30, size=(n_pairs, 1))
    other = rng.normal(size=(n_pairs, dim))
    same = emb1 / np.linalg.norm(emb1, axis=1, keepdims=True) + noise * rng.normal(
        size=(n_pairs, dim)) / np.sqrt(dim)
    emb2 = np.where(issame[:, None], same, other) * rng.uniform(0.5, 30, size=(n_pairs, 1))
    return emb1, emb2, issame


def test_grid_is_insightface_grid():
    assert INSIGHTFACE_THRESHOLDS.tolist() == [i * 0.01 for i in range(400)]


def test_equals_plain_loop_reference():
    emb1, emb2, issame = _planted()
    res = kfold_accuracy(emb1, emb2, issame)
    ref_accs, ref_best = _reference_kfold(emb1, emb2, issame)
    assert res['accuracies'].tolist() == ref_accs  # exact, per fold
    assert res['thresholds'].tolist() == ref_best
    assert 0.7 < res['accuracy_mean'] < 0.99  # the planted signal is neither absent nor perfect
    assert res['accuracy_mean'] == pytest.approx(np.mean(ref_accs))
    assert res['accuracy_std'] == pytest.approx(np.std(ref_accs))
    assert res['best_threshold_mean'] == pytest.approx(np.mean(ref_best))


def test_equals_reference_with_float32_and_5_folds():
    emb1, emb2, issame = _planted(n_pairs=207, noise=0.8, seed=3)
    emb1, emb2 = emb1.astype(np.float32), emb2.astype(np.float32)
    res = kfold_accuracy(emb1, emb2, issame, n_folds=5)
    ref_accs, ref_best = _reference_kfold(emb1.astype(np.float64), emb2.astype(np.float64),
                                          issame, n_folds=5)
    assert res['accuracies'].tolist() == ref_accs
    assert res['thresholds'].tolist() == ref_best


def test_perfectly_separable_and_first_best_threshold():
    rng = np.random.default_rng(1)
    n = 200
    issame = np.arange(n) % 2 == 0
    # positives at distance 0.5, negatives at 1.5: every threshold in (0.5, 1.5] is best
    dist = np.where(issame, 0.5, 1.5)
    res = kfold_accuracy_from_scores(dist, issame, INSIGHTFACE_THRESHOLDS, higher_is_same=False)
    assert res['accuracy_mean'] == 1.0 and res['accuracy_std'] == 0.0
    assert np.all(res['thresholds'] == INSIGHTFACE_THRESHOLDS[51])  # first of the ties
    # the same with embeddings: positives identical up to scale, negatives orthogonal
    emb1 = rng.normal(size=(n, 8))
    emb2 = np.where(issame[:, None], 3.0 * emb1, 0.0)
    emb2[~issame] = np.eye(8)[0]
    emb1[~issame] = np.eye(8)[1]
    res = kfold_accuracy(emb1, emb2, issame)
    assert res['accuracies'].tolist() == [1.0] * 10


def test_similarity_direction_mirrors_distance():
    emb1, emb2, issame = _planted(seed=5)
    dist = pair_distances(emb1, emb2)
    ref = kfold_accuracy(emb1, emb2, issame)
    # -dist > -t  <=>  dist < t, and negation is exact
    res = kfold_accuracy_from_scores(-dist, issame, -INSIGHTFACE_THRESHOLDS,
                                     higher_is_same=True)
    assert res['accuracies'].tolist() == ref['accuracies'].tolist()
    assert (-res['thresholds']).tolist() == ref['thresholds'].tolist()


def test_hand_computed_folds():
    # 4 folds of 4 pairs; fold 2 holds one positive further than every negative
    dist = np.array([0.1, 0.2, 1.0, 1.2] * 4)
    issame = np.array([True, True, False, False] * 4)
    dist[8] = 1.5
    res = kfold_accuracy_from_scores(dist, issame, INSIGHTFACE_THRESHOLDS,
                                     higher_is_same=False, n_folds=4)
    assert res['accuracies'].tolist() == [1.0, 1.0, 0.75, 1.0]
    assert res['accuracy_mean'] == pytest.approx(0.9375)


def test_fold_without_positives_or_negatives_is_named():
    issame = np.arange(100) % 2 == 0
    dist = np.where(issame, 0.5, 1.5)
    no_pos = issame.copy()
    no_pos[30:40] = False
    with pytest.raises(ValueError, match=r'fold 3 .*no positive'):
        kfold_accuracy_from_scores(dist, no_pos, INSIGHTFACE_THRESHOLDS, higher_is_same=False)
    no_neg = issame.copy()
    no_neg[90:] = True
    with pytest.raises(ValueError, match=r'fold 9 .*no negative'):
        kfold_accuracy_from_scores(dist, no_neg, INSIGHTFACE_THRESHOLDS, higher_is_same=False)


def test_input_errors():
    emb = np.ones((20, 4))
    with pytest.raises(ValueError, match='empty'):
        kfold_accuracy(np.zeros((0, 4)), np.zeros((0, 4)), [])
    with pytest.raises(ValueError, match='length mismatch'):
        kfold_accuracy(emb, emb[:10], [True] * 20)
    with pytest.raises(ValueError, match='length mismatch'):
        kfold_accuracy(emb, emb, [True] * 19)
    bad = emb.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match='non-finite'):
        kfold_accuracy(bad, emb, [True, False] * 10)
    with pytest.raises(ValueError, match='not finite'):
        kfold_accuracy_from_scores([np.inf] + [0.0] * 19, [True, False] * 10,
                                   INSIGHTFACE_THRESHOLDS, higher_is_same=False)


def test_vectorised_speed():
    emb1, emb2, issame = _planted(n_pairs=6000, dim=128, seed=2)
    kfold_accuracy(emb1[:100], emb2[:100], issame[:100])  # warm up imports
    start = time.perf_counter()
    kfold_accuracy(emb1, emb2, issame)
    assert time.perf_counter() - start < 0.5


def test_input_checks_shared_with_roc():
    assert as_issame([1, 0, 1], 3).tolist() == [True, False, True]
    with pytest.raises(ValueError, match='length mismatch: 2 scores/pairs but 3 issame'):
        as_issame([1, 0, 1], 2)
    assert as_scores([0.5, 1]).dtype == np.float64
    with pytest.raises(ValueError, match='1 scores are not finite'):
        as_scores([0.5, np.nan])
    with pytest.raises(ValueError, match='empty input'):
        as_scores([])
