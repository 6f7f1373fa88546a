"""The run's random streams and the one Floyd draw (the sampler, resume and distiller tests
pin the sequences their users give)."""
import numpy as np
import pytest

from coupleface.utils.random_streams import (
    BANK_PARTNER_STREAM,
    ITERATION_STREAM,
    PARTNER_DRAW_STREAM,
    PARTNER_SHUFFLE_STREAM,
    RELATION_ANCHOR_STREAM,
    RELATION_CHUNK_STREAM,
    draw_distinct,
    draw_excluding,
    floyd_draw,
    seed_sequence,
    stream_rng,
)


def test_stream_ids_are_the_documented_constants():
    assert (RELATION_ANCHOR_STREAM, RELATION_CHUNK_STREAM) == (0, 1)
    assert (PARTNER_SHUFFLE_STREAM, PARTNER_DRAW_STREAM) == (0, 1)
    assert (ITERATION_STREAM, BANK_PARTNER_STREAM) == (0x5EED, 0xBA4C)


def test_seed_sequence_is_the_plain_one():
    ref = np.random.SeedSequence([(-3) % 2**64, 4, 1]).generate_state(4)
    assert np.array_equal(seed_sequence(-3, 4, 1).generate_state(4), ref)
    a = stream_rng(2**70 + 5, 1, 0).integers(0, 1000, 8)
    assert np.array_equal(a, np.random.default_rng(
        np.random.SeedSequence([5, 1, 0])).integers(0, 1000, 8))  # seed taken mod 2**64
    assert not np.array_equal(a, stream_rng(5, 1, 1).integers(0, 1000, 8))


@pytest.mark.parametrize('n, m', [(10, 3), (5, 5), (1000, 20), (7, 0)])
def test_distinct_in_range_and_deterministic(n, m):
    rows = np.array([n, n + 3, m], dtype=np.int64)
    a = draw_distinct(np.random.default_rng(0), rows, m)
    assert a.shape == (3, m) and a.dtype == np.int64
    for row, size in zip(a, rows):
        assert len(set(row.tolist())) == m and (row >= 0).all() and (row < size).all()
    assert np.array_equal(a, draw_distinct(np.random.default_rng(0), rows, m))
    if m:
        assert not np.array_equal(a, draw_distinct(np.random.default_rng(1), rows, m))


def test_uniform_subsets():
    # every value of [0, 8) is in a 3-subset with probability 3/8; ordered draws: each
    # position uniform too
    rng = np.random.default_rng(3)
    draws = draw_distinct(rng, np.full(16000, 8), 3)
    counts = np.bincount(draws.ravel(), minlength=8)
    assert np.abs(counts / 16000 - 3 / 8).max() < 0.02
    subsets = np.bincount(np.sort(draws, axis=1) @ np.array([64, 8, 1]), minlength=512)
    seen = subsets[subsets > 0]
    assert len(seen) == 56 and seen.min() > 0.7 * 16000 / 56  # all C(8,3) subsets, evenly


def test_floyd_draw_consumes_its_source_in_order():
    calls = []

    def source(j, hi):
        calls.append((j, hi.tolist()))
        return np.zeros_like(hi)  # always 0: Floyd then takes hi

    out = floyd_draw(np.array([6, 4]), 3, source)
    assert calls == [(0, [3, 1]), (1, [4, 2]), (2, [5, 3])]
    assert out.tolist() == [[0, 4, 5], [0, 2, 3]]


def test_excluding_avoids_the_excluded():
    rng = np.random.default_rng(5)
    excluded = np.array([[0, 3], [9, 1], [4, 5]])
    out = draw_excluding(rng, np.array([6, 10, 6]), excluded, 4)
    for row, ex, n in zip(out, excluded, (6, 10, 6)):
        assert len(set(row.tolist())) == 4 and not set(row.tolist()) & set(ex.tolist())
        assert (row < n).all() and (row >= 0).all()
    assert sorted(out[0].tolist()) == [1, 2, 4, 5] and sorted(out[2].tolist()) == [0, 1, 2, 3]


def test_one_row_and_many_rows_give_the_same_values():
    rng = np.random.default_rng(9)
    n, m = np.array([6, 9, 40, 6, 100]), 5
    hi = n[:, None] - m + np.arange(m)
    ints = (rng.random((len(n), m)) * (hi + 1)).astype(np.int64)  # step j uniform in [0, hi]
    many = floyd_draw(n, m, lambda j, _: ints[:, j])
    for r in range(len(n)):
        one = floyd_draw(n[r:r + 1], m, lambda j, _: ints[r:r + 1, j])
        assert np.array_equal(one[0], many[r])
