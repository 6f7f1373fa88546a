"""The one mining pipeline: teacher embeddings -> identity centers -> neighbours -> relations.

:func:`mine_relations` is what the RelationMiningHook (embeddings of the clean view or of
the teacher bank, one shard per rank), ``tools/mine_relations.py`` (a bank, offline) and
``tools/analysis_tools/plot_relations.py`` (a teacher pass, on the fly) run
(docs/architecture.md §2.2): identity centers from float64 sums of the normalised
embeddings, a blocked kNN over the centers, optionally each identity's hardest positives.
:func:`save_mined_relations` writes the result (``relations.npz`` and, with hard
positives, ``<name>_hard_positives.npy``).

Under ``torch.distributed`` every rank passes its own disjoint shard of samples
(``sample_indices``): the center sums, counts and per-sample cosines are
``all_reduce``-d, each rank mines a block of identities and the blocks are gathered, so
every rank returns the same tables as one process given all samples.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import Tensor

from coupleface.utils.dist import all_gather_no_grad, all_reduce

from .relation_miner import (
    accumulate_centers,
    center_cosines,
    centers_from_sums,
    hardest_by_cosine,
    mine_neighbour_identities,
)
from .relations_file import hard_positives_path, save_relations

ArrayLike = Union[Tensor, np.ndarray]

__all__ = ['MinedRelations', 'mine_relations', 'save_mined_relations']


@dataclass
class MinedRelations:
    """What :func:`mine_relations` returns (numpy arrays, the same on every rank).

    Attributes:
        neighbours: ``C x K`` int64 neighbour identities, most similar first (``-1``: none).
        similarities: ``C x K`` float32 cosines of the centers (``-inf`` where ``-1``).
        centers: ``C x D`` float32 unit-norm identity centers.
        hard_positives: ``C x h`` int64 sample indices, lowest cosine to the center first,
            ``-1`` padded; ``None`` without hard positives.
        meta: The provenance written with the file (:func:`~.relations_file.relations_meta`).
        seconds: Wall time of the steps: ``centers``, ``neighbours``, ``hard_positives``.
    """

    neighbours: np.ndarray
    similarities: np.ndarray
    centers: np.ndarray
    hard_positives: Optional[np.ndarray] = None
    meta: Dict[str, Any] = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)

    def hard_positive_lists(self) -> Optional[List[np.ndarray]]:
        """Per identity, its hard positives without the ``-1`` padding (``None``: none)."""
        if self.hard_positives is None:
            return None
        return [row[row >= 0] for row in self.hard_positives]


def _distributed(flag: Optional[bool]) -> bool:
    if flag is not None:
        return flag
    return torch_dist.is_available() and torch_dist.is_initialized()


def _gather_rows(block: Tensor, total: int, world: int) -> Tensor:
    """Concatenate each rank's block of rows (blocks may differ by one row)."""
    per = -(-total // world)
    padded = block.new_zeros((per,) + tuple(block.shape[1:]))
    padded[:len(block)] = block
    out = all_gather_no_grad(padded).view(world, per, *block.shape[1:])
    return torch.cat([o[:len(range(r * per, min(total, (r + 1) * per)))]
                      for r, o in enumerate(out)])


def mine_relations(embeddings: ArrayLike, labels: ArrayLike, num_classes: int, k: int, *,
                   sample_indices: Optional[ArrayLike] = None, hard_positives: int = 0,
                   chunk_size: int = 4096, matmul_dtype: Union[str, torch.dtype, None] = None,
                   allow_empty: bool = False, progress: bool = True,
                   meta: Optional[Dict[str, Any]] = None, read_chunk: int = 65536,
                   distributed: Optional[bool] = None) -> MinedRelations:
    """Mine each identity's ``k`` nearest identities (and hard positives) from embeddings.

    Args:
        embeddings: ``n x D`` raw teacher embeddings of the samples ``sample_indices``
            (tensor, array or memmap; read ``read_chunk`` rows at a time).
        labels: ``N`` identity labels of the *whole* set, in ``[0, num_classes)``.
        num_classes: Number of identities ``C``.
        k: Neighbours per identity, ``1 <= k < C``.
        sample_indices: The samples the rows of ``embeddings`` are (``n`` indices into
            ``labels``): a rank's shard under ``torch.distributed``. ``None``: all ``N``.
        hard_positives: Also keep each identity's this many images farthest from its
            center (0: none).
        chunk_size: kNN block size (memory O(chunk_size² + C·k), never O(C²)).
        matmul_dtype: Precision of the kNN block products (``None``: exact; see
            :func:`~.relation_miner.mine_neighbour_identities`).
        allow_empty: Accept identities without samples (no neighbours, never one).
        progress: Show the kNN progress bar.
        meta: Provenance to carry (normally :func:`~.relations_file.relations_meta`).
        read_chunk: Embedding rows converted to float at once.
        distributed: Combine the shards of all ranks (``None``: when a
            ``torch.distributed`` process group is initialised).

    Returns:
        MinedRelations: The tables, the same on every rank.
    """
    start = time.perf_counter()
    labels = np.asarray(labels, dtype=np.int64)
    if sample_indices is None:
        sample_indices = np.arange(len(labels))
    shard = np.asarray(sample_indices, dtype=np.int64)
    if len(embeddings) != len(shard):
        raise ValueError(f'{len(embeddings)} embeddings for {len(shard)} sample indices')
    dist_on = _distributed(distributed)
    rank, world = (torch_dist.get_rank(), torch_dist.get_world_size()) if dist_on else (0, 1)
    dim = embeddings.shape[1] if getattr(embeddings, 'ndim', 0) == 2 else 1
    if dist_on:  # every rank needs D, even with an empty shard
        dim_t = torch.tensor([dim])
        all_reduce(dim_t, 'max')
        dim = int(dim_t)

    sums = torch.zeros(num_classes, dim, dtype=torch.float64)
    counts = torch.zeros(num_classes, dtype=torch.long)
    for a in range(0, len(shard), read_chunk):
        accumulate_centers(sums, counts, embeddings[a:a + read_chunk],
                           labels[shard[a:a + read_chunk]])
    if dist_on:
        all_reduce(sums)
        all_reduce(counts)
    centers = centers_from_sums(sums, counts, allow_empty=allow_empty).float()
    seconds = dict(centers=time.perf_counter() - start)

    per = -(-num_classes // world)
    rows = range(rank * per, min(num_classes, (rank + 1) * per))
    neighbours, similarities = mine_neighbour_identities(
        centers, k, chunk_size=chunk_size, rows=rows, progress=progress,
        matmul_dtype=matmul_dtype)
    if dist_on:
        neighbours = _gather_rows(neighbours, num_classes, world)
        similarities = _gather_rows(similarities, num_classes, world)
    seconds['neighbours'] = time.perf_counter() - start - seconds['centers']

    hard = None
    if hard_positives > 0:
        cos = torch.zeros(len(labels), dtype=torch.float32)
        if len(shard):
            cos[torch.as_tensor(shard)] = center_cosines(
                embeddings, labels[shard], centers, chunk_size=read_chunk)
        if dist_on:
            all_reduce(cos)  # shards are disjoint: the sum assembles them
        hard = hardest_by_cosine(cos, labels, num_classes, hard_positives).numpy()
        seconds['hard_positives'] = time.perf_counter() - start - sum(seconds.values())
    return MinedRelations(neighbours=neighbours.numpy(), similarities=similarities.numpy(),
                          centers=centers.numpy(), hard_positives=hard,
                          meta=dict(meta or {}), seconds=seconds)


def save_mined_relations(path: str, mined: MinedRelations) -> None:
    """Write ``mined`` to ``path`` (``.npz``) and its hard positives beside it.

    Args:
        path: The relations file (``.npz``); with hard positives also
            :func:`~.relations_file.hard_positives_path` of it.
        mined: The result of :func:`mine_relations`.
    """
    save_relations(path, mined.neighbours, mined.similarities, mined.centers, mined.meta)
    if mined.hard_positives is not None:
        np.save(hard_positives_path(path), mined.hard_positives)
