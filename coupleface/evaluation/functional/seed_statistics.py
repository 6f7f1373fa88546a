"""Statistics over training seeds: mean ± std, and paired differences with a 95 % interval.

A comparison of two methods trained with the same seeds (same data order, same
initialisation of the shared parts) is paired: the per-seed differences
``d_s = metric(method, s) - metric(baseline, s)`` remove the variation both share. Their
mean with a Student-t confidence interval, ``mean(d) ± t(0.975, n - 1) · std(d) / √n``
(sample standard deviation, ``n`` seeds), says whether the difference is resolved: an
interval that excludes zero. scipy's t quantile is used; the rest is three lines of numpy,
kept here so that every table computes it the same way.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Sequence

import numpy as np
from scipy import stats


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (``ddof=1``; NaN with one value).

    Args:
        values: One figure per seed.

    Returns:
        dict: ``mean``, ``std``, ``n``.
    """
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError('no values: need one figure per seed')
    std = float(arr.std(ddof=1)) if arr.size > 1 else float('nan')
    return dict(mean=float(arr.mean()), std=std, n=int(arr.size))


def paired_difference(method: Mapping[int, float], baseline: Mapping[int, float],
                      confidence: float = 0.95) -> Dict[str, float]:
    """Paired difference ``method - baseline`` over the seeds both have.

    Args:
        method: Figure per seed of the method.
        baseline: Figure per seed of the baseline.
        confidence: Two-sided level of the interval. Defaults to 0.95.

    Returns:
        dict: ``mean`` and ``std`` of the per-seed differences, ``n`` (common seeds),
        ``low``/``high`` (the t interval; NaN with fewer than 2 seeds) and ``resolved``
        (the interval excludes 0).

    Raises:
        ValueError: no seed is common to both.

    Examples:
        >>> d = paired_difference({0: 91.0, 1: 92.0, 2: 93.0}, {0: 90.0, 1: 90.5, 2: 91.0})
        >>> round(d['mean'], 3), round(d['low'], 3), round(d['high'], 3)
        (1.5, 0.258, 2.742)
    """
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        raise ValueError(f'no common seed: method has {sorted(method)}, baseline has '
                         f'{sorted(baseline)}')
    diff = np.array([method[s] - baseline[s] for s in seeds], dtype=np.float64)
    out = mean_std(diff)
    if diff.size > 1:
        half = stats.t.ppf(0.5 + confidence / 2, diff.size - 1) * out['std'] / math.sqrt(
            diff.size)
        out.update(low=float(out['mean'] - half), high=float(out['mean'] + half))
    else:
        out.update(low=float('nan'), high=float('nan'))
    out['resolved'] = bool(out['low'] > 0 or out['high'] < 0)
    return out
