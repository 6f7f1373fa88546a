"""PartnerSampler: ordinary shuffled batches with mined partner images appended.

CoupleFace's relation loss wants informative pairs (an identity and the identities the
teacher confuses it with) in the batch, but batches made only of a few confusable
identities starve the classifier and BatchNorm (docs/benchmarks.md: 4 × 4 mined groups
cost FCD 7 points). This sampler keeps the classification batch ordinary and brings the
partners in beside it, as EKD's code does with its 32 random + 32 identity-balanced images:
each rank's batch is ``batch_size - num_partners`` images of a shuffled pass over the
dataset (every image once per epoch, as ``DefaultSampler``), followed by ``num_partners``
partner images. Partner ``p`` belongs to the batch's shuffled sample ``p`` (its anchor): an
image of an identity drawn uniformly from the anchor identity's whole mined top-K
(``RelationMiningHook`` → :meth:`set_neighbours`), not only its first neighbour, so an
identity meets all of its confusable identities over an epoch. A per-identity cap
(``cap_factor`` × the mean number of partner slots per identity) keeps hub identities
(neighbours of many) from being oversampled; a capped draw falls back to a random
identity and is counted in :attr:`last_epoch_stats`. Before mining, or with
``random_partners=True`` (the ablation), partners are random identities other than the
anchor's.

The epoch's stream is a pure function of ``(seed, epoch, neighbour table)`` (the stream
ids: ``coupleface/utils/random_streams.py``), generated identically on every rank (global
batch ``b`` is ranks' batches in rank order), so a resumed iterator skips to any position.
Written by hand: no sampler in MMEngine or PyTorch composes batches from two sources with a
mined table.
"""
from __future__ import annotations

import math
from typing import Dict, Iterator, Optional, Sized

import numpy as np
from mmengine.dist import sync_random_seed
from torch.utils.data import Sampler

from coupleface.registry import DATA_SAMPLERS
from coupleface.utils.random_streams import (
    PARTNER_DRAW_STREAM,
    PARTNER_SHUFFLE_STREAM,
    stream_rng,
)

from .identity_index import per_identity_indices
from .rank_info import resolve_rank
from .resume_position import ResumePositionMixin


