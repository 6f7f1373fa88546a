"""TAR@FAR over all pairs of a labelled image set, scored in chunks (stable low-FAR figures).

A 10-fold ``.bin`` protocol of 6,000 pairs has 3,000 impostor pairs: TAR@FAR=1e-3 rests on
its 3 highest impostor scores and swings by points between seeds. Scoring *every* pair
among the images of a few hundred unseen identities gives millions of impostor pairs (500
identities × 10 images: 12.5 M), so FAR=1e-4 and below are measured on hundreds of
impostors. The pairs are never materialised: rows of the similarity matrix are computed a
chunk at a time, genuine scores (few) are kept, and of the impostor scores only the highest
``c + 1`` per target FAR, where ``c`` is the most impostors the target allows: exactly what
the conservative operating point needs. So the figures equal
:func:`coupleface.evaluation.functional.tar_at_far` on the explicit score list (``tar``,
``threshold``, ``far_actual``, ``measurable``; the insightface "nearest" point is not
computed), at memory ``O(chunk × N + c)``. No library scores all pairs with bounded memory
at a target FAR, hence this module.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np

from .roc import is_measurable

#: Target FARs of the all-pairs protocol.
ALL_PAIRS_FARS = (1e-2, 1e-3, 1e-4)


def _allowed_impostors(target: float, num_impostors: int) -> int:
    """The largest count ``c`` with ``c / num_impostors <= target`` in float arithmetic."""
    c = int(np.floor(target * num_impostors))
    while c > 0 and c / num_impostors > target:
        c -= 1
    while c + 1 <= num_impostors and (c + 1) / num_impostors <= target:
        c += 1
    return c


def _top(values: np.ndarray, k: int) -> np.ndarray:
    if values.size <= k:
        return values
    return np.partition(values, values.size - k)[values.size - k:]


def all_pairs_tar_at_far(embeddings: Any, labels: Any,
                         fars: Sequence[float] = ALL_PAIRS_FARS, chunk_size: int = 1024,
                         normalize: bool = True) -> Dict[str, Any]:
    """TAR at target FARs over all ``N (N - 1) / 2`` pairs of ``N`` labelled embeddings.

    Args:
        embeddings (array-like): ``N × d`` embeddings.
        labels (array-like): ``N`` identity labels.
        fars: Target FARs in ``(0, 1]``. Defaults to :data:`ALL_PAIRS_FARS`.
        chunk_size: Rows of the similarity matrix scored at once.
        normalize: L2-normalise the embeddings first (cosine scores). Defaults to True.

    Returns:
        dict: ``num_genuine``, ``num_impostor`` and, per target FAR (the given values as
        keys), a dict with ``tar``, ``threshold``, ``far_actual`` (the conservative point:
        highest TAR with FAR <= target; accept when ``score >= threshold``) and
        ``measurable`` (False, with NaN figures, below ``1 / num_impostor``).

    Examples:
        >>> emb = np.eye(3)[[0, 0, 1, 1, 2, 2]] + 0.1 * np.arange(6)[:, None]
        >>> res = all_pairs_tar_at_far(emb, [0, 0, 1, 1, 2, 2], fars=(0.1, ))
        >>> res['num_genuine'], res['num_impostor'], res[0.1]['tar']
        (3, 12, 1.0)
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if emb.ndim != 2 or emb.shape[0] != labels.size:
        raise ValueError(f'embeddings {emb.shape} and labels ({labels.size}) do not match: '
                         'need N × d embeddings and N labels')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    if normalize:
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    n = labels.size
    _, counts = np.unique(labels, return_counts=True)
    num_genuine = int((counts * (counts - 1) // 2).sum())
    num_impostor = n * (n - 1) // 2 - num_genuine
    if num_genuine == 0 or num_impostor == 0:
        raise ValueError(f'{num_genuine} genuine and {num_impostor} impostor pairs: need '
                         'identities with >= 2 images and >= 2 identities')
    targets = []
    for target in fars:
        t = float(target)
        if not np.isfinite(t) or not 0 < t <= 1:
            raise ValueError(f'target FAR must be in (0, 1], got {target!r}')
        targets.append((target, t))
    allowed = {key: _allowed_impostors(t, num_impostor) for key, t in targets}
    keep = min(num_impostor, max(allowed.values()) + 1)

    genuine, top = [], np.empty(0)
    for start in range(0, n, chunk_size):
        stop = min(n, start + chunk_size)
        scores = emb[start:stop] @ emb.T
        rows = np.arange(start, stop)[:, None]
        upper = np.arange(n)[None, :] > rows  # each pair once: j > i
        same = labels[start:stop, None] == labels[None, :]
        genuine.append(scores[upper & same])
        top = _top(np.concatenate([top, scores[upper & ~same]]), keep)
    genuine = np.concatenate(genuine)
    top = np.sort(top)[::-1]  # the `keep` highest impostor scores, descending

    out: Dict[Any, Any] = dict(num_genuine=num_genuine, num_impostor=num_impostor)
    for key, t in targets:
        if not is_measurable(t, num_impostor):
            out[key] = dict(tar=float('nan'), threshold=float('nan'), far_actual=float('nan'),
                            measurable=False)
            continue
        c = allowed[key]
        # v: the (c+1)-th highest impostor score; every threshold above it accepts <= c
        v = top[c] if c < num_impostor else -np.inf
        above = np.concatenate([genuine[genuine > v], top[top > v]])
        out[key] = dict(tar=float((genuine > v).sum() / num_genuine),
                        threshold=float(above.min()) if above.size else float('inf'),
                        far_actual=float((top > v).sum() / num_impostor), measurable=True)
    return out
