"""K-fold verification accuracy on face pairs (LFW / CFP-FP / AgeDB-30 ``.bin`` sets).

Follows the insightface protocol (``recognition/arcface_torch/eval/verification.py``,
``calculate_roc`` / ``calculate_accuracy``): embeddings are L2-normalised (zero vectors stay
zero, as with ``sklearn.preprocessing.normalize``), the distance of a pair is the squared L2
distance of its normalised embeddings, a pair is predicted *same* when ``dist < threshold``,
the pairs are split into ``n_folds`` contiguous folds (``KFold`` without shuffling), and for each
fold the threshold of the grid ``np.arange(0, 4, 0.01)`` with the best accuracy on the other
folds (the first one on ties, ``np.argmax``) is applied to the held-out fold. The result is the
mean and standard deviation (``np.std``, ddof=0) of the held-out accuracies.

What differs from insightface:

* the threshold search is vectorised (sorted scores + ``searchsorted``) instead of a Python
  loop over thresholds; the integer counts, hence the accuracies, are identical;
* distances are computed in float64;
* a held-out fold without positive or without negative pairs, a length mismatch, empty or
  non-finite input raise a one-line ``ValueError`` instead of returning a silent number;
* :func:`kfold_accuracy_from_scores` also accepts pre-computed scores, with either direction.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import KFold

#: The insightface threshold grid for squared L2 distances of normalised embeddings.
INSIGHTFACE_THRESHOLDS = np.arange(0, 4, 0.01)


def as_issame(issame: Any, num: int) -> np.ndarray:
    """``issame`` as a 1-D bool array of length ``num`` (one-line ``ValueError`` otherwise)."""
    issame = np.asarray(issame)
    if issame.ndim != 1:
        raise ValueError(f'issame must be 1-D, got shape {issame.shape}')
    if issame.size != num:
        raise ValueError(f'length mismatch: {num} scores/pairs but {issame.size} issame labels')
    return issame.astype(bool)


def as_scores(scores: Any) -> np.ndarray:
    """``scores`` as a non-empty, finite 1-D float64 array (one-line ``ValueError`` otherwise)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f'scores must be 1-D, got shape {scores.shape}')
    if scores.size == 0:
        raise ValueError('empty input: no scores given')
    if not np.all(np.isfinite(scores)):
        raise ValueError(f'{int((~np.isfinite(scores)).sum())} scores are not finite (NaN/inf)')
    return scores


def _as_thresholds(thresholds: Any) -> np.ndarray:
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(f'thresholds must be a non-empty 1-D array, got shape {thresholds.shape}')
    if not np.all(np.isfinite(thresholds)):
        raise ValueError('thresholds must be finite')
    return thresholds


def pair_distances(embeddings1: Any, embeddings2: Any) -> np.ndarray:
    """Squared L2 distances of the L2-normalised embeddings of each pair (insightface).

    Args:
        embeddings1 (array-like): ``P x d`` raw embeddings of the first image of each pair.
        embeddings2 (array-like): ``P x d`` raw embeddings of the second image of each pair.

    Returns:
        np.ndarray: ``P`` float64 distances in ``[0, 4]``.
    """
    e1 = np.asarray(embeddings1, dtype=np.float64)
    e2 = np.asarray(embeddings2, dtype=np.float64)
    if e1.ndim != 2 or e2.ndim != 2:
        raise ValueError(f'embeddings must be 2-D (pairs x dim), got {e1.shape} and {e2.shape}')
    if e1.shape != e2.shape:
        raise ValueError(f'length mismatch: embeddings1 {e1.shape} vs embeddings2 {e2.shape}')
    if e1.shape[0] == 0:
        raise ValueError('empty input: no pairs given')
    if not (np.all(np.isfinite(e1)) and np.all(np.isfinite(e2))):
        raise ValueError('embeddings contain non-finite values (NaN/inf)')
    e1 = _l2_normalize(e1)
    e2 = _l2_normalize(e2)
    return np.sum(np.square(e1 - e2), axis=1)


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # Zero vectors stay zero, like sklearn.preprocessing.normalize used by insightface.
    norms[norms == 0] = 1.0
    return x / norms


def _correct_counts(scores: np.ndarray, issame: np.ndarray, thresholds: np.ndarray,
                    higher_is_same: bool) -> np.ndarray:
    """Number of correctly predicted pairs for every threshold (int array, len(thresholds))."""
    pos = np.sort(scores[issame])
    neg = np.sort(scores[~issame])
    if higher_is_same:  # same when score > t
        tp = pos.size - np.searchsorted(pos, thresholds, side='right')
        tn = np.searchsorted(neg, thresholds, side='right')
    else:  # same when score < t (insightface: np.less(dist, threshold))
        tp = np.searchsorted(pos, thresholds, side='left')
        tn = neg.size - np.searchsorted(neg, thresholds, side='left')
    return tp + tn


