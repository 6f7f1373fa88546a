"""first_uniforms: NumPy's SeedSequence + PCG64 first draw, vectorised, equal bit for bit."""
import numpy as np
import pytest

from coupleface.utils.first_uniforms import first_uniforms
from coupleface.utils.seeding import salt_hash, seed_words


def _keys(rng, n, seed_hi):
    """Keys [seed, epoch, sample_idx, crc32(salt)] as sample_rng builds them."""
    seed = rng.integers(0, 2**32, n) + (rng.integers(1, 2**31, n) << 32 if seed_hi else 0)
    keys = np.stack([seed, rng.integers(0, 50, n), rng.integers(0, 2**31, n),
                     np.full(n, salt_hash('flip'))], axis=1).astype(object)
    keys[:n // 10, 1] = 0   # epoch 0
    keys[n // 10:n // 5, 2] = 0  # sample_idx 0
    keys[0, :3] = 0
    return [[int(v) for v in row] for row in keys]


@pytest.mark.parametrize('seed_hi', [False, True], ids=['4-word', '5-word'])
def test_equals_default_rng_on_10000_keys(seed_hi):
    keys = _keys(np.random.default_rng(int(seed_hi)), 10_000, seed_hi)
    by_length = {}
    for k in keys:
        by_length.setdefault(len(seed_words(k)), []).append(k)
    assert len(by_length[5 if seed_hi else 4]) >= 9_999  # key 0 (all zero) has 4 words
    for group in by_length.values():
        words = np.stack([seed_words(k) for k in group])
        expected = np.array([np.random.default_rng(k).random() for k in group])
        np.testing.assert_array_equal(first_uniforms(words), expected)


@pytest.mark.parametrize('length', [1, 2, 3, 6, 9])
def test_other_key_lengths_and_extreme_words(length):
    rng = np.random.default_rng(length)
    words = rng.integers(0, 2**32, (500, length), dtype=np.uint64).astype(np.uint32)
    words[0], words[1] = 0, 2**32 - 1
    expected = np.array([np.random.default_rng(w).random() for w in words])
    np.testing.assert_array_equal(first_uniforms(words), expected)


def test_rejects_what_is_not_rows_of_uint32_words():
    with pytest.raises(ValueError, match='uint32'):
        first_uniforms(np.zeros((3, 4), np.int64))
    with pytest.raises(ValueError, match='uint32'):
        first_uniforms(np.zeros(4, np.uint32))
    assert first_uniforms(np.zeros((0, 4), np.uint32)).shape == (0,)
