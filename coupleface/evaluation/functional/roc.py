"""ROC curve, TAR@FAR, AUC and EER of verification scores (higher score = more similar).

The ROC is scikit-learn's (``sklearn.metrics.roc_curve`` with ``drop_intermediate=False``): one
point per distinct score, a pair predicted *same* when ``score >= threshold``, starting at
``(far, tar) = (0, 0)`` with threshold ``inf``. Tied scores form a single point, so ties and
duplicate scores need no special handling.

TAR@FAR is reported two ways:

* ``tar_nearest`` follows insightface's IJB-B/IJB-C script (``recognition/_evaluation_/ijb``):
  the ROC point whose FAR is nearest to the target (on ties, the last point of the curve, i.e.
  the one with the highest TAR, as the script's ``min`` over the flipped curve picks). Unlike
  the script, the full curve is used (``drop_intermediate=False``), and the point may have a
  FAR above the target.
* ``tar`` is conservative: the highest TAR among the ROC points whose FAR does not exceed the
  target, with the ``threshold`` and the ``far_actual`` of that point (the lowest threshold that
  keeps FAR <= target).

Neither is interpolated. A target FAR below ``1 / #negative pairs`` cannot be measured: its
values are NaN and ``measurable`` is False (never extrapolated). The EER is taken where the
piecewise-linear ROC crosses ``FAR = 1 - TAR`` (linear between the two ROC points around the
crossing, which is the exact error rate of randomising between those two thresholds).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

from .verification import as_issame, as_scores

#: Target FARs reported by default (as in insightface's IJB evaluation).
DEFAULT_FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def _check_both_classes(issame: np.ndarray) -> None:
    if not issame.any():
        raise ValueError('no positive (same identity) pairs: the ROC is undefined')
    if issame.all():
        raise ValueError('no negative (different identity) pairs: the ROC is undefined')


def roc_curve(scores: Any, issame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of similarity scores, one point per distinct score.

    Args:
        scores (array-like): ``P`` pair similarities (higher = more similar).
        issame (array-like): ``P`` booleans, True for a genuine pair.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``far`` (false accept rate), ``tar`` (true
        accept rate) and ``thresholds`` (decreasing; ``thresholds[0] = inf``); a pair is
        accepted when ``score >= threshold``.

    Examples:
        >>> far, tar, thr = roc_curve([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
        >>> far.tolist(), tar.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    scores = as_scores(scores)
    issame = as_issame(issame, scores.size)
    _check_both_classes(issame)
    far, tar, thresholds = skm.roc_curve(issame, scores, drop_intermediate=False)
    return far, tar, thresholds


def auc(scores: Any, issame: Any) -> float:
    """Area under the ROC curve (trapezoidal, ties count one half) of the pairs
    ``scores``, ``issame`` as :func:`roc_curve` takes them.

    Returns:
        float: the AUC in ``[0, 1]``.
    """
    far, tar, _ = roc_curve(scores, issame)
    return float(skm.auc(far, tar))


def eer(scores: Any, issame: Any) -> float:
    """Equal error rate: where the ROC of ``scores``, ``issame`` (as :func:`roc_curve`
    takes them) crosses ``FAR = FRR = 1 - TAR``.

    Returns:
        float: the EER in ``[0, 1]``.

    Examples:
        >>> eer([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
        0.5
    """
    far, tar, _ = roc_curve(scores, issame)
    # d increases along the curve from -1 (far=0, tar=0) to +1 (far=1, tar=1).
    d = far - (1.0 - tar)
    i = int(np.argmax(d >= 0))
    if d[i] == 0:
        return float(far[i])
    alpha = -d[i - 1] / (d[i] - d[i - 1])
    return float(far[i - 1] + alpha * (far[i] - far[i - 1]))


def is_measurable(target_far: float, num_negatives: int) -> bool:
    """Whether a target FAR can be measured with ``num_negatives`` negative pairs.

    Args:
        target_far (float): the target false accept rate.
        num_negatives (int): number of negative pairs.

    Returns:
        bool: False when ``target_far < 1 / num_negatives`` (up to float rounding).
    """
    return target_far * num_negatives >= 1.0 - 1e-9


def tar_at_far(scores: Any,
               issame: Any,
               fars: Sequence[float] = DEFAULT_FARS) -> dict[float, dict]:
    """True accept rate at target false accept rates, without interpolation.

    Args:
        scores (array-like): ``P`` pair similarities (higher = more similar).
        issame (array-like): ``P`` booleans, True for a genuine pair.
        fars (Sequence[float]): target FARs in ``(0, 1]``.

    Returns:
        dict[float, dict]: for each target FAR (the given values as keys) a dict with
        ``tar`` (conservative: highest TAR with FAR <= target), ``threshold`` and
        ``far_actual`` of that point, ``tar_nearest`` (insightface: TAR of the point whose FAR is
        nearest to the target) and ``measurable``. When not measurable, the four numbers are
        NaN.

    Examples:
        >>> neg = np.arange(1000) / 1000
        >>> res = tar_at_far(np.r_[neg, [0.9995] * 5, [0.2] * 5], [False] * 1000 + [True] * 10,
        ...                  fars=(1e-4, 1e-3))
        >>> res[1e-4]['measurable'], res[1e-3]['tar'], res[1e-3]['threshold']
        (False, 0.5, 0.999)
    """
    scores = as_scores(scores)
    issame = as_issame(issame, scores.size)
    far, tar, thresholds = roc_curve(scores, issame)
    num_negatives = int((~issame).sum())
    out = {}
    for target in fars:
        target_f = float(target)
        if not np.isfinite(target_f) or not 0 < target_f <= 1:
            raise ValueError(f'target FAR must be in (0, 1], got {target!r}')
        if not is_measurable(target_f, num_negatives):
            out[target] = dict(tar=float('nan'), threshold=float('nan'),
                               far_actual=float('nan'), tar_nearest=float('nan'),
                               measurable=False)
            continue
        # Insightface: nearest FAR; ties -> the last point (highest TAR).
        dist = np.abs(far - target_f)
        nearest = int(np.flatnonzero(dist == dist.min())[-1])
        # Conservative: far and tar are non-decreasing, so the last point with far <= target
        # has the highest TAR among them (far[0] == 0 always qualifies).
        conservative = int(np.flatnonzero(far <= target_f)[-1])
        out[target] = dict(tar=float(tar[conservative]),
                           threshold=float(thresholds[conservative]),
                           far_actual=float(far[conservative]),
                           tar_nearest=float(tar[nearest]),
                           measurable=True)
    return out