def kfold_accuracy_from_scores(scores: Any,
                               issame: Any,
                               thresholds: Any,
                               *,
                               higher_is_same: bool,
                               n_folds: int = 10) -> dict:
    """K-fold verification accuracy from pre-computed pair scores.

    For each of ``n_folds`` contiguous folds, the threshold with the best accuracy on the
    other folds (first one on ties) is applied to the held-out fold.

    Args:
        scores (array-like): ``P`` pair scores (distances or similarities).
        issame (array-like): ``P`` booleans, True for a genuine (same identity) pair.
        thresholds (array-like): candidate thresholds.
        higher_is_same (bool): True for similarities (a pair is predicted same when
            ``score > threshold``), False for distances (same when ``score < threshold``,
            as insightface).
        n_folds (int): number of contiguous folds. Defaults to 10.

    Returns:
        dict: ``accuracy_mean`` and ``accuracy_std`` (fractions, ``np.std`` with ddof=0),
        ``accuracies`` (per held-out fold), ``thresholds`` (best threshold per fold),
        ``best_threshold_mean``.

    Examples:
        >>> dist = np.array([0.1, 1.9, 0.2, 1.8] * 5)
        >>> same = np.array([True, False] * 10)
        >>> kfold_accuracy_from_scores(dist, same, np.arange(0, 4, 0.01),
        ...                            higher_is_same=False)['accuracy_mean']
        1.0
    """
    scores = as_scores(scores)
    issame = as_issame(issame, scores.size)
    thresholds = _as_thresholds(thresholds)
    n_pairs = scores.size
    if not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f'n_folds must be an integer >= 2, got {n_folds!r}')
    if n_pairs < n_folds:
        raise ValueError(f'{n_pairs} pairs cannot be split into {n_folds} folds')

    splits = list(KFold(n_splits=n_folds, shuffle=False).split(np.arange(n_pairs)))
    fold_counts = np.empty((n_folds, thresholds.size), dtype=np.int64)
    for k, (_, test_idx) in enumerate(splits):
        fold_same = issame[test_idx]
        if not fold_same.any() or fold_same.all():
            kind = 'positive' if not fold_same.any() else 'negative'
            raise ValueError(f'fold {k} (pairs {test_idx[0]}..{test_idx[-1]}) has no {kind} '
                             'pairs; every fold needs both')
        fold_counts[k] = _correct_counts(scores[test_idx], fold_same, thresholds,
                                         higher_is_same)
    # Correct counts on the training folds = all folds minus the held-out one.
    train_counts = fold_counts.sum(axis=0, keepdims=True) - fold_counts
    best_idx = np.argmax(train_counts, axis=1)
    fold_sizes = np.array([len(test_idx) for _, test_idx in splits])
    accuracies = fold_counts[np.arange(n_folds), best_idx] / fold_sizes
    best_thresholds = thresholds[best_idx]
    return dict(
        accuracy_mean=float(np.mean(accuracies)),
        accuracy_std=float(np.std(accuracies)),
        accuracies=accuracies,
        thresholds=best_thresholds,
        best_threshold_mean=float(np.mean(best_thresholds)))


def kfold_accuracy(embeddings1: Any,
                   embeddings2: Any,
                   issame: Any,
                   n_folds: int = 10,
                   thresholds: Any = INSIGHTFACE_THRESHOLDS) -> dict:
    """Insightface k-fold verification accuracy of embedding pairs.

    Args:
        embeddings1 (array-like): ``P x d`` raw embeddings of the first image of each pair.
        embeddings2 (array-like): ``P x d`` raw embeddings of the second image of each pair.
        issame (array-like): ``P`` booleans, True for a genuine pair.
        n_folds (int): number of contiguous folds. Defaults to 10.
        thresholds (array-like): squared-L2 distance thresholds; a pair is predicted same
            when ``dist < threshold``. Defaults to ``np.arange(0, 4, 0.01)``.

    Returns:
        dict: ``accuracy_mean``, ``accuracy_std`` (fractions), ``accuracies`` (per fold),
        ``thresholds`` (best distance threshold per fold), ``best_threshold_mean``.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> e1 = rng.normal(size=(600, 8))
        >>> e2 = np.where(np.arange(600)[:, None] % 2 == 0, e1, rng.normal(size=(600, 8)))
        >>> kfold_accuracy(e1, e2, np.arange(600) % 2 == 0)['accuracy_mean'] > 0.9
        True
    """
    dist = pair_distances(embeddings1, embeddings2)
    issame = as_issame(issame, dist.size)
    return kfold_accuracy_from_scores(
        dist, issame, thresholds, higher_is_same=False, n_folds=n_folds)
