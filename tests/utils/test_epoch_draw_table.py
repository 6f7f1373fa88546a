"""coupleface.utils.epoch_draw_table: the per-epoch decision tables equal the direct
per-batch computation (and so ``sample_rng(...).random() < prob``) bit for bit."""
import numpy as np
import pytest

from coupleface.utils import epoch_draw_table as edt
from coupleface.utils.seeding import (
    batch_uniforms,
    index_uniforms,
    sample_rng,
    set_augment_epoch,
    set_augment_seed,
)


@pytest.fixture(autouse=True)
def fresh_tables():
    edt.clear_tables()
    yield
    edt.clear_tables()
    set_augment_seed(None)
    set_augment_epoch(None)


def _samples(idx, epoch=None):
    return [dict(sample_idx=int(i)) if epoch is None else dict(sample_idx=int(i), epoch=epoch)
            for i in idx]


def test_index_uniforms_are_sample_rng_first_draws():
    set_augment_seed(5)
    idx = [0, 3, 2**32 - 1, 2**32 + 7, 2**40]
    got = index_uniforms(np.array(idx, dtype=np.int64), 3, 'flip')
    want = [sample_rng(dict(sample_idx=i, epoch=3), 'flip').random() for i in idx]
    assert got.tolist() == want
    assert index_uniforms([-1], 0, 'x')[0] == sample_rng(dict(sample_idx=-1, epoch=0),
                                                         'x').random()


@pytest.mark.parametrize('seed,epoch,salt,prob', [(0, None, 'flip', 0.5),
                                                  (7, 2, 'flip', 0.3), (1, 0, 'mask', 0.9)])
def test_decisions_equal_the_direct_computation(seed, epoch, salt, prob):
    set_augment_seed(seed)
    rng = np.random.default_rng(seed)
    for _ in range(6):  # batches over several blocks, some blocks found filled
        idx = rng.integers(0, 5 * (1 << edt.BLOCK_SHIFT), 64)
        samples = _samples(idx, epoch)
        got = edt.batch_decisions(samples, salt, prob)
        assert got.dtype == bool and got.shape == (64,)
        np.testing.assert_array_equal(got, batch_uniforms(samples, salt) < prob)
    table = next(iter(edt._tables.values()))
    assert table.done.sum() <= 5 and table.bits.size * 8 == table.done.size << edt.BLOCK_SHIFT


def test_default_epoch_and_seed_are_part_of_the_key():
    idx = np.arange(0, 64) * 37
    set_augment_epoch(1)
    first = edt.batch_decisions(_samples(idx), 'flip', 0.5)
    set_augment_epoch(2)
    second = edt.batch_decisions(_samples(idx), 'flip', 0.5)
    np.testing.assert_array_equal(second, batch_uniforms(_samples(idx), 'flip') < 0.5)
    assert not np.array_equal(first, second)
    set_augment_seed(9)
    np.testing.assert_array_equal(edt.batch_decisions(_samples(idx), 'flip', 0.5),
                                  batch_uniforms(_samples(idx), 'flip') < 0.5)
    assert len(edt._tables) == 2  # the oldest key was dropped


def test_mixed_epochs_and_out_of_table_indices_are_computed_directly():
    mixed = _samples([1, 2], 0) + _samples([3, 4], 1)
    np.testing.assert_array_equal(edt.batch_decisions(mixed, 'flip', 0.5),
                                  batch_uniforms(mixed, 'flip') < 0.5)
    odd = _samples([-3, 5, edt.MAX_INDEX + 11])
    np.testing.assert_array_equal(edt.batch_decisions(odd, 'flip', 0.5),
                                  batch_uniforms(odd, 'flip') < 0.5)
    assert not edt._tables
    with pytest.raises(KeyError, match='sample_idx'):
        edt.batch_decisions([dict(epoch=0)], 'flip', 0.5)
