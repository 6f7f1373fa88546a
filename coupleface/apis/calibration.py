"""Verification thresholds calibrated for a target false accept rate on a pair set.

A deployed verifier needs one number: the cosine-similarity threshold above which two faces
are declared the same person. We choose it the way the evaluation reports TAR@FAR
(:func:`coupleface.evaluation.functional.tar_at_far`, conservative point): on the ROC of a
labelled pair set (insightface ``.bin`` pairs, one score per pair, a pair accepted when
``score >= threshold``), the operating point with the highest TAR whose false accept rate
does not exceed the target. Nothing is interpolated, so the FAR measured on the calibration
pairs is never above the target; a target below ``1 / #negative pairs`` cannot be measured
and is refused.

**A score at the threshold.** ``score >= threshold`` accepts it. The threshold itself is
placed halfway between the lowest accepted and the highest rejected calibration score (the
ROC point's own threshold is a calibration score). Both accept exactly the same calibration
pairs, but the midpoint leaves no calibration pair on the threshold, so a pair scored again
later (by :meth:`FaceEmbedder.verify`, in a batch of another size, whose float32 embeddings
can differ in the last bits) is decided as it was during calibration unless its score moved
by half the gap between the two scores.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from coupleface.evaluation.functional import tar_at_far

__all__ = ['calibrate_threshold', 'threshold_at_far']


def calibrate_threshold(scores: Any, issame: Any, far: float = 1e-3) -> Dict[str, float]:
    """Threshold at a target FAR, with what it achieves on the calibration pairs.

    Args:
        scores (array-like): ``P`` pair similarities (higher = more similar, e.g. cosine).
        issame (array-like): ``P`` booleans, True for a genuine (same identity) pair.
        far (float): Target false accept rate in ``(0, 1]``. Defaults to ``1e-3``.

    Returns:
        dict: ``threshold`` (accept when ``score >= threshold``: halfway between the lowest
        accepted and the highest rejected score; the lowest score when all pairs are
        accepted; ``inf`` when even the highest-scored pair would exceed the target),
        ``far`` (the target), ``far_actual``
        and ``tar`` (on the calibration pairs at that threshold), ``num_pairs`` and
        ``num_negatives``.

    Raises:
        ValueError: the pairs lack positives or negatives, or the target FAR is below
            ``1 / num_negatives`` (it cannot be measured on this set).

    Examples:
        >>> scores = np.r_[np.arange(1000) / 1000, [0.9995] * 5, [0.2] * 5]
        >>> same = [False] * 1000 + [True] * 10
        >>> round(calibrate_threshold(scores, same, far=1e-3)['threshold'], 6)
        0.9985
    """
    far = float(far)
    same = np.asarray(issame, dtype=bool).reshape(-1)
    result = tar_at_far(scores, same, fars=(far, ))[far]
    num_negatives = int((~same).sum())
    if not result['measurable']:
        raise ValueError(f'cannot calibrate at FAR={far:g}: the pair set has {num_negatives} '
                         f'negative pairs, at least {int(np.ceil(1 / far - 1e-9))} are needed '
                         '(1 / FAR)')
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    threshold = float(result['threshold'])
    rejected = scores[scores < threshold]
    if np.isfinite(threshold) and rejected.size:
        threshold = float((threshold + rejected.max()) / 2)
    return dict(threshold=threshold, far=far,
                far_actual=float(result['far_actual']), tar=float(result['tar']),
                num_pairs=int(same.size), num_negatives=num_negatives)


def threshold_at_far(scores: Any, issame: Any, far: float = 1e-3) -> float:
    """A similarity threshold whose FAR on the pairs does not exceed ``far``, with highest TAR.

    The conservative TAR@FAR point of :func:`coupleface.evaluation.functional.tar_at_far`,
    placed between calibration scores (:func:`calibrate_threshold`, which also returns the
    achieved FAR/TAR).

    Args:
        scores (array-like): ``P`` pair similarities (higher = more similar).
        issame (array-like): ``P`` booleans, True for a genuine pair.
        far (float): Target false accept rate in ``(0, 1]``. Defaults to ``1e-3``.

    Returns:
        float: Accept a pair when ``score >= threshold``.

    Examples:
        >>> threshold_at_far([0.9, 0.8, 0.3, 0.1], [True, False, True, False], far=0.5)
        0.2
    """
    return calibrate_threshold(scores, issame, far)['threshold']
