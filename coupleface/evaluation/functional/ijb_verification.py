"""IJB 1:1 verification: cosine scores of template pairs, vectorised and chunked.

Pair scores are cosine similarities of the template features of :mod:`.ijb_templates`
(insightface's ``ijb_11.py``). Unlike insightface, scoring is vectorised and chunked, so memory
stays bounded (no ``[P, D]`` gather of all pairs) and any feature size works; pairs are grouped
by first template and dense blocks are scored with one matrix product (IJB-C's 15.7M pairs in
about 5 s on one core, ``tools/analysis_tools/benchmark_ijb.py``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .ijb_templates import as_features, as_ids

__all__ = ['DENSE_FRACTION', 'score_template_pairs']


def _pair_rows(sorted_ids: np.ndarray, sorter: np.ndarray, pair_ids: Any, col: int,
               chunk: int) -> np.ndarray:
    """Feature row of each pair's template (int32 when it fits), checked chunk by chunk."""
    pair_ids = np.asarray(pair_ids).reshape(-1)
    dtype = np.int32 if sorted_ids.size < 2**31 else np.int64
    rows = np.empty(pair_ids.size, dtype)
    for start in range(0, pair_ids.size, chunk):
        wanted = pair_ids[start:start + chunk].astype(np.int64, copy=False)
        pos = np.minimum(np.searchsorted(sorted_ids, wanted), sorted_ids.size - 1)
        bad = np.flatnonzero(sorted_ids[pos] != wanted)
        if bad.size:
            raise ValueError(f'pair {start + int(bad[0])}: template id {int(wanted[bad[0]])} '
                             f'(pair_t{col}) has no features')
        rows[start:start + wanted.size] = sorter[pos]
    return rows


#: ``method='auto'`` scores a block of pairs with one matrix product when at least this
#: fraction of its (first template x second template) products is wanted: a product costs
#: ~20 ns per entry (BLAS), a gathered pair a few microseconds (two random 2 KB rows).
DENSE_FRACTION = 1 / 64


def score_template_pairs(template_feats: Any,
                         template_ids: Any,
                         pair_t1: Any,
                         pair_t2: Any,
                         chunk_size: int = 100_000,
                         method: str = 'auto',
                         block_elements: int = 1 << 24) -> np.ndarray:
    """Similarity of template pairs (cosine when the features are L2-normalised).

    Pairs are grouped by first template (a stable sort, skipped when the list is already
    grouped, as IJB lists are). A block of first templates is scored either with one matrix
    product against the second templates it meets (``method='matmul'``; dense blocks, e.g.
    IJB-C, where 3.5k gallery templates meet most of 19.6k probes) or by gathering both
    feature rows of ``chunk_size`` pairs at a time (``'gather'``; sparse blocks). ``'auto'``
    picks per block (:data:`DENSE_FRACTION`). Memory beyond the inputs and the ``P`` scores:
    a few ``P``-long index arrays, a similarity block of at most ``block_elements`` floats
    and two ``chunk_size x D`` buffers; never a ``P x D`` gather.

    Args:
        template_feats (array-like): ``T x D`` template features (e.g. from
            :func:`aggregate_templates`, already L2-normalised).
        template_ids (array-like): ``T`` unique template ids, the rows of ``template_feats``.
        pair_t1 (array-like): ``P`` first template id of each pair.
        pair_t2 (array-like): ``P`` second template id of each pair.
        chunk_size (int): pairs per gather chunk. Defaults to 100000.
        method (str): ``'auto'``, ``'matmul'`` or ``'gather'``. Defaults to ``'auto'``.
        block_elements (int): size bound of a similarity block. Defaults to ``2**24``
            (64 MiB of float32).

    Returns:
        np.ndarray: ``P`` float64 scores (dot products, computed in the features' dtype).

    Examples:
        >>> feats = np.array([[1., 0.], [0., 1.], [0.6, 0.8]])
        >>> score_template_pairs(feats, [10, 20, 30], [10, 10, 20], [20, 30, 30]).tolist()
        [0.0, 0.6, 0.8]
    """
    feats = as_features(template_feats, 'template_feats')
    num_templates = feats.shape[0]
    ids = as_ids(template_ids, num_templates, 'template_ids')
    sorter = np.argsort(ids, kind='stable')
    sorted_ids = ids[sorter]
    if np.any(sorted_ids[1:] == sorted_ids[:-1]):
        raise ValueError('template_ids must be unique')
    if method not in ('auto', 'matmul', 'gather'):
        raise ValueError(f"method must be 'auto', 'matmul' or 'gather', got {method!r}")
    if chunk_size < 1 or block_elements < 1:
        raise ValueError(f'chunk_size and block_elements must be >= 1, got {chunk_size}, '
                         f'{block_elements}')
    chunk_size = int(chunk_size)
    r1 = _pair_rows(sorted_ids, sorter, pair_t1, 1, chunk_size)
    r2 = _pair_rows(sorted_ids, sorter, pair_t2, 2, chunk_size)
    if r1.size != r2.size:
        raise ValueError(f'length mismatch: {r1.size} pair_t1 but {r2.size} pair_t2')
    num = r1.size
    scores = np.empty(num, np.float64)
    if num == 0:
        return scores

    order = None
    if np.any(r1[1:] < r1[:-1]):
        order = np.argsort(r1, kind='stable')
        r1, r2 = r1[order], r2[order]
    group_starts = np.flatnonzero(np.diff(r1)) + 1
    bounds = np.concatenate([[0], group_starts, [num]])  # pairs of group g: bounds[g:g + 2]
    num_groups = bounds.size - 1
    rows_per_block = max(1, int(block_elements) // num_templates)
    step = min(chunk_size, num)
    buffers = None
    for g0 in range(0, num_groups, rows_per_block):
        g1 = min(g0 + rows_per_block, num_groups)
        lo, hi = int(bounds[g0]), int(bounds[g1])
        b1, b2 = r1[lo:hi], r2[lo:hi]
        wanted = np.zeros(num_templates, bool)
        wanted[b2] = True
        cols = np.flatnonzero(wanted)
        dense = method == 'matmul' or (
            method == 'auto' and hi - lo >= DENSE_FRACTION * (g1 - g0) * cols.size)
        if dense:
            col_of = np.cumsum(wanted, dtype=np.int64) - 1
            row_of = np.repeat(np.arange(g1 - g0), np.diff(bounds[g0:g1 + 1]))
            sim = feats[b1[bounds[g0:g1] - lo]] @ feats[cols].T
            values = sim[row_of, col_of[b2]]
            del sim, row_of
        else:
            if buffers is None:
                buffers = (np.empty((step, feats.shape[1]), feats.dtype),
                           np.empty((step, feats.shape[1]), feats.dtype))
            values = np.empty(hi - lo, np.float64)
            for start in range(0, hi - lo, step):
                n = min(step, hi - lo - start)
                np.take(feats, b1[start:start + n], axis=0, out=buffers[0][:n])
                np.take(feats, b2[start:start + n], axis=0, out=buffers[1][:n])
                values[start:start + n] = np.einsum('ij,ij->i', buffers[0][:n],
                                                    buffers[1][:n])
        if order is None:
            scores[lo:hi] = values
        else:
            scores[order[lo:hi]] = values
    return scores