@DATA_SAMPLERS.register_module()
class PartnerSampler(ResumePositionMixin, Sampler[int]):
    """Shuffled images, then ``num_partners`` mined partner images, per rank batch.

    Args:
        dataset (Sized): Training set with ``class_to_indices`` (one int array of dataset
            indices per identity).
        batch_size (int): Per-rank batch size, shuffled images + partners. **Must equal
            the dataloader's** (MMEngine builds samplers with only ``dataset`` and ``seed``).
        num_partners (int): Partner images at the end of every rank batch, ``0 <=
            num_partners < batch_size``. The distiller's ``partner_samples`` must be the
            same number when the classification loss is to see the shuffled part only.
        top_k (int, optional): Partners are drawn from the first ``top_k`` distinct mined
            neighbours of the anchor identity (``None``: every neighbour mined).
        cap_factor (float): An identity is a partner at most ``max(1, ceil(cap_factor ×
            P / C))`` times per epoch (``P`` partner slots of the global epoch, ``C``
            identities). Defaults to 2.0.
        random_partners (bool): Random identities as partners, even after mining
            (ablation). Defaults to False.
        seed (int, optional): Shared by all ranks; ``None`` draws and syncs one.
        rank (int, optional): Defaults to MMEngine's ``get_dist_info``.
        world_size (int, optional): Defaults to MMEngine's ``get_dist_info``.

    Examples:
        >>> train_dataloader = dict(
        ...     batch_size=144,  # per rank: 128 shuffled images + 16 partners
        ...     sampler=dict(type='PartnerSampler', batch_size=144, num_partners=16),
        ...     dataset=dict(type='MXFaceDataset', data_root='data/ms1m-retinaface-t1'))
        >>> # RelationMiningHook calls sampler.set_neighbours(neighbours) before each epoch
    """

    def __init__(self, dataset: Sized, batch_size: int, num_partners: int,
                 top_k: Optional[int] = None, cap_factor: float = 2.0,
                 random_partners: bool = False, seed: Optional[int] = None,
                 rank: Optional[int] = None, world_size: Optional[int] = None) -> None:
        rank, world_size = resolve_rank('PartnerSampler', rank, world_size)
        if not 0 <= num_partners < batch_size:
            raise ValueError(f'PartnerSampler: num_partners={num_partners} must be in '
                             f'[0, batch_size={batch_size})')
        if top_k is not None and top_k < 1:
            raise ValueError(f'PartnerSampler: top_k={top_k} must be >= 1 or None')
        if not cap_factor > 0:
            raise ValueError(f'PartnerSampler: cap_factor={cap_factor} must be > 0')
        self.dataset = dataset
        self.rank, self.world_size = rank, world_size
        self.batch_size, self.num_partners = batch_size, num_partners
        self.num_shuffled = batch_size - num_partners
        self.top_k, self.cap_factor = top_k, float(cap_factor)
        self.random_partners = random_partners
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0

        self.dataset_len = len(dataset)
        self._flat, self._sizes, self._offsets = per_identity_indices('PartnerSampler', dataset,
                                                                      min_identities=2)
        self.num_identities = len(self._sizes)
        self._label_of = np.full(self.dataset_len, -1, dtype=np.int64)
        self._label_of[self._flat] = np.repeat(np.arange(self.num_identities), self._sizes)

        per_rank = math.ceil(self.dataset_len / world_size)
        self.num_batches = math.ceil(per_rank / self.num_shuffled)
        self.num_samples = self.num_batches * batch_size
        self._neighbours: Optional[np.ndarray] = None
        self._reset_position()
        self.last_epoch_stats: Dict[str, float] = {}

    # ------------------------------------------------------------------ mined relations
    def set_neighbours(self, neighbours: Optional[np.ndarray]) -> None:
        """Set the mined neighbour table ``[C, K]`` (nearest first); ``None`` clears it."""
        if neighbours is None:
            self._neighbours = None
            return
        nb = np.asarray(neighbours)
        if nb.ndim != 2 or nb.shape[0] != self.num_identities or nb.dtype.kind not in 'iu':
            raise ValueError(f'PartnerSampler.set_neighbours: expected an integer array of '
                             f'shape [C={self.num_identities}, K], got {nb.dtype} '
                             f'{list(nb.shape)}')
        if nb.size and (nb.min() < 0 or nb.max() >= self.num_identities):
            raise ValueError(f'PartnerSampler.set_neighbours: values must be in '
                             f'[0, {self.num_identities}), got [{nb.min()}, {nb.max()}]')
        self._neighbours = nb.astype(np.int64)[:, :self.top_k]

    # ------------------------------------------------------------------ stream
    def _rng(self, stream: int) -> np.random.Generator:
        return stream_rng(self.seed, self.epoch, stream)

    def _random_others(self, rng: np.random.Generator, anchors: np.ndarray) -> np.ndarray:
        draw = rng.integers(0, self.num_identities - 1, size=len(anchors))
        return draw + (draw >= anchors)  # uniform over the identities but the anchor

    def _partner_identities(self, rng: np.random.Generator, anchors: np.ndarray
                            ) -> np.ndarray:
        """One partner identity per anchor: uniform over its valid mined neighbours, capped."""
        partners = self._random_others(rng, anchors)
        mined = np.zeros(len(anchors), dtype=bool)
        if self._neighbours is not None and not self.random_partners:
            table = self._neighbours[anchors]  # [P, K]
            valid = table != anchors[:, None]
            counts = valid.sum(axis=1)
            has = counts > 0
            pick = (rng.random(len(anchors)) * np.maximum(counts, 1)).astype(np.int64)
            # the pick-th valid entry of each row
            rank_in_row = np.cumsum(valid, axis=1) - 1
            hit = valid & (rank_in_row == pick[:, None])
            chosen = table[np.arange(len(anchors)), hit.argmax(axis=1)]
            partners = np.where(has, chosen, partners)
            mined = has
        cap = max(1, math.ceil(self.cap_factor * len(anchors) / self.num_identities))
        # occurrence number of each draw of its identity, in stream order
        order = np.argsort(partners, kind='stable')
        sorted_ids = partners[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        occurrence = np.empty(len(partners), dtype=np.int64)
        occurrence[order] = np.arange(len(partners)) - np.repeat(
            starts, np.diff(np.r_[starts, len(partners)]))
        over = occurrence >= cap
        if over.any():
            partners[over] = self._random_others(rng, anchors[over])
        self.last_epoch_stats = dict(
            partners=int(len(anchors)), mined=int((mined & ~over).sum()),
            capped=int((mined & over).sum()), cap=int(cap))
        return partners

    def _epoch_stream(self) -> np.ndarray:
        """All ranks' indices of the epoch, ``[num_batches, world_size, batch_size]``."""
        total = self.num_batches * self.world_size * self.num_shuffled
        rng = self._rng(PARTNER_SHUFFLE_STREAM)
        passes = math.ceil(total / self.dataset_len)
        shuffled = np.concatenate([rng.permutation(self.dataset_len)
                                   for _ in range(passes)])[:total]
        shuffled = shuffled.reshape(self.num_batches, self.world_size, self.num_shuffled)
        if self.num_partners == 0:
            return shuffled
        anchors = self._label_of[shuffled[:, :, :self.num_partners]].reshape(-1)
        prng = self._rng(PARTNER_DRAW_STREAM)
        ids = self._partner_identities(prng, anchors)
        pos = (prng.random(len(ids)) * self._sizes[ids]).astype(np.int64)
        partners = self._flat[self._offsets[ids] + pos].reshape(
            self.num_batches, self.world_size, self.num_partners)
        return np.concatenate([shuffled, partners], axis=2)

    def __iter__(self) -> Iterator[int]:
        skip = self._take_skip()
        yield from self._resumed(self._epoch_stream()[:, self.rank].reshape(-1)[skip:].tolist())

    def __len__(self) -> int:
        """Samples per rank and epoch: ``num_batches × batch_size``."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """A new stream every epoch (``DistSamplerSeedHook`` calls it)."""
        self._new_epoch(epoch)
        self.epoch = epoch

