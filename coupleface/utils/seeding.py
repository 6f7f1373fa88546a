"""Per-sample random generators for data augmentation (docs/architecture.md §4 Randomness).

Every random transform of coupleface draws from
``np.random.default_rng([seed, epoch, sample_idx, crc32(salt)])``: the same
(global seed, epoch, sample) gives the same augmentation in any process, worker
or order, and a new epoch gives a new draw. Transforms never touch the global
numpy / Python / torch generators, so the number of DataLoader workers, their
scheduling and resuming do not change what a sample looks like.

Where the three numbers come from:

* ``seed``: the value given to :func:`set_augment_seed` (a hook calls it with
  ``runner.seed`` before the data loaders start), else 0. MMEngine keeps the
  seed only on the Runner (``Runner.seed``, set by ``set_random_seed``); there
  is no global to read it from, hence the setter.
* ``epoch``: ``results['epoch']`` when the sample carries it; else the value
  given to :func:`set_augment_epoch`; else the ``'epoch'`` runtime info of
  MMEngine's current ``MessageHub`` (``RuntimeInfoHook`` updates it in
  ``before_train_epoch``); else 0.
* ``sample_idx``: ``results['sample_idx']`` (required).

DataLoader workers are forked processes: a worker sees the module values (and
the MessageHub) of the parent *when it was forked*. MMEngine's train loop
creates the loader iterator after ``before_train_epoch``, so with
``persistent_workers=False`` the workers are re-forked every epoch and see the
current epoch. With ``persistent_workers=True`` they keep the epoch of the
first fork; then the epoch must travel with the sample (``results['epoch']``,
e.g. a sampler yielding ``(epoch, index)``) or every epoch repeats the
augmentation of the first.
"""
from __future__ import annotations

import zlib
from typing import Optional, Sequence

import numpy as np

from coupleface.utils.first_uniforms import first_uniforms

_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1

_augment_seed: Optional[int] = None
_augment_epoch: Optional[int] = None


def set_augment_seed(seed: Optional[int]) -> None:
    """Set the global seed of augmentation draws (``None`` resets to the default 0).

    Call it in the main process before the DataLoader workers start (e.g. in a
    hook's ``before_train`` with ``runner.seed``); forked workers inherit it.

    Args:
        seed (int, optional): The experiment's seed.
    """
    global _augment_seed
    _augment_seed = None if seed is None else int(seed)


def set_augment_epoch(epoch: Optional[int]) -> None:
    """Set the current epoch of augmentation draws (``None`` clears it).

    Call it in ``before_train_epoch``. Workers forked later (non-persistent
    workers) see the new value; persistent workers do not (see module doc).

    Args:
        epoch (int, optional): The epoch about to run (0-based, ``runner.epoch``).
    """
    global _augment_epoch
    _augment_epoch = None if epoch is None else int(epoch)


def get_augment_seed() -> int:
    """The global augmentation seed in use (0 until :func:`set_augment_seed`)."""
    return 0 if _augment_seed is None else _augment_seed


def _message_hub_epoch() -> Optional[int]:
    """The ``'epoch'`` runtime info of MMEngine's current MessageHub, if any."""
    from mmengine.logging import MessageHub

    # Do not create a MessageHub as a side effect when no Runner made one.
    if not getattr(MessageHub, '_instance_dict', None):
        return None
    epoch = MessageHub.get_current_instance().get_info('epoch')
    return None if epoch is None else int(epoch)


def get_augment_epoch(results: Optional[dict] = None) -> int:
    """The epoch a sample's augmentation is drawn for.

    Args:
        results (dict, optional): The sample; its ``'epoch'`` wins when present.

    Returns:
        int: ``results['epoch']``, else the :func:`set_augment_epoch` value,
        else the MessageHub's ``'epoch'`` info, else 0.
    """
    if results is not None and results.get('epoch') is not None:
        return int(results['epoch'])
    if _augment_epoch is not None:
        return _augment_epoch
    epoch = _message_hub_epoch()
    return 0 if epoch is None else epoch


def salt_hash(salt: str) -> int:
    """A stable (process- and run-independent) 32-bit hash of ``salt``."""
    return zlib.crc32(salt.encode('utf-8'))


def sample_rng(results: dict, salt: str) -> np.random.Generator:
    """The random generator of one transform on one sample in one epoch.

    Args:
        results (dict): The sample; needs ``'sample_idx'``, may carry ``'epoch'``.
        salt (str): Distinguishes transforms (and draws within one) so that they
            do not share a stream.

    Returns:
        np.random.Generator: ``default_rng([seed, epoch, sample_idx, crc32(salt)])``.

    Raises:
        KeyError: ``results`` has no ``'sample_idx'``.

    Examples:
        >>> a = sample_rng({'sample_idx': 7}, 'mask').random()
        >>> a == sample_rng({'sample_idx': 7}, 'mask').random()
        True
        >>> a == sample_rng({'sample_idx': 7, 'epoch': 1}, 'mask').random()
        False
    """
    if results.get('sample_idx') is None:
        raise KeyError(f'random transforms draw from (seed, epoch, sample_idx) but the sample '
                       f'has no "sample_idx" (keys {sorted(results)}); the dataset must set it')
    key = [get_augment_seed(), get_augment_epoch(results), int(results['sample_idx']),
           salt_hash(salt)]
    return np.random.default_rng(seed_words([int(v) & _MASK64 for v in key]))


