"""Relation mining with the teacher: identity centers, neighbour identities, hard positives.

The "informative mutual relations" of CoupleFace (Liu et al., ECCV 2022) are mined with
the teacher before distillation: every identity's center (mean of its L2-normalised
teacher embeddings, renormalised), then each identity's ``K`` most similar *other*
identities (the hard negatives the RelationSampler groups with it) and, per identity,
its images farthest from the center (the hardest positives).

Pure functions (torch; numpy and memory-mapped arrays are accepted) so the
mining pipeline (``coupleface/mining/pipeline.py``) and the tests share them:

- :func:`accumulate_centers` / :func:`centers_from_sums` stream the center sums over
  shards (each rank accumulates its shard, then ``all_reduce`` the sums and counts);
  :func:`identity_centers` does both in one call.
- :func:`mine_neighbour_identities` is a blocked exact kNN: memory is
  O(chunk_size^2 + C x K), never O(C^2); ``rows`` computes one shard of the rows. Inside
  the computed rows the cosine matrix is symmetric, so each block pair is multiplied once
  and used for both of its row blocks (half the FLOPs of a row-by-row scan). 100k
  identities x 512-d take ~88 CPU-seconds in float32 and ~61 with ``matmul_dtype=
  'bfloat16'`` on a Zen 4 core (``tools/analysis_tools/benchmark_mining.py``).
- :func:`hardest_positives` (= :func:`center_cosines` then :func:`hardest_by_cosine`):
  each identity's images farthest from its center.

The relations file is written and read by ``relations_file.py``; the whole pipeline
(embeddings -> relations) is ``pipeline.mine_relations``.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ArrayLike = Union[Tensor, np.ndarray]
Rows = Union[slice, range, None]

__all__ = [
    'accumulate_centers', 'centers_from_sums', 'identity_centers', 'mine_neighbour_identities',
    'center_cosines', 'hardest_by_cosine', 'hardest_positives'
]


def _float_tensor(x: ArrayLike) -> Tensor:
    """float32 tensor (float64 stays float64); arrays are shared where writable."""
    if not isinstance(x, Tensor):
        x = np.asarray(x)
        x = torch.from_numpy(x if x.flags.writeable else np.array(x))
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _label_tensor(labels: ArrayLike, n: int, num_classes: Optional[int] = None) -> Tensor:
    if not isinstance(labels, Tensor):
        labels = np.asarray(labels)
        labels = torch.from_numpy(labels if labels.flags.writeable else np.array(labels))
    if labels.shape != (n,):
        raise ValueError(f'labels must have shape ({n},), got {tuple(labels.shape)}')
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f'labels must be integers, got {labels.dtype}')
    labels = labels.long()
    if num_classes is not None and n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f'labels must be in [0, {num_classes}), got values in '
                         f'[{int(labels.min())}, {int(labels.max())}]')
    return labels


def accumulate_centers(sums: Tensor, counts: Tensor, embeddings: ArrayLike,
                       labels: ArrayLike) -> Tuple[Tensor, Tensor]:
    """Add a shard of embeddings to per-identity sums of normalised embeddings (in place).

    Args:
        sums: ``C x D`` running sums (float32 or float64), e.g. ``torch.zeros(C, D)``.
        counts: ``C`` running sample counts (int64), e.g. ``torch.zeros(C, dtype=long)``.
        embeddings: ``n x D`` raw embeddings of the shard (any float dtype; a slice of a
            float16 memmap is fine).
        labels: ``n`` identity labels in ``[0, C)``.

    Returns:
        tuple: ``(sums, counts)``, the same tensors, updated. Sum them over ranks with
        ``all_reduce`` and finish with :func:`centers_from_sums`.
    """
    emb = _float_tensor(embeddings)
    if emb.dim() != 2 or emb.shape[1] != sums.shape[1]:
        raise ValueError(f'embeddings must be n x {sums.shape[1]}, got {tuple(emb.shape)}')
    lab = _label_tensor(labels, emb.shape[0], sums.shape[0]).to(sums.device)
    emb = F.normalize(emb.to(device=sums.device, dtype=sums.dtype), dim=1)
    sums.index_add_(0, lab, emb)
    counts.index_add_(0, lab, torch.ones_like(lab, dtype=counts.dtype))
    return sums, counts


def centers_from_sums(sums: Tensor, counts: Tensor, allow_empty: bool = False) -> Tensor:
    """Turn accumulated sums into renormalised identity centers.

    Args:
        sums: ``C x D`` sums of normalised embeddings.
        counts: ``C`` sample counts.
        allow_empty: Give identities without samples a zero center (they are then
            nobody's neighbour and have none) instead of raising.

    Returns:
        Tensor: ``C x D`` unit-norm centers (float32, or float64 sums' dtype).

    Raises:
        ValueError: an identity has no samples and ``allow_empty`` is False.
    """
    empty = torch.nonzero(counts == 0).flatten()
    if len(empty) and not allow_empty:
        shown = ', '.join(str(i) for i in empty[:5].tolist())
        more = f' and {len(empty) - 5} more' if len(empty) > 5 else ''
        raise ValueError(f'identities without samples: {shown}{more} (of {len(counts)}); '
                         'check num_classes and the labels, or pass allow_empty=True')
    return F.normalize(sums, dim=1)  # zero rows stay zero


def identity_centers(embeddings: ArrayLike, labels: ArrayLike, num_classes: int,
                     allow_empty: bool = False, chunk_size: int = 65536) -> Tensor:
    """Mean of the L2-normalised embeddings of each identity, renormalised.

    Args:
        embeddings: ``N x D`` raw embeddings (tensor, array or memmap; read in chunks).
        labels: ``N`` identity labels in ``[0, num_classes)``.
        num_classes: Number of identities ``C``.
        allow_empty: See :func:`centers_from_sums`.
        chunk_size: Samples converted to float at once.

    Returns:
        Tensor: ``C x D`` float32 centers (on the embeddings' device).
    """
    n = len(embeddings)
    if getattr(embeddings, 'ndim', 0) != 2:
        raise ValueError(f'embeddings must be N x D, got shape {tuple(embeddings.shape)}')
    _label_tensor(labels, n)
    dim = embeddings.shape[1]
    device = embeddings.device if isinstance(embeddings, Tensor) else 'cpu'
    sums = torch.zeros(num_classes, dim, device=device)
    counts = torch.zeros(num_classes, dtype=torch.long, device=device)
    for start in range(0, n, chunk_size):
        accumulate_centers(sums, counts, embeddings[start:start + chunk_size],
                           labels[start:start + chunk_size])
    return centers_from_sums(sums, counts, allow_empty=allow_empty)


def _row_range(rows: Rows, total: int) -> Tuple[int, int]:
    if rows is None:
        return 0, total
    if isinstance(rows, (slice, range)):
        start, stop, step = rows.start or 0, total if rows.stop is None else rows.stop, \
            rows.step or 1
        start, stop = min(max(start, 0), total), min(max(stop, 0), total)
        if step != 1:
            raise ValueError(f'rows must be contiguous (step 1), got {rows}')
        return start, max(start, stop)
    raise TypeError(f'rows must be a slice, a range or None, got {type(rows).__name__}')


def _blocks(start: int, stop: int, size: int) -> List[Tuple[int, int]]:
    return [(a, min(a + size, stop)) for a in range(start, stop, size)]


def _merge_topk(best_val: Tensor, best_idx: Tensor, sim: Tensor, offset: int,
                k: int, index: Optional[Tensor] = None) -> None:
    """Merge the row top-k of ``sim`` (columns ``offset + j``, or ``index`` if given) into
    the running best."""
    if index is None:
        val, idx = sim.topk(min(k, sim.shape[1]), dim=1)
    else:
        val, idx = sim, index
    val = torch.cat([best_val, val], dim=1)
    idx = torch.cat([best_idx, idx + offset], dim=1)
    top_val, pos = val.topk(k, dim=1)
    best_val.copy_(top_val)
    best_idx.copy_(idx.gather(1, pos))


#: Rows per group of the column-wise top-k (see :func:`_merge_topk_columns`).
_GROUP = 8


def _merge_topk_columns(best_val: Tensor, best_idx: Tensor, sim: Tensor, offset: int,
                        k: int) -> None:
    """Merge the column top-k of ``sim`` (rows ``offset + i``) into the running best.

    Transposing a block to take row top-k costs more than its matrix product on a CPU, so
    the rows are taken in groups of ``_GROUP``: the top-k of a column lies in the ``k``
    groups with the largest group maxima (any other element has ``k`` larger ones), so
    only ``k x _GROUP`` candidates per column are gathered and ranked.
    """
    rows, cols = sim.shape
    if rows % _GROUP or rows // _GROUP < k:
        _merge_topk(best_val, best_idx, sim.t().contiguous(), offset, k)
        return
    group_max = sim.view(rows // _GROUP, _GROUP, cols).amax(dim=1)  # contiguous reduction
    top_groups = group_max.t().topk(k, dim=1).indices  # cols x k
    cand = (top_groups[:, :, None] * _GROUP
            + torch.arange(_GROUP, device=sim.device)).reshape(cols, k * _GROUP)
    values = sim[cand, torch.arange(cols, device=sim.device)[:, None]]
    top_val, pos = values.topk(k, dim=1)
    _merge_topk(best_val, best_idx, top_val, 0, k, cand.gather(1, pos) + offset)


def mine_neighbour_identities(centers: ArrayLike, k: int, chunk_size: int = 4096,
                              rows: Rows = None, progress: bool = True,
                              matmul_dtype: Union[str, torch.dtype, None] = None
                              ) -> Tuple[Tensor, Tensor]:
    """Each identity's ``k`` most similar other identities, by cosine of the centers.

    A blocked search: the cosine matrix is computed in ``chunk_size x chunk_size``
    blocks merged into a running top-k, so memory is O(chunk_size^2 + rows x k), never
    O(C^2). Blocks inside the computed rows are multiplied once and used for both row
    blocks (the matrix is symmetric). Runs on the centers' device.

    Args:
        centers: ``C x D`` identity centers (normalised here; zero rows are identities
            without samples: never a neighbour, and their own neighbours are ``-1``).
        k: Neighbours per identity, ``1 <= k < C``.
        chunk_size: Block size (rows and columns). Defaults to 4096 (64 MiB of float32
            similarities per block).
        rows: The identities to compute (a contiguous ``slice``/``range``), e.g. one
            rank's shard; ``None`` for all. Shards concatenate to the full result.
        progress: Show a tqdm bar with the throughput in similarities per second.
        matmul_dtype: ``None`` (default): exact search in the centers' precision
            (float32). ``'bfloat16'`` (or ``'float16'``): the block products run in that
            precision (twice as fast on CPUs with AVX512-BF16, more on GPUs) to find
            ``k + 8`` candidates per identity, which are then re-ranked with exact
            float32 cosines: the similarities returned are exact, and the neighbours are
            too unless a true neighbour ranks below ``k + 8`` at low precision (cosine
            errors are ~1e-4).

    Returns:
        tuple: ``neighbours`` (``C_rows x k`` int64, most similar first; ``-1`` where
        fewer than ``k`` candidates exist) and ``similarities`` (``C_rows x k`` float32
        cosines; ``-inf`` where the neighbour is ``-1``).
    """
    x = _float_tensor(centers)
    if x.dim() != 2:
        raise ValueError(f'centers must be C x D, got shape {tuple(x.shape)}')
    total = x.shape[0]
    if int(k) != k or not 1 <= k < total:
        raise ValueError(f'k must be an integer in [1, {total - 1}] for {total} identities, '
                         f'got {k}')
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    if isinstance(matmul_dtype, str):
        if matmul_dtype not in ('float32', 'float64', 'bfloat16', 'float16'):
            raise ValueError(f'matmul_dtype must be None, float32, float64, bfloat16 or '
                             f'float16, got {matmul_dtype!r}')
        matmul_dtype = getattr(torch, matmul_dtype)
    k = int(k)
    start, stop = _row_range(rows, total)
    valid = x.abs().sum(dim=1) > 0
    x = F.normalize(x, dim=1)
    low_precision = matmul_dtype is not None and matmul_dtype.itemsize < x.dtype.itemsize
    search_k = min(k + _RERANK_EXTRA, total - 1) if low_precision else k
    xm = x.to(matmul_dtype) if matmul_dtype is not None else x
    best_val, best_idx = _blocked_topk(xm, valid, search_k, chunk_size, start, stop,
                                       progress, f'mining {k} neighbours of '
                                       f'{stop - start} identities')
    if low_precision:
        best_val, best_idx = _rerank(x, best_idx, k, start, chunk_size)
    best_idx[best_val == float('-inf')] = -1
    return best_idx, best_val.float()


#: Extra candidates kept by a low-precision search for the exact re-ranking.
_RERANK_EXTRA = 8


def _blocked_topk(x: Tensor, valid: Tensor, k: int, chunk_size: int, start: int, stop: int,
                  progress: bool, desc: str) -> Tuple[Tensor, Tensor]:
    """Running top-k of rows ``start:stop`` of ``x @ x.T`` (self and invalid excluded)."""
    total, num_rows = x.shape[0], stop - start
    best_val = torch.full((num_rows, k), float('-inf'), dtype=x.dtype, device=x.device)
    best_idx = torch.full((num_rows, k), -1, dtype=torch.long, device=x.device)
    all_valid = bool(valid.all())
    row_blocks = _blocks(start, stop, chunk_size)
    outside = _blocks(0, start, chunk_size) + _blocks(stop, total, chunk_size)
    work = sum((b - a) * (d - c) for i, (a, b) in enumerate(row_blocks)
               for c, d in row_blocks[i:] + outside)
    neg_inf = float('-inf')
    from tqdm import tqdm
    with tqdm(total=work, unit='sim', unit_scale=True, disable=not progress,
              desc=desc) as bar:
        for i, (a, b) in enumerate(row_blocks):
            for c, d in row_blocks[i:] + outside:
                sim = x[a:b] @ x[c:d].t()
                if not all_valid:
                    sim.masked_fill_(~valid[c:d][None, :], neg_inf)
                    sim.masked_fill_(~valid[a:b][:, None], neg_inf)
                if c == a:
                    sim.fill_diagonal_(neg_inf)
                _merge_topk(best_val[a - start:b - start], best_idx[a - start:b - start],
                            sim, c, k)
                if c != a and start <= c < stop:  # the mirrored block: rows c:d
                    _merge_topk_columns(best_val[c - start:d - start],
                                        best_idx[c - start:d - start], sim, a, k)
                bar.update((b - a) * (d - c))
    return best_val, best_idx


def _rerank(x: Tensor, candidates: Tensor, k: int, start: int,
            chunk_size: int) -> Tuple[Tensor, Tensor]:
    """Exact cosines of the candidates (``-1`` = none) and their top-k."""
    best_val = torch.empty(len(candidates), k, dtype=x.dtype, device=x.device)
    best_idx = torch.empty(len(candidates), k, dtype=torch.long, device=x.device)
    step = max(1, chunk_size // 4)
    for a in range(0, len(candidates), step):
        cand = candidates[a:a + step]
        sim = torch.einsum('rd,rkd->rk', x[start + a:start + a + len(cand)],
                           x[cand.clamp(min=0)])
        sim.masked_fill_(cand < 0, float('-inf'))
        val, pos = sim.topk(k, dim=1)
        best_val[a:a + len(cand)] = val
        best_idx[a:a + len(cand)] = cand.gather(1, pos)
    return best_val, best_idx


def center_cosines(embeddings: ArrayLike, labels: ArrayLike, centers: ArrayLike,
                   chunk_size: int = 65536) -> Tensor:
    """Cosine of every sample to its identity's center.

    Args:
        embeddings: ``n x D`` raw embeddings (read in chunks; a memmap is fine).
        labels: ``n`` identity labels in ``[0, C)``.
        centers: ``C x D`` identity centers (normalised here).
        chunk_size: Samples processed at once.

    Returns:
        Tensor: ``n`` cosines (the centers' float dtype, on their device).
    """
    cent = F.normalize(_float_tensor(centers), dim=1)
    n = len(embeddings)
    lab = _label_tensor(labels, n, cent.shape[0]).to(cent.device)
    sims = torch.empty(n, dtype=cent.dtype, device=cent.device)
    for a in range(0, n, chunk_size):
        emb = F.normalize(_float_tensor(embeddings[a:a + chunk_size]).to(cent), dim=1)
        sims[a:a + len(emb)] = (emb * cent[lab[a:a + len(emb)]]).sum(dim=1)
    return sims


def hardest_by_cosine(cosines: ArrayLike, labels: ArrayLike, num_classes: int,
                      num: int) -> Tensor:
    """Each identity's ``num`` samples of lowest cosine (to its center), lowest first.

    Args:
        cosines: ``N`` per-sample cosines (:func:`center_cosines`).
        labels: ``N`` identity labels in ``[0, num_classes)``.
        num_classes: Number of identities ``C``.
        num: Samples per identity.

    Returns:
        Tensor: ``C x num`` int64 sample indices, hardest first (ties: lower index first),
        padded with ``-1`` where an identity has fewer than ``num`` samples.
    """
    if int(num) != num or num < 1:
        raise ValueError(f'num must be an integer >= 1, got {num}')
    sims = _float_tensor(cosines)
    n = len(sims)
    lab = _label_tensor(labels, n, num_classes).to(sims.device)
    order = torch.argsort(sims, stable=True)
    order = order[torch.argsort(lab[order], stable=True)]  # by identity, then by cosine
    sorted_labels = lab[order]
    counts = torch.bincount(lab, minlength=num_classes)
    first = torch.cumsum(counts, 0) - counts
    rank_in_identity = torch.arange(n, device=sims.device) - first[sorted_labels]
    keep = rank_in_identity < num
    out = torch.full((num_classes, int(num)), -1, dtype=torch.long, device=sims.device)
    out[sorted_labels[keep], rank_in_identity[keep]] = order[keep]
    return out


def hardest_positives(embeddings: ArrayLike, labels: ArrayLike, centers: ArrayLike,
                      num: int, chunk_size: int = 65536) -> Tensor:
    """Each identity's ``num`` images farthest from its center (lowest cosine first).

    Args:
        embeddings: ``N x D`` raw embeddings (read in chunks).
        labels: ``N`` identity labels in ``[0, C)``.
        centers: ``C x D`` identity centers.
        num: Images per identity.
        chunk_size: Samples processed at once.

    Returns:
        Tensor: ``C x num`` int64 sample indices (rows of ``embeddings``), hardest first,
        padded with ``-1`` where an identity has fewer than ``num`` images.
    """
    if int(num) != num or num < 1:
        raise ValueError(f'num must be an integer >= 1, got {num}')
    sims = center_cosines(embeddings, labels, centers, chunk_size)
    return hardest_by_cosine(sims, labels, len(centers), num)
