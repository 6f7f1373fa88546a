"""Fuzzing the parsers of untrusted dataset files (hypothesis).

The RecordIO reader (``.idx`` text, chunk headers, ``IRHeader``) and the ``.bin`` loader,
fed arbitrary bytes or mutated valid files, may only fail with our own one-line errors
(``RecordIOError``, ``BinFormatError``, ``UnsafeFileError``): never ``struct.error``,
``UnicodeDecodeError``, ``OverflowError``, ``MemoryError``, ``IndexError``, ...
Each property runs ~200 examples in a few seconds.
"""
import os
import os.path as osp
import pickle
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupleface.datasets.bin_io import BinFormatError, UnsafeFileError, read_bin
from coupleface.datasets.mx_record import MXIndexedRecordIO, _parse_idx
from coupleface.datasets.mx_record_codec import IRHeader, RecordIOError, pack, unpack
from coupleface.datasets.mx_record_writer import MXIndexedRecordIOWriter

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OUR_ERRORS = (RecordIOError, BinFormatError, UnsafeFileError)


def _valid_record_files():
    """A small valid ``.rec``/``.idx`` pair: scalar and array labels, a magic-split payload."""
    directory = tempfile.mkdtemp(prefix='fuzz_rec_')
    idx, rec = osp.join(directory, 'v.idx'), osp.join(directory, 'v.rec')
    with MXIndexedRecordIOWriter(idx, rec) as writer:
        writer.write_idx(0, pack(IRHeader(2, [1.0, 4.0], 0, 0), b''))
        writer.write_idx(1, pack(IRHeader(0, 3.0, 1, 0), b'\xff\xd8jpeg' * 5))
        writer.write_idx(2, pack(IRHeader(0, [1.0, 2.0, 3.0], 2, 0),
                                 b'ab' + bytes.fromhex('0a23d7ce') + b'cd'))
        writer.write_idx(3, pack(IRHeader(0, 0.0, 3, 0), bytes(range(256))))
    with open(idx, 'rb') as f:
        idx_bytes = f.read()
    with open(rec, 'rb') as f:
        rec_bytes = f.read()
    return idx_bytes, rec_bytes


VALID_IDX, VALID_REC = _valid_record_files()


def _read_everything(idx_bytes: bytes, rec_bytes: bytes) -> None:
    """Open the pair and read every record, header and label the way MXFaceDataset does."""
    with tempfile.TemporaryDirectory(prefix='fuzz_') as directory:
        idx, rec = osp.join(directory, 'f.idx'), osp.join(directory, 'f.rec')
        with open(idx, 'wb') as f:
            f.write(idx_bytes)
        with open(rec, 'wb') as f:
            f.write(rec_bytes)
        try:
            with MXIndexedRecordIO(idx, rec) as reader:
                reader.scan_labels()
                for key in reader.keys:
                    unpack(reader.read_idx(key))
                    reader.read_header(key)
        except RecordIOError:
            pass


def _mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, pos, value in edits:
        if not out:
            out.extend(value)
            continue
        pos %= len(out)
        if kind == 'flip':
            out[pos] ^= value[0] if value else 0xff
        elif kind == 'insert':
            out[pos:pos] = value
        elif kind == 'delete':
            del out[pos:pos + max(1, len(value))]
        else:  # truncate
            del out[pos:]
    return bytes(out)


EDITS = st.lists(st.tuples(st.sampled_from(['flip', 'insert', 'delete', 'truncate']),
                           st.integers(0, 1 << 16), st.binary(min_size=1, max_size=8)),
                 min_size=1, max_size=6)
IDX_TEXT = st.text(alphabet=st.sampled_from(list('0123456789-\t\n \r+x\x00é')), max_size=120)


@FUZZ
@given(idx=st.one_of(st.binary(max_size=200), IDX_TEXT.map(lambda s: s.encode('utf-8'))))
def test_fuzz_idx_text(idx):
    _read_everything(idx, VALID_REC)


INT64 = (-(1 << 63), (1 << 63) - 1)


@FUZZ
@given(rows=st.lists(st.tuples(st.integers(-(1 << 70), 1 << 70), st.integers(-8, 1 << 70)),
                     min_size=1, max_size=20),
       crlf=st.booleans())
