"""The run's random streams and the one distinct-integer draw (docs/architecture.md §4 Randomness).

Every stream of coupleface is a pure function of the run's seed and a key, so it is the
same on every rank, in every worker and after a resume. The keys in use:

=============================  ==============================================  ==============
stream                         seed sequence                                   user
=============================  ==============================================  ==============
RelationSampler anchors        ``(seed, epoch, RELATION_ANCHOR_STREAM)``       samplers
RelationSampler group chunk    ``(seed, epoch, RELATION_CHUNK_STREAM, chunk)`` samplers
PartnerSampler shuffle         ``(seed, epoch, PARTNER_SHUFFLE_STREAM)``       samplers
PartnerSampler partners        ``(seed, epoch, PARTNER_DRAW_STREAM)``          samplers
global generators, per step    ``(seed, iteration, rank, ITERATION_STREAM)``   ExactResumeHook
TeacherBank RAD partners       ``(seed, iteration, BANK_PARTNER_STREAM)``      distiller
augmentation of one sample     ``[seed, epoch, sample_idx, crc32(salt)]``      ``seeding.py``
=============================  ==============================================  ==============

The stream ids are part of the definition of each stream: changing one changes which
numbers a seed gives (the sampler, resume and distiller tests pin the sequences).
:func:`floyd_draw` is the one draw of distinct integers (Floyd's algorithm) behind the
RelationSampler's group and image draws and the teacher bank's partner rows.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    'RELATION_ANCHOR_STREAM', 'RELATION_CHUNK_STREAM', 'PARTNER_SHUFFLE_STREAM',
    'PARTNER_DRAW_STREAM', 'ITERATION_STREAM', 'BANK_PARTNER_STREAM', 'seed_sequence',
    'stream_rng', 'floyd_draw', 'draw_distinct', 'draw_excluding'
]

#: RelationSampler: the shuffled cycle of anchor identities of an epoch.
RELATION_ANCHOR_STREAM = 0
#: RelationSampler: the groups of one chunk of global groups (the chunk index follows).
RELATION_CHUNK_STREAM = 1
#: PartnerSampler: the shuffled pass over the dataset.
PARTNER_SHUFFLE_STREAM = 0
#: PartnerSampler: the partner identities and images.
PARTNER_DRAW_STREAM = 1
#: ExactResumeHook: the per-iteration seeds of ``random``, numpy and torch.
ITERATION_STREAM = 0x5EED
#: CoupleFaceDistiller: the teacher-bank rows that are RAD partners at an iteration.
BANK_PARTNER_STREAM = 0xBA4C


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """``np.random.SeedSequence([seed mod 2**64, *key])``: the root of one stream.

    Args:
        seed: The run's (or sampler's) seed; any Python int.
        *key: Non-negative ints naming the stream (epoch or iteration, stream id, ...).

    Returns:
        np.random.SeedSequence: Use ``generate_state`` or :func:`stream_rng`.
    """
    return np.random.SeedSequence([int(seed) % 2**64, *(int(k) for k in key)])


def stream_rng(seed: int, *key: int) -> np.random.Generator:
    """A numpy generator on :func:`seed_sequence` ``(seed, *key)``.

    Examples:
        >>> a = stream_rng(7, 0, RELATION_ANCHOR_STREAM).permutation(5)
        >>> bool((a == stream_rng(7, 0, RELATION_ANCHOR_STREAM).permutation(5)).all())
        True
    """
    return np.random.default_rng(seed_sequence(seed, *key))


def floyd_draw(n: np.ndarray, m: int,
               uniform_int: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
    """Per row, ``m`` distinct integers in ``[0, n_row)`` (Floyd's algorithm, vectorised).

    Step ``j`` (``0 <= j < m``) draws per row ``t`` uniform in ``[0, hi]`` with
    ``hi = n - m + j``; a value the row already holds is replaced by ``hi``, which it cannot
    hold yet. Each row is then a uniformly random ``m``-subset, in O(m) draws whatever ``n``.

    Args:
        n: Range size of every row, int64 ``[R]``, each ``>= m``.
        m: How many to draw per row.
        uniform_int: ``uniform_int(j, hi)`` returns, per row, an integer uniform in
            ``[0, hi]`` (``hi``: int64 ``[R]``); it is called once per step, in order, so
            the draw consumes its random source in a fixed order.

    Returns:
        np.ndarray: int64 ``[R, m]``; column ``j`` is step ``j``'s value.
    """
    n = np.asarray(n, dtype=np.int64)
    out = np.empty((len(n), m), dtype=np.int64)
    if len(n) == 1:  # one row (the bank's partner rows, m up to thousands): a set, not
        taken = set()  # m numpy steps; the same values (tests/utils/test_random_streams.py)
        for j in range(m):
            hi = int(n[0]) - m + j
            t = int(np.asarray(uniform_int(j, np.array([hi], dtype=np.int64)))[0])
            t = hi if t in taken else t
            taken.add(t)
            out[0, j] = t
        return out
    for j in range(m):
        hi = n - m + j  # inclusive upper bound of this step
        t = np.asarray(uniform_int(j, hi), dtype=np.int64)
        if j:
            # Floyd: a value already taken is replaced by `hi`, never taken before.
            t = np.where((out[:, :j] == t[:, None]).any(axis=1), hi, t)
        out[:, j] = t
    return out


def draw_distinct(rng: np.random.Generator, n: np.ndarray, m: int) -> np.ndarray:
    """Per row, ``m`` distinct integers in ``[0, n_row)`` from a numpy generator.

    :func:`floyd_draw` with ``rng.integers(0, hi + 1)`` at every step.

    Args:
        rng: Random generator.
        n: Range size of every row, int64 ``[R]``, each ``>= m``.
        m: How many to draw per row.

    Returns:
        np.ndarray: int64 ``[R, m]``; each row is a uniformly random ``m``-subset.
    """
    return floyd_draw(n, m, lambda _, hi: rng.integers(0, hi + 1))


def draw_excluding(rng: np.random.Generator, n: np.ndarray, excluded: np.ndarray,
                   m: int) -> np.ndarray:
    """Per row, ``m`` distinct integers in ``[0, n_row)`` avoiding that row's ``excluded``.

    Args:
        rng: Random generator.
        n: Range size per row, int64 ``[R]``; ``n - e >= m``.
        excluded: int64 ``[R, e]``, per row distinct values in ``[0, n_row)``.
        m: How many to draw per row.

    Returns:
        np.ndarray: int64 ``[R, m]``.
    """
    x = draw_distinct(rng, n - excluded.shape[1], m)
    # Map [0, n - e) monotonically onto [0, n) minus the excluded values.
    for col in np.sort(excluded, axis=1).T:
        x += x >= col[:, None]
    return x
