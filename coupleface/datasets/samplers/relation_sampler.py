"""RelationSampler: mini-batches built from mined identity groups (CoupleFace, ECCV 2022).

CoupleFace distils *mutual relations* (RAD) between a sample and the identities the teacher
finds most similar to its own. Relations between random identities are almost all easy
negatives, so every batch is built from **groups**: an anchor identity plus its
``group_size - 1`` mined neighbour identities (hard negatives, from
``RelationMiningHook`` → :meth:`RelationSampler.set_neighbours`), each identity with
``images_per_identity`` (k) images. Before mining, or for the "RAD without mining" ablation,
a group is the anchor plus random other identities.

The stream of groups is a pure function of ``(seed, epoch, neighbour table, hard-positive
table)`` and is generated identically on every rank; rank ``r`` takes groups
``[r*G, (r+1)*G)`` of each global batch of ``world_size * G`` groups. Global group ``i`` is
drawn from a generator seeded by ``(seed, epoch, i // 1024)`` (chunks of 1024 global
groups; stream ids and the Floyd draws: ``coupleface/utils/random_streams.py``), so the
global stream does not depend on ``world_size``: two ranks with batch ``B`` see exactly the
groups one rank with batch ``2B`` sees, and a resumed iterator jumps to any position
without drawing what it skips.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence, Sized

import numpy as np
from mmengine.dist import sync_random_seed
from torch.utils.data import Sampler

from coupleface.registry import DATA_SAMPLERS
from coupleface.utils.random_streams import (
    RELATION_ANCHOR_STREAM,
    RELATION_CHUNK_STREAM,
    draw_distinct,
    draw_excluding,
    stream_rng,
)

from .identity_index import per_identity_indices
from .rank_info import resolve_rank
from .resume_position import ResumePositionMixin

# Global groups drawn per generator. Part of the definition of the stream: changing it
# changes which indices a (seed, epoch) gives.
_GROUPS_PER_CHUNK = 1024
def _first_distinct_neighbours(neighbours: np.ndarray, num: int) -> tuple[np.ndarray,
                                                                         np.ndarray]:
    """Per identity, its first ``num`` neighbours that are neither itself nor repeated.

    Args:
        neighbours (np.ndarray): int64 ``[C, K]``, row ``c`` ordered nearest first.
        num (int): Neighbours wanted per identity (``group_size - 1``).

    Returns:
        tuple: ``members`` int64 ``[C, num]`` (valid entries first, then -1) and
        ``counts`` int64 ``[C]`` (how many entries of the row are valid).
    """
    num_ids, k = neighbours.shape
    members = np.full((num_ids, num), -1, dtype=np.int64)
    if k == 0 or num == 0:
        return members, np.zeros(num_ids, dtype=np.int64)
    # A neighbour counts when it is not the identity itself and not seen earlier in its row.
    order = np.argsort(neighbours, axis=1, kind='stable')
    sorted_nb = np.take_along_axis(neighbours, order, axis=1)
    first_in_sorted = np.ones_like(sorted_nb, dtype=bool)
    first_in_sorted[:, 1:] = sorted_nb[:, 1:] != sorted_nb[:, :-1]
    first = np.empty_like(first_in_sorted)
    np.put_along_axis(first, order, first_in_sorted, axis=1)
    valid = first & (neighbours != np.arange(num_ids)[:, None])
    rank_in_row = np.cumsum(valid, axis=1) - 1
    take = valid & (rank_in_row < num)
    rows, cols = np.nonzero(take)
    members[rows, rank_in_row[rows, cols]] = neighbours[rows, cols]
    return members, take.sum(axis=1)


@DATA_SAMPLERS.register_module()
class RelationSampler(ResumePositionMixin, Sampler[int]):
    """Yield dataset indices so that each batch is G groups of related identities.

    A **group** is an anchor identity followed by ``group_size - 1`` neighbour identities,
    each with ``images_per_identity`` (k) images, so a rank's batch of ``batch_size`` samples
    holds ``G = batch_size // (group_size * k)`` groups, in group-major order (anchor first
    inside each group, its k images consecutive). Neighbours are the first distinct mined
    neighbours of the anchor (:meth:`set_neighbours`), skipping the anchor itself and
    repeats; when fewer than ``group_size - 1`` remain, the group is filled with random
    identities not yet in it. Without a neighbour table (before mining, or never mined: the
    "RAD without mining" ablation) or with ``random_groups=True``, all neighbours are
    random. An identity's k images are drawn without replacement when it has at least k
    images, with replacement otherwise.

    **Epoch length** is fixed at construction, before any mining: each rank yields
    ``ceil(len(dataset) / world_size)`` samples rounded to whole batches: up
    (``round_up=True``, extra groups pad the last batch) or down (``round_up=False``, at
    least one batch). ``__len__`` returns it. Anchors are a shuffled cycle over all
    identities, reshuffled and repeated as needed, so over an epoch's global stream every
    identity is an anchor ``floor(n)`` or ``ceil(n)`` times.

    **Ranks**: the global stream of groups is generated identically on every rank from
    ``(seed, epoch)``; a global batch is ``world_size * G`` groups and rank ``r`` takes
    groups ``[r*G, (r+1)*G)`` of it. Ranks' batches hold disjoint groups (an identity can
    appear on two ranks only as a member of two different groups).

    **Resume**: :meth:`state_dict` holds ``seed``, ``epoch`` and ``samples_yielded`` (samples
    this rank's iterator has handed out in the current epoch);
    :meth:`load_state_dict` makes the next ``__iter__`` skip that many samples and yield
    exactly the rest of the epoch's stream. A ``DataLoader`` pulls indices ahead of training
    (prefetch), so for an exact resume the resume code should store the number of samples
    *trained on* (``inner_iter * batch_size``) as ``samples_yielded``. The neighbour and
    hard-positive tables are part of the stream: load the same ones (the mined ``.npz``)
    before iterating.

    Args:
        dataset (Sized): Training set exposing ``class_to_indices``: one int array of
            dataset indices per identity (``ImageFolderFaceDataset``, ``MXFaceDataset``).
        batch_size (int): Per-rank batch size. **Must equal the dataloader's**
            ``batch_size``: MMEngine builds samplers with only ``dataset`` and ``seed``, so
            the config passes it here too. Must be ``G * group_size * images_per_identity``
            for an integer ``G >= 1``.
        group_size (int): Identities per group: the anchor plus ``group_size - 1``
            neighbours. Defaults to 4.
        images_per_identity (int): Images per identity in a group (k). Defaults to 4.
        seed (int, optional): Seed shared by all ranks. ``None`` draws one and syncs it
            across ranks (``mmengine.dist.sync_random_seed``, as ``DefaultSampler``).
        rank (int, optional): This process's rank. Defaults to MMEngine's ``get_dist_info``.
        world_size (int, optional): Number of ranks. Defaults to MMEngine's
            ``get_dist_info``.
        random_groups (bool): Always use random neighbours, even after mining (ablation).
            Defaults to False.
        hard_positives (bool): When a hard-positive table is set
            (:meth:`set_hard_positives`), draw a share ``hard_positive_ratio`` of each
            identity's k images from its hard positives. Defaults to False.
        hard_positive_ratio (float): Share of the k images drawn from hard positives
            (rounded to whole images). Defaults to 0.5.
        round_up (bool): Round the epoch up to whole batches (else down). Defaults to True.

    Examples:
        >>> # the dataloader's batch_size and the sampler's must be the same number
        >>> train_dataloader = dict(
        ...     batch_size=64,  # per rank: 4 groups x 4 identities x 4 images
        ...     num_workers=4,
        ...     sampler=dict(type='RelationSampler', batch_size=64, group_size=4,
        ...                  images_per_identity=4),
        ...     dataset=dict(type='ImageFolderFaceDataset', data_root='data/faces'))
        >>> # the mining hook calls sampler.set_neighbours(neighbours) before each epoch
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 group_size: int = 4,
                 images_per_identity: int = 4,
                 seed: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None,
                 random_groups: bool = False,
                 hard_positives: bool = False,
                 hard_positive_ratio: float = 0.5,
                 round_up: bool = True) -> None:
        rank, world_size = resolve_rank('RelationSampler', rank, world_size)
        if group_size < 1 or images_per_identity < 1:
            raise ValueError(f'RelationSampler: group_size={group_size} and '
                             f'images_per_identity={images_per_identity} must be >= 1')
        group_samples = group_size * images_per_identity
        groups_per_batch = batch_size // group_samples
        if groups_per_batch < 1 or groups_per_batch * group_samples != batch_size:
            raise ValueError(
                f'RelationSampler: batch_size={batch_size} is not a whole number of groups of '
                f'group_size={group_size} x images_per_identity={images_per_identity} = '
                f'{group_samples} samples (use a multiple of {group_samples})')
        if not 0.0 <= hard_positive_ratio <= 1.0:
            raise ValueError(f'RelationSampler: hard_positive_ratio={hard_positive_ratio} is '
                             'not in [0, 1]')

        self.dataset = dataset
        self.rank = rank
        self.world_size = world_size
        self.batch_size = batch_size
        self.group_size = group_size
        self.images_per_identity = images_per_identity
        self.groups_per_batch = groups_per_batch
        self.random_groups = random_groups
        self.hard_positives = hard_positives
        self.hard_positive_ratio = hard_positive_ratio
        self.round_up = round_up
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0

        dataset_len = len(dataset)  # also runs a lazy dataset's full_init
        self._flat_indices, self._class_sizes, self._class_offsets = per_identity_indices(
            'RelationSampler', dataset)
        self.num_identities = len(self._class_sizes)
        if self.num_identities < group_size:
            raise ValueError(f'RelationSampler: group_size={group_size} needs at least that '
                             f'many identities, the dataset has {self.num_identities}')

        per_rank = math.ceil(dataset_len / world_size)
        if round_up:
            self.num_batches = math.ceil(per_rank / batch_size)
        else:
            self.num_batches = max(1, per_rank // batch_size)
        self.num_samples = self.num_batches * batch_size
        self.num_global_groups = self.num_batches * world_size * groups_per_batch

        self._members: Optional[np.ndarray] = None  # [C, group_size - 1], -1 = fill randomly
        self._member_counts: Optional[np.ndarray] = None
        self._hard_flat: Optional[np.ndarray] = None  # positions inside the identity's list
        self._hard_offsets: Optional[np.ndarray] = None
        self._hard_sizes: Optional[np.ndarray] = None
        self._reset_position()

    # ------------------------------------------------------------------ mined relations
    def set_neighbours(self, neighbours: Optional[np.ndarray]) -> None:
        """Set the mined neighbour identities used to build groups (``None`` clears them).

        Args:
            neighbours (np.ndarray, optional): int ``[C, K]``, row ``c`` the identities
                nearest to ``c``, nearest first (``RelationMiningHook`` output). ``C`` must
                be the dataset's number of identities; entries in ``[0, C)``. ``K`` may be
                smaller than ``group_size - 1`` (the rest is filled randomly).
        """
        if neighbours is None:
            self._members = self._member_counts = None
            return
        nb = np.asarray(neighbours)
        num_ids = self.num_identities
        if nb.ndim != 2 or nb.shape[0] != num_ids:
            raise ValueError(f'RelationSampler.set_neighbours: expected shape [C={num_ids}, K], '
                             f'got {list(nb.shape)}')
        if nb.dtype.kind not in 'iu':
            raise ValueError('RelationSampler.set_neighbours: expected an integer array, got '
                             f'dtype {nb.dtype}')
        nb = nb.astype(np.int64, copy=False)
        if nb.size and (nb.min() < 0 or nb.max() >= num_ids):
            raise ValueError(f'RelationSampler.set_neighbours: values must be in [0, {num_ids}), '
                             f'got [{nb.min()}, {nb.max()}]')
        self._members, self._member_counts = _first_distinct_neighbours(nb, self.group_size - 1)

    def set_hard_positives(self, table: Optional[Sequence[np.ndarray]]) -> None:
        """Set each identity's hard positives (dataset indices); ``None`` clears them.

        Used only with ``hard_positives=True``. Repeated indices are dropped.

        Args:
            table (Sequence[np.ndarray], optional): ``C`` int arrays; array ``c`` holds
                dataset indices of images of identity ``c`` (may be empty).
        """
        if table is None:
            self._hard_flat = self._hard_offsets = self._hard_sizes = None
            return
        num_ids = self.num_identities
        if len(table) != num_ids:
            raise ValueError(f'RelationSampler.set_hard_positives: expected {num_ids} entries '
                             f'(one per identity), got {len(table)}')
        # dataset index -> (identity, position inside that identity's list)
        size = int(self._flat_indices.max()) + 1
        label_of = np.full(size, -1, dtype=np.int64)
        pos_of = np.zeros(size, dtype=np.int64)
        label_of[self._flat_indices] = np.repeat(np.arange(num_ids), self._class_sizes)
        pos_of[self._flat_indices] = (np.arange(len(self._flat_indices))
                                      - np.repeat(self._class_offsets, self._class_sizes))
        positions = []
        for c, ids in enumerate(table):
            ids = np.asarray(ids).reshape(-1)
            if ids.size and ids.dtype.kind not in 'iu':
                raise ValueError(f'RelationSampler.set_hard_positives: entry {c} has dtype '
                                 f'{ids.dtype}, expected integers')
            ids = ids.astype(np.int64, copy=False)
            bad = (ids < 0) | (ids >= size)
            bad[~bad] = label_of[ids[~bad]] != c
            if bad.any():
                raise ValueError(f'RelationSampler.set_hard_positives: index '
                                 f'{int(ids[bad][0])} of entry {c} is not an image of '
                                 f'identity {c}')
            _, first = np.unique(ids, return_index=True)
            positions.append(pos_of[ids[np.sort(first)]])
        self._hard_sizes = np.array([len(p) for p in positions], dtype=np.int64)
        self._hard_offsets = np.concatenate([[0], np.cumsum(self._hard_sizes)[:-1]])
        self._hard_flat = (np.concatenate(positions) if positions
                           else np.zeros(0, dtype=np.int64))

    # ------------------------------------------------------------------ stream
    def _rng(self, *stream: int) -> np.random.Generator:
        return stream_rng(self.seed, self.epoch, *stream)

    def _anchors(self) -> np.ndarray:
        """Anchor identity of every global group of the epoch: a shuffled cycle, repeated."""
        rng = self._rng(RELATION_ANCHOR_STREAM)
        cycles = math.ceil(self.num_global_groups / self.num_identities)
        return np.concatenate([rng.permutation(self.num_identities)
                               for _ in range(cycles)])[:self.num_global_groups]

    def _group_identities(self, rng: np.random.Generator, anchors: np.ndarray,
                          members: Optional[np.ndarray],
                          counts: Optional[np.ndarray]) -> np.ndarray:
        """Identities of each group ``[R, group_size]``: anchor, then its neighbours."""
        n_rows, n_nb = len(anchors), self.group_size - 1
        num_ids = np.full(n_rows, self.num_identities, dtype=np.int64)
        if members is None:
            others = draw_excluding(rng, num_ids, anchors[:, None], n_nb)
            return np.concatenate([anchors[:, None], others], axis=1)
        groups = np.concatenate([anchors[:, None], members[anchors]], axis=1)
        missing = n_nb - counts[anchors]
        for miss in np.unique(missing[missing > 0]):
            rows = np.flatnonzero(missing == miss)
            have = groups[rows, :self.group_size - miss]
            groups[rows, self.group_size - miss:] = draw_excluding(rng, num_ids[rows], have,
                                                                    int(miss))
        return groups

    def _identity_positions(self, rng: np.random.Generator, ids: np.ndarray,
                            hard: Optional[tuple]) -> np.ndarray:
        """k positions inside each identity's image list, ``[S, k]`` for ``S`` identity slots."""
        k = self.images_per_identity
        sizes = self._class_sizes[ids]
        out = np.empty((len(ids), k), dtype=np.int64)
        if hard is None:
            n_hard = np.zeros(len(ids), dtype=np.int64)
        else:
            hard_flat, hard_offsets, hard_sizes = hard
            wanted = int(round(k * self.hard_positive_ratio))
            n_hard = np.minimum(hard_sizes[ids], wanted)
        for h in np.unique(n_hard):
            rows = np.flatnonzero(n_hard == h)
            h = int(h)
            excluded = np.zeros((len(rows), 0), dtype=np.int64)
            if h:
                picks = draw_distinct(rng, hard_sizes[ids[rows]], h)
                excluded = hard_flat[hard_offsets[ids[rows]][:, None] + picks]
                out[rows, :h] = excluded
            enough = sizes[rows] >= k
            few, many = rows[~enough], rows[enough]
            if len(many):
                out[many, h:] = draw_excluding(rng, sizes[many], excluded[enough], k - h)
            if len(few):  # fewer than k images: with replacement
                out[few, h:] = rng.integers(0, sizes[few][:, None], size=(len(few), k - h))
        return out

    def _chunk_indices(self, chunk: int, anchors: np.ndarray, members, counts,
                       hard) -> np.ndarray:
        """Dataset indices of the global groups of one chunk, ``[R, group_size * k]``."""
        rng = self._rng(RELATION_CHUNK_STREAM, chunk)
        start = chunk * _GROUPS_PER_CHUNK
        chunk_anchors = anchors[start:start + _GROUPS_PER_CHUNK]
        groups = self._group_identities(rng, chunk_anchors, members, counts)
        ids = groups.reshape(-1)
        pos = self._identity_positions(rng, ids, hard)
        flat = self._flat_indices[self._class_offsets[ids][:, None] + pos]
        return flat.reshape(len(chunk_anchors), -1)

    def _global_group(self, local_group: int) -> int:
        """Global index of this rank's ``local_group``-th group of the epoch."""
        batch, slot = divmod(local_group, self.groups_per_batch)
        return (batch * self.world_size + self.rank) * self.groups_per_batch + slot

    def __iter__(self) -> Iterator[int]:
        """Yield this rank's indices for the epoch, skipping any resumed samples."""
        skip = self._take_skip()
        # Snapshot the tables: a set_neighbours during the epoch applies to the next one.
        members = None if self.random_groups else self._members
        counts = self._member_counts
        hard = None
        if self.hard_positives and self._hard_flat is not None:
            hard = (self._hard_flat, self._hard_offsets, self._hard_sizes)
        anchors = self._anchors()

        group_samples = self.group_size * self.images_per_identity
        local_groups = self.num_batches * self.groups_per_batch
        first_group, offset = divmod(skip, group_samples)
        chunk, rows = -1, None
        for local in range(first_group, local_groups):
            gid = self._global_group(local)
            if gid // _GROUPS_PER_CHUNK != chunk:
                chunk = gid // _GROUPS_PER_CHUNK
                rows = self._chunk_indices(chunk, anchors, members, counts, hard)
            yield from self._resumed(rows[gid - chunk * _GROUPS_PER_CHUNK, offset:].tolist())
            offset = 0

    def __len__(self) -> int:
        """Samples per rank and epoch (whole batches), fixed at construction."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (``DistSamplerSeedHook`` calls it): a new stream every epoch.

        Args:
            epoch (int): Epoch number.
        """
        self._new_epoch(epoch)
        self.epoch = epoch