def test_fuzz_idx_numbers_parse_exactly_or_fail(rows, crlf):
    """Keys and offsets are read exactly, or the line is named: never clamped or wrapped."""
    text = ''.join(f'{k}\t{o}' + ('\r\n' if crlf else '\n') for k, o in rows).encode()
    valid = all(INT64[0] <= k <= INT64[1] and 0 <= o <= INT64[1] and o % 4 == 0
                for k, o in rows)
    with tempfile.TemporaryDirectory(prefix='fuzz_') as directory:
        path = osp.join(directory, 'n.idx')
        with open(path, 'wb') as f:
            f.write(text)
        try:
            keys, offsets = _parse_idx(path)
        except RecordIOError as err:
            assert not valid and 'n.idx: line ' in str(err)
            return
    assert valid, rows
    assert keys.tolist() == [k for k, _ in rows] and offsets.tolist() == [o for _, o in rows]


@FUZZ
@given(rec=st.binary(max_size=400))
def test_fuzz_rec_bytes_with_a_plausible_index(rec):
    offsets = sorted({0, 4 * (len(rec) // 8), max(0, 4 * (len(rec) // 4 - 2))})
    idx = ''.join(f'{k}\t{o}\n' for k, o in enumerate(offsets)).encode()
    _read_everything(idx, rec)


@FUZZ
@given(idx_edits=st.one_of(st.just([]), EDITS), rec_edits=EDITS)
def test_fuzz_mutated_valid_record_files(idx_edits, rec_edits):
    _read_everything(_mutate(VALID_IDX, idx_edits), _mutate(VALID_REC, rec_edits))


@FUZZ
@given(record=st.binary(max_size=120))
def test_fuzz_unpack(record):
    try:
        header, payload = unpack(record)
    except RecordIOError:
        return
    assert len(payload) <= len(record)


def _bin_bytes(protocol: int, arrays: bool) -> bytes:
    images = [b'\xff\xd8\xff\xe0img%d' % i for i in range(4)]
    if arrays:
        images = [np.frombuffer(b, np.uint8) for b in images]
        issame = np.array([True, False])
    else:
        issame = [True, False]
    return pickle.dumps((images, issame), protocol=protocol)


VALID_BINS = [_bin_bytes(p, a) for p in (2, 4) for a in (False, True)]


def _read_bin_bytes(data: bytes) -> None:
    fd, path = tempfile.mkstemp(prefix='fuzz_', suffix='.bin')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        try:
            bins, issame = read_bin(path)
        except OUR_ERRORS:
            return
        assert len(bins) == 2 * len(issame)
    finally:
        os.remove(path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_fuzz_bin_arbitrary_bytes(data):
    _read_bin_bytes(data)


@FUZZ
@given(which=st.integers(0, len(VALID_BINS) - 1), edits=EDITS)
def test_fuzz_bin_mutated_pickles(which, edits):
    _read_bin_bytes(_mutate(VALID_BINS[which], edits))


@FUZZ
@given(ops=st.lists(st.sampled_from([
    b'(', b')', b']', b'l', b'N', b'.', b'\x88', b'\x89', b'e', b'a', b't', b'\x85', b'\x86',
    b'R', b'b', b'c__builtin__\nbytes\n', b'cnumpy\ndtype\n', b'cbuiltins\neval\n',
    b'cnumpy.core.multiarray\n_reconstruct\n', b'cnumpy\nndarray\n', b'U\x02u1', b'U\x02b1',
    b'K\x00', b'K\x01', b'J\xff\xff\xff\x7f', b'C\x03abc', b'X\x03\x00\x00\x00abc',
    b'\x8c\x05numpy\x94', b'\x93', b'q\x00', b'h\x00', b'0', b'2', b'\x80\x02', b'\x80\x04',
    b'B\xff\xff\xff\x7f', b'}', b'\x8f', b'\x90', b'\x91', b'\x81', b'\x92', b'i', b'o']),
    max_size=30))
def test_fuzz_bin_opcode_soup(ops):
    """Random sequences of pickle opcodes, including globals and array constructors."""
    _read_bin_bytes(b''.join(ops) + b'.')


def test_fuzz_corpus_is_valid(tmp_path):
    """The seeds the mutations start from parse (else the fuzzing tests little)."""
    _read_everything(VALID_IDX, VALID_REC)
    for i, data in enumerate(VALID_BINS):
        path = tmp_path / f'seed{i}.bin'
        path.write_bytes(data)
        bins, issame = read_bin(str(path))
        assert len(bins) == 4 and list(issame) == [True, False]
