"""The first ``default_rng(words).random()`` of many keys at once (docs/architecture.md §4).

``sample_rng(results, salt).random()`` builds a ``SeedSequence`` and a ``PCG64`` per sample
(8-20 µs) to draw one float. :func:`first_uniforms` computes that same float, bit for bit,
for a whole batch of keys with NumPy array arithmetic:

1. ``SeedSequence(words)``: ``mix_entropy`` into a pool of four uint32 words (``hashmix``
   and ``mix`` with the constants below), then ``generate_state(4, uint64)``
   (numpy/random/bit_generator.pyx). The ``hash_const`` sequence does not depend on the
   data, so it is computed as Python ints.
2. ``PCG64`` seeding, ``pcg_setseq_128_srandom_r`` (numpy/random/src/pcg64/pcg64.h):
   ``inc = initseq << 1 | 1``, ``state = 0``, step, ``state += initstate``, step, with
   ``initstate = s0 << 64 | s1`` and ``initseq = s2 << 64 | s3``.
3. ``next_uint64``: step, then the XSL-RR output ``rotr64(hi ^ lo, state >> 122)``;
   ``random()`` is ``(u64 >> 11) * 2**-53``.

128-bit values are (high, low) pairs of uint64 arrays; the high word of a 64×64 product
comes from 32-bit halves. Tested against ``np.random.default_rng`` on random keys
(tests/utils/test_first_uniforms.py).
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ['first_uniforms']

_M32 = (1 << 32) - 1
_M64 = (1 << 64) - 1
_POOL = 4
_INIT_A, _MULT_A = 0x43b0d7e5, 0x931e8875
_INIT_B, _MULT_B = 0x8b51f9dd, 0x58f38ded
_MIX_MULT_L, _MIX_MULT_R = 0xca01f9dd, 0x4973f715
_XSHIFT = np.uint32(16)
_PCG_MULT = (0x2360ED051FC65DA4, 0x4385DF649FCCF645)  # PCG_DEFAULT_MULTIPLIER_128 (hi, lo)

_U32 = np.uint32
_U64 = np.uint64
_S32, _S63 = _U64(32), _U64(63)


class _HashConsts:
    """The successive ``hash_const`` values of a hashmix chain, ``count`` at a time.

    ``hashmix`` xors with ``hash_const``, multiplies it by ``mult`` (mod 2**32) and then
    multiplies the value by the new constant; neither depends on the data.
    """

    def __init__(self, start: int, mult: int) -> None:
        self.const, self.mult = start, mult

    def take(self, count: int) -> tuple:
        """``(xor, mul)`` uint32 arrays of the next ``count`` hashmix calls."""
        xor, mul = [], []
        for _ in range(count):
            xor.append(self.const)
            self.const = (self.const * self.mult) & _M32
            mul.append(self.const)
        return np.array(xor, dtype=_U32), np.array(mul, dtype=_U32)


def _hashmix(value: np.ndarray, consts: tuple) -> np.ndarray:
    value = (value ^ consts[0]) * consts[1]
    return value ^ (value >> _XSHIFT)


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = _U32(_MIX_MULT_L) * x - _U32(_MIX_MULT_R) * y
    return result ^ (result >> _XSHIFT)


@functools.lru_cache(maxsize=16)
def _key_consts(length: int) -> tuple:
    """The hashmix constants of ``SeedSequence`` for keys of ``length`` words, in the
    groups :func:`_seed_sequence_state` uses them (the same for every key)."""
    consts = _HashConsts(_INIT_A, _MULT_A)
    first = consts.take(_POOL)
    per_src = [consts.take(_POOL - 1) for _ in range(_POOL)]
    extra = [consts.take(_POOL) for _ in range(_POOL, length)]
    return first, per_src, extra, _HashConsts(_INIT_B, _MULT_B).take(8)


def _seed_sequence_state(words: np.ndarray) -> list:
    """``SeedSequence(row).generate_state(4, np.uint64)`` of every row, as 4 uint64 arrays.

    The pool is an ``N×4`` array; the calls NumPy makes one pool word at a time that do not
    depend on each other (the first hashing, the destinations of one source word, the output
    words) are one array operation each, with their constants in NumPy's call order.
    """
    n, length = words.shape
    first_consts, per_src, extra, out_consts = _key_consts(length)
    first = np.zeros((n, _POOL), dtype=_U32)
    first[:, :min(length, _POOL)] = words[:, :_POOL]
    pool = _hashmix(first, first_consts)
    for i_src in range(_POOL):
        dst = [i for i in range(_POOL) if i != i_src]
        pool[:, dst] = _mix(pool[:, dst], _hashmix(pool[:, i_src:i_src + 1], per_src[i_src]))
    for i_src in range(_POOL, length):
        pool = _mix(pool, _hashmix(words[:, i_src:i_src + 1], extra[i_src - _POOL]))
    state = _hashmix(pool[:, [0, 1, 2, 3, 0, 1, 2, 3]], out_consts).astype(_U64)
    # generate_state(.., uint64) views the uint32 words little-endian: low word first
    return [state[:, 2 * k] | (state[:, 2 * k + 1] << _S32) for k in range(4)]


def _mulhi64(a: np.ndarray, b: int) -> np.ndarray:
    """The high 64 bits of ``a * b`` (``a`` uint64 array, ``b`` a 64-bit int)."""
    a0, a1 = a & _U64(_M32), a >> _S32
    b0, b1 = _U64(b & _M32), _U64(b >> 32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> _S32) + (p01 & _U64(_M32)) + (p10 & _U64(_M32))
    return p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)


def _add128(ah, al, bh, bl):
    lo = al + bl
    return ah + bh + (lo < al).astype(_U64), lo


def _step(hi, lo, inc_hi, inc_lo):
    """``state * PCG_DEFAULT_MULTIPLIER_128 + inc`` mod 2**128."""
    m_hi, m_lo = _PCG_MULT
    p_lo = lo * _U64(m_lo)
    p_hi = _mulhi64(lo, m_lo) + lo * _U64(m_hi) + hi * _U64(m_lo)
    return _add128(p_hi, p_lo, inc_hi, inc_lo)


def first_uniforms(words: np.ndarray) -> np.ndarray:
    """``np.random.default_rng(row).random()`` for every row of ``words``, bit for bit.

    Args:
        words: ``N×L`` uint32 entropy words (``L >= 1``), e.g. rows of
            ``coupleface.utils.seeding.seed_words``: each row is one seed.

    Returns:
        np.ndarray: ``N`` float64 values in ``[0, 1)``.

    Examples:
        >>> w = np.array([[0, 1, 7, 3]], np.uint32)
        >>> first_uniforms(w)[0] == np.random.default_rng(w[0]).random()
        True
    """
    words = np.asarray(words)
    if words.ndim != 2 or words.shape[1] < 1 or words.dtype != np.uint32:
        raise ValueError(f'first_uniforms: need an N×L uint32 array (L >= 1), got '
                         f'{words.dtype} {words.shape}')
    with np.errstate(over='ignore'):
        s0, s1, s2, s3 = _seed_sequence_state(words)
        # inc = initseq << 1 | 1 with initseq = (s2, s3)
        inc_hi, inc_lo = (s2 << _U64(1)) | (s3 >> _S63), (s3 << _U64(1)) | _U64(1)
        hi, lo = inc_hi, inc_lo  # state 0 stepped once: 0 * MULT + inc
        hi, lo = _add128(hi, lo, s0, s1)
        hi, lo = _step(hi, lo, inc_hi, inc_lo)
        hi, lo = _step(hi, lo, inc_hi, inc_lo)  # next_uint64 steps first
        rot = hi >> _U64(58)  # state >> 122
        x = hi ^ lo
        out = (x >> rot) | (x << ((_U64(64) - rot) & _S63))
    return (out >> _U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
