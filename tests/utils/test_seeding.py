"""sample_rng: draws depend on (seed, epoch, sample_idx, salt) only, and the epoch sources."""
import zlib

import numpy as np
import pytest
from mmengine.logging import MessageHub

from coupleface.utils import seeding
from coupleface.utils.seeding import (
    get_augment_epoch,
    get_augment_seed,
    sample_rng,
    set_augment_epoch,
    set_augment_seed,
)


@pytest.fixture(autouse=True)
def _reset_globals():
    set_augment_seed(None)
    set_augment_epoch(None)
    yield
    set_augment_seed(None)
    set_augment_epoch(None)


def draw(results, salt='t'):
    return sample_rng(results, salt).random(4)


def test_same_key_same_draw_and_each_part_changes_it():
    ref = draw({'sample_idx': 5})
    np.testing.assert_array_equal(ref, draw({'sample_idx': 5}))
    np.testing.assert_array_equal(ref, draw({'sample_idx': 5, 'img': np.zeros(3)}))
    assert not np.allclose(ref, draw({'sample_idx': 6}))
    assert not np.allclose(ref, draw({'sample_idx': 5}, salt='u'))
    assert not np.allclose(ref, draw({'sample_idx': 5, 'epoch': 1}))
    set_augment_seed(1)
    assert get_augment_seed() == 1
    assert not np.allclose(ref, draw({'sample_idx': 5}))
    set_augment_seed(None)
    np.testing.assert_array_equal(ref, draw({'sample_idx': 5}))


def test_matches_documented_formula():
    set_augment_seed(42)
    got = sample_rng({'sample_idx': 9, 'epoch': 3}, 'mask').random(3)
    want = np.random.default_rng([42, 3, 9, seeding.salt_hash('mask')]).random(3)
    np.testing.assert_array_equal(got, want)
    # crc32 is stable across processes and runs (unlike hash(str)).
    assert seeding.salt_hash('mask') == zlib.crc32(b'mask')


def test_epoch_sources_in_order():
    assert get_augment_epoch({'sample_idx': 0}) == 0
    set_augment_epoch(4)
    assert get_augment_epoch({'sample_idx': 0}) == 4
    assert get_augment_epoch({'sample_idx': 0, 'epoch': 7}) == 7  # the sample wins
    e4 = draw({'sample_idx': 1})
    set_augment_epoch(5)
    assert not np.allclose(e4, draw({'sample_idx': 1}))
    np.testing.assert_array_equal(e4, draw({'sample_idx': 1, 'epoch': 4}))


def test_message_hub_epoch_is_the_fallback():
    hub = MessageHub.get_instance('test_seeding_hub')
    try:
        hub.update_info('epoch', 3)
        assert get_augment_epoch({'sample_idx': 0}) == 3
        set_augment_epoch(1)  # an explicit setter wins over the hub
        assert get_augment_epoch({'sample_idx': 0}) == 1
    finally:
        hub.update_info('epoch', None)
    set_augment_epoch(None)
    assert get_augment_epoch({'sample_idx': 0}) == 0


def test_missing_sample_idx_is_an_error_and_global_rng_untouched():
    with pytest.raises(KeyError, match='sample_idx'):
        sample_rng({'img': None}, 'x')
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    sample_rng({'sample_idx': 2}, 'x').random(10)
    np.testing.assert_array_equal(state, np.random.get_state()[1])


def test_large_and_negative_values_are_accepted():
    set_augment_seed(2 ** 40)
    a = draw({'sample_idx': 2 ** 33, 'epoch': -1})
    np.testing.assert_array_equal(a, draw({'sample_idx': 2 ** 33, 'epoch': -1}))


def test_seed_words_give_numpys_own_stream():
    from coupleface.utils.seeding import seed_words
    rng = np.random.default_rng(3)
    keys = [[0, 0, 0, 0], [2**64 - 1, 0, 12345, 2**32 - 1], [2**40 + 5, 3, 7, 1]]
    keys += [[int(v) for v in rng.integers(0, 2**63, 4)] for _ in range(50)]
    for key in keys:
        np.testing.assert_array_equal(np.random.default_rng(key).random(8),
                                      np.random.default_rng(seed_words(key)).random(8))


def test_batch_uniforms_are_each_samples_first_draw():
    from coupleface.utils.seeding import batch_uniforms
    rng = np.random.default_rng(5)
    samples = [{'sample_idx': int(i)} for i in rng.integers(0, 2**31, 200)]
    samples += [{'sample_idx': 0}, {'sample_idx': 2**32}, {'sample_idx': -3},
                {'sample_idx': 9, 'epoch': 0}, {'sample_idx': 9, 'epoch': 2**33}]
    for seed, epoch in ((None, None), (0, 0), (2**40 + 7, 3)):
        set_augment_seed(seed)
        set_augment_epoch(epoch)
        expected = [sample_rng(s, 'flip').random() for s in samples]
        np.testing.assert_array_equal(seeding.batch_uniforms(samples, 'flip'), expected)
    assert batch_uniforms([], 'flip').shape == (0,)
    with pytest.raises(KeyError, match='sample_idx'):
        batch_uniforms([{'sample_idx': 1}, {}], 'flip')
