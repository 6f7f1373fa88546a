"""Per-epoch tables of the first augmentation draw of every sample (docs/architecture.md §4).

``face_batch_collate(flip_prob=...)`` needs, for each sample of a batch, whether
``sample_rng(sample, 'flip').random() < flip_prob``. :func:`~coupleface.utils.seeding.
batch_uniforms` computes that in one NumPy pass per batch, but at batch 64 the pass is
~180 NumPy calls on 64-element arrays: 3 µs per sample alone and 6-9 µs inside a
DataLoader, where each batch of JPEG decodes has evicted NumPy's code and data from the
caches. The draws depend only on (seed, epoch, salt, sample index), so
:func:`batch_decisions` computes them for blocks of 2,048 consecutive indices at a time
(``index_uniforms``, the same values bit for bit), keeps the decisions, one bit per
sample, and answers a batch by indexing.

Cost: a block takes ~1 ms; one epoch of a 5.8M-image set costs each process that sees it
~1.5 s in all (the first batches of an epoch fill most blocks, later ones find them) and
0.7 MB (WebFace42M: ~5 MB). A process keeps the tables of its last two (seed, epoch, salt,
prob) keys. Batches
with samples of different epochs, or indices outside ``[0, 2**28)``, are computed directly.
No library caches NumPy ``SeedSequence`` draws, hence this module.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence, Tuple

import numpy as np

from coupleface.utils.seeding import (
    batch_uniforms,
    get_augment_epoch,
    get_augment_seed,
    index_uniforms,
)

__all__ = ['batch_decisions', 'clear_tables']

BLOCK_SHIFT = 11  # 2,048 samples per block
MAX_INDEX = 1 << 28  # beyond: computed per batch (a table costs 1 bit per index)
_KEEP = 2

_tables: 'OrderedDict[Tuple, _Table]' = OrderedDict()


class _Table:
    """``uniform < prob`` of every index, one bit each, filled block by block."""

    def __init__(self, key: Tuple) -> None:
        self.key = key
        self.bits = np.zeros(0, dtype=np.uint8)  # index i: bit i % 8 of byte i // 8
        self.done = np.zeros(0, dtype=bool)

    def lookup(self, idx: np.ndarray) -> np.ndarray:
        blocks = idx >> BLOCK_SHIFT
        top = int(blocks.max()) + 1
        if top > self.done.size:  # grow to the largest block seen, with a quarter to spare
            size = max(top, self.done.size + self.done.size // 4)
            self.done = np.concatenate([self.done, np.zeros(size - self.done.size, bool)])
            self.bits = np.concatenate([self.bits, np.zeros(
                (size << (BLOCK_SHIFT - 3)) - self.bits.size, np.uint8)])
        missing = blocks[~self.done[blocks]]
        if missing.size:
            _, epoch, salt, prob = self.key
            for block in np.unique(missing).tolist():
                start = block << BLOCK_SHIFT
                span = np.arange(start, start + (1 << BLOCK_SHIFT), dtype=np.uint64)
                self.bits[start >> 3:(start + span.size) >> 3] = np.packbits(
                    index_uniforms(span, epoch, salt) < prob, bitorder='little')
                self.done[block] = True
        return ((self.bits[idx >> 3] >> (idx & 7).astype(np.uint8)) & 1).astype(bool)


def batch_decisions(samples: Sequence[dict], salt: str, prob: float) -> np.ndarray:
    """``batch_uniforms(samples, salt) < prob``, bit for bit, from the epoch's table.

    Args:
        samples: The samples; each needs ``'sample_idx'`` and may carry ``'epoch'``.
        salt (str): The transform's stream name.
        prob (float): The probability of a ``True``.

    Returns:
        np.ndarray: ``len(samples)`` bools.
    """
    if any(s.get('sample_idx') is None for s in samples):
        return batch_uniforms(samples, salt) < prob  # raises, naming the missing key
    epochs = {s.get('epoch') for s in samples}
    idx = np.fromiter((s['sample_idx'] for s in samples), dtype=np.int64, count=len(samples))
    if len(epochs) != 1 or idx.min() < 0 or idx.max() >= MAX_INDEX:
        return batch_uniforms(samples, salt) < prob
    epoch = epochs.pop()
    epoch = get_augment_epoch() if epoch is None else int(epoch)
    key = (get_augment_seed(), epoch, salt, float(prob))
    table = _tables.get(key)
    if table is None:
        table = _tables[key] = _Table(key)
        while len(_tables) > _KEEP:
            _tables.popitem(last=False)
    else:
        _tables.move_to_end(key)
    return table.lookup(idx)


def clear_tables() -> None:
    """Drop every table of this process."""
    _tables.clear()