def batch_uniforms(samples: Sequence[dict], salt: str) -> np.ndarray:
    """``sample_rng(s, salt).random()`` of every sample, bit for bit, in one array pass.

    The first draw of each sample's stream without building a ``SeedSequence`` and a
    ``PCG64`` per sample (:func:`coupleface.utils.first_uniforms.first_uniforms`); e.g. the
    flip decisions of a whole batch (``face_batch_collate(flip_prob=...)``).

    Args:
        samples: The samples; each needs ``'sample_idx'`` and may carry ``'epoch'``.
        salt (str): The transform's stream name (as given to :func:`sample_rng`).

    Returns:
        np.ndarray: ``len(samples)`` float64 values in ``[0, 1)``.

    Raises:
        KeyError: a sample has no ``'sample_idx'``.

    Examples:
        >>> u = batch_uniforms([{'sample_idx': 7}, {'sample_idx': 8}], 'mask')
        >>> u[1] == sample_rng({'sample_idx': 8}, 'mask').random()
        True
    """
    if any(s.get('sample_idx') is None for s in samples):
        raise KeyError('random transforms draw from (seed, epoch, sample_idx) but a sample '
                       'has no "sample_idx"; the dataset must set it')
    default_epoch = get_augment_epoch()
    epochs = np.array([default_epoch if s.get('epoch') is None else int(s['epoch'])
                       for s in samples], dtype=object)
    idx = np.array([int(s['sample_idx']) & _MASK64 for s in samples], dtype=np.uint64)
    out = np.empty(len(samples), dtype=np.float64)
    for epoch in sorted(set(epochs.tolist())):
        rows = np.flatnonzero(epochs == epoch)
        out[rows] = index_uniforms(idx[rows], epoch, salt)
    return out


def index_uniforms(indices: np.ndarray, epoch: int, salt: str) -> np.ndarray:
    """``sample_rng({'sample_idx': i, 'epoch': epoch}, salt).random()`` of every index ``i``
    (at the current :func:`set_augment_seed` seed), bit for bit, in one array pass.

    Args:
        indices: Sample indices (ints; negative ones as ``sample_rng`` takes them, mod 2**64).
        epoch (int): The epoch of every draw.
        salt (str): The transform's stream name.

    Returns:
        np.ndarray: ``len(indices)`` float64 values in ``[0, 1)``.
    """
    idx = np.asarray(indices)
    if idx.dtype.kind == 'i' and (idx.size == 0 or idx.min() >= 0):
        idx = idx.astype(np.uint64)
    elif idx.dtype != np.uint64:
        idx = np.array([int(i) & _MASK64 for i in idx.tolist()], dtype=np.uint64)
    head = seed_words([get_augment_seed() & _MASK64])
    fixed = np.concatenate([head, seed_words([int(epoch) & _MASK64])])
    tail = seed_words([salt_hash(salt)])
    wide = idx > _MASK32
    out = np.empty(idx.size, dtype=np.float64)
    # rows with the same word layout (1 or 2 index words) share one pass
    for two in (False, True):
        rows = np.flatnonzero(wide == two)
        if rows.size == 0:
            continue
        cols = [idx[rows] & _MASK32] + ([idx[rows] >> np.uint64(32)] if two else [])
        words = np.hstack([np.broadcast_to(fixed, (rows.size, fixed.size)),
                           np.stack(cols, axis=1).astype(np.uint32),
                           np.broadcast_to(tail, (rows.size, tail.size))])
        out[rows] = first_uniforms(words)
    return out


def seed_words(key: list) -> np.ndarray:
    """The uint32 entropy words NumPy's ``SeedSequence`` makes of a list of ints.

    ``default_rng(seed_words(key))`` is ``default_rng(key)`` (same state, same draws) at
    about two thirds of the cost: each non-negative int becomes its little-endian 32-bit
    words (0 is one word), as ``numpy.random.bit_generator._coerce_to_uint32_array`` does,
    without its per-int NumPy scalar and error-state overhead.

    Args:
        key: Non-negative Python ints.

    Returns:
        np.ndarray: uint32 words.
    """
    words = []
    for v in key:
        if v == 0:
            words.append(0)
        while v > 0:
            words.append(v & _MASK32)
            v >>= 32
    return np.array(words, dtype=np.uint32)
