"""RecordIO reader/writer against hand-built bytes (dmlc framing, mxnet IRHeader, .idx)."""
import multiprocessing as mp
import os
import pickle
import struct

import numpy as np
import pytest

import coupleface.datasets.mx_record as mx_record
from coupleface.datasets.mx_record import MXIndexedRecordIO
from coupleface.datasets.mx_record_codec import (
    IRHeader,
    RecordIOError,
    encode_record,
    pack,
    unpack,
)
from coupleface.datasets.mx_record_writer import MXIndexedRecordIOWriter

MAGIC = 0xced7230a
MAGIC_BYTES = struct.pack('<I', MAGIC)


def chunk(cflag, payload, pad=True):
    """One dmlc chunk built from the format description."""
    out = struct.pack('<II', MAGIC, (cflag << 29) | len(payload)) + payload
    return out + b'\0' * (-len(payload) % 4 if pad else 0)


def write_files(tmp_path, rec_bytes, idx_text, name='t'):
    rec, idx = tmp_path / f'{name}.rec', tmp_path / f'{name}.idx'
    rec.write_bytes(rec_bytes)
    idx.write_text(idx_text)
    return str(idx), str(rec)


# three records: scalar label + odd payload, a flag=2 label array, an empty payload
REC0 = struct.pack('<IfQQ', 0, 3.0, 0, 0) + b'abc'
REC1 = struct.pack('<IfQQ', 2, 0.0, 1, 0) + struct.pack('<2f', 1.5, 7.0) + b'hello!!!'
REC2 = struct.pack('<IfQQ', 0, 2.0, 2, 5)


def golden():
    c0, c1, c2 = chunk(0, REC0), chunk(0, REC1), chunk(0, REC2)
    assert len(c0) == 8 + 27 + 1 and len(c1) == 8 + 40 and len(c2) == 8 + 24
    offsets = [0, len(c0), len(c0) + len(c1)]
    return c0 + c1 + c2, offsets


def test_golden_bytes_read(tmp_path):
    rec_bytes, off = golden()
    # .idx lines in any order
    idx, rec = write_files(tmp_path, rec_bytes, f'2\t{off[2]}\n0\t{off[0]}\n1\t{off[1]}\n')
    reader = MXIndexedRecordIO(idx, rec)
    assert reader.keys == [2, 0, 1] and len(reader) == 3
    assert reader.read_idx(0) == REC0 and reader.read_idx(1) == REC1
    assert reader.read_idx(2) == REC2
    h0, p0 = unpack(reader.read_idx(0))
    assert (h0.flag, h0.label, h0.id, h0.id2, p0) == (0, 3.0, 0, 0, b'abc')
    h1, p1 = unpack(reader.read_idx(1))
    assert h1.flag == 2 and h1.id == 1 and p1 == b'hello!!!'
    np.testing.assert_array_equal(h1.label, np.array([1.5, 7.0], np.float32))
    h2, p2 = unpack(reader.read_idx(2))
    assert (h2.flag, h2.label, h2.id, h2.id2, p2) == (0, 2.0, 2, 5, b'')
    flags, first = reader.scan_labels([0, 1, 2])
    assert flags.tolist() == [0, 2, 0] and first.tolist() == [3.0, 1.5, 2.0]
    assert reader.offset(2) == off[2] and 1 in reader and 7 not in reader


def test_writer_and_pack_produce_the_golden_bytes(tmp_path):
    assert pack(IRHeader(0, 3.0, 0, 0), b'abc') == REC0
    assert pack(IRHeader(0, [1.5, 7.0], 1, 0), b'hello!!!') == REC1  # flag set from the array
    assert pack(IRHeader(9, 2, 2, 5), b'') == REC2  # scalar label: flag 0 whatever was given
    rec_bytes, off = golden()
    idx, rec = str(tmp_path / 'w.idx'), str(tmp_path / 'w.rec')
    with MXIndexedRecordIOWriter(idx, rec) as w:
        assert w.write_idx(0, REC0) == off[0]
        assert w.write_idx(1, REC1) == off[1]
        assert w.write_idx(2, REC2) == off[2]
    assert open(rec, 'rb').read() == rec_bytes
    assert open(idx).read() == f'0\t{off[0]}\n1\t{off[1]}\n2\t{off[2]}\n'
    assert not os.path.exists(rec + '.tmp')


@pytest.mark.parametrize('payload,expected', [
    # one aligned magic: first chunk (cflag 1) + last chunk (cflag 3), magic dropped
    (b'AAAA' + MAGIC_BYTES + b'BBBBBB', chunk(1, b'AAAA') + chunk(3, b'BBBBBB')),
    # two: 1 / 2 / 3
    (b'AAAA' + MAGIC_BYTES + b'CCCCCCCC' + MAGIC_BYTES + b'DD',
     chunk(1, b'AAAA') + chunk(2, b'CCCCCCCC') + chunk(3, b'DD')),
    # at the very start and the very end: empty first / last chunks
    (MAGIC_BYTES + b'EEEE', chunk(1, b'') + chunk(3, b'EEEE')),
    (b'FFFF' + MAGIC_BYTES, chunk(1, b'FFFF') + chunk(3, b'')),
    # an unaligned occurrence is left alone
    (b'G' + MAGIC_BYTES + b'HHH', chunk(0, b'G' + MAGIC_BYTES + b'HHH')),
])
def test_magic_in_payload_is_split_and_rejoined(tmp_path, payload, expected):
    assert encode_record(payload) == expected
    idx, rec = str(tmp_path / 'm.idx'), str(tmp_path / 'm.rec')
    with MXIndexedRecordIOWriter(idx, rec) as w:
        w.write_idx(5, payload)
        w.write_idx(6, b'tail')
    assert open(rec, 'rb').read() == expected + chunk(0, b'tail')
    reader = MXIndexedRecordIO(idx, rec)
    assert reader.read_idx(5) == payload and reader.read_idx(6) == b'tail'


def test_hand_built_continuation_record(tmp_path):
    # IRHeader whose id field holds the magic at aligned offset 8: the first chunk (8 bytes)
    # ends inside the header, so the header scan must fall back to the full read
    record = struct.pack('<IfQQ', 0, 4.0, MAGIC, 0) + b'JPEGDATA!'
    rec_bytes = (chunk(1, record[:8]) + chunk(3, record[12:]) + chunk(0, REC0))
    idx, rec = write_files(tmp_path, rec_bytes, f'0\t0\n1\t{len(rec_bytes) - 36}\n')
    reader = MXIndexedRecordIO(idx, rec)
    assert reader.read_idx(0) == record
    header, payload = unpack(reader.read_idx(0))
    assert header.id == MAGIC and header.label == 4.0 and payload == b'JPEGDATA!'
    flags, first = reader.scan_labels()
    assert flags.tolist() == [0, 0] and first.tolist() == [4.0, 3.0]


def _many_records(tmp_path, n=300):
    """Records with scalar labels, 2-label and 6-label arrays, random sizes."""
    rng = np.random.default_rng(0)
    idx, rec = str(tmp_path / 'many.idx'), str(tmp_path / 'many.rec')
    expect = []
    with MXIndexedRecordIOWriter(idx, rec) as w:
        for k in range(n):
            payload = rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8).tobytes()
            if k % 3 == 0:
                label = float(k)
            elif k % 3 == 1:
                label = [k, -1.0]
            else:
                label = [k, 1, 2, 3, 4, 5]
            w.write_idx(k, pack(IRHeader(0, label, k, 0), payload))
            expect.append((0 if k % 3 == 0 else 2 if k % 3 == 1 else 6, float(k), payload))
    return idx, rec, expect


def test_header_scan_paths_agree(tmp_path, monkeypatch):
    idx, rec, expect = _many_records(tmp_path)
    reader = MXIndexedRecordIO(idx, rec)
    keys = list(range(len(expect)))[::-1]
    want_flags = [e[0] for e in expect][::-1]
    want_first = [e[1] for e in expect][::-1]
    for gap, block, batch in [(1 << 16, 1 << 23, 1 << 16), (0, 1 << 23, 1 << 16),
                              (1 << 16, 300, 7)]:  # tiny blocks: boundaries and EOF
        monkeypatch.setattr(mx_record, '_BLOCK_SCAN_MAX_GAP', gap)
        monkeypatch.setattr(mx_record, '_BLOCK_BYTES', block)
        monkeypatch.setattr(mx_record, '_SCAN_BATCH', batch)
        flags, first = reader.scan_labels(keys)
        assert flags.tolist() == want_flags and first.tolist() == want_first
    for k in (0, 1, 2, 299):
        header, payload = unpack(reader.read_idx(k))
        assert header.flag == expect[k][0] and payload == expect[k][2]


def test_idx_fast_path_matches_line_parse(tmp_path, monkeypatch):
    idx, rec, expect = _many_records(tmp_path, n=50)
    reader = MXIndexedRecordIO(idx, rec)
    offsets = [reader.offset(k) for k in range(50)]
    text = open(idx).read()
    crlf = tmp_path / 'crlf.idx'
    crlf.write_text(text.replace('\n', '\r\n') + '\r\n')  # goes through the line parser
    for block in (1 << 22, 7, 64):  # tiny blocks: lines cut across block boundaries
        monkeypatch.setattr(mx_record, '_IDX_BLOCK_BYTES', block)
        for path in (idx, str(crlf)):
            other = MXIndexedRecordIO(path, rec)
            np.testing.assert_array_equal(reader.key_array, other.key_array)
            assert [other.offset(k) for k in range(50)] == offsets
    # a bad line far into the file is numbered right whatever the block size
    lines = text.splitlines()
    lines[37] = lines[37] + '\t0'
    (tmp_path / 'bad.idx').write_text('\n'.join(lines) + '\n')
    with pytest.raises(RecordIOError, match=r'bad\.idx: line 38: '):
        MXIndexedRecordIO(str(tmp_path / 'bad.idx'), rec)


def test_pickle_and_fork_reopen(tmp_path):
    idx, rec, expect = _many_records(tmp_path, n=20)
    reader = MXIndexedRecordIO(idx, rec)
    reader.read_idx(3)  # opens the handle
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._file is None and unpack(clone.read_idx(4))[1] == expect[4][2]
    # a forked child opens its own handle and reads the same bytes, whether the reader
    # came pickled or inherited with the parent's open handle (a DataLoader worker)
    with mp.get_context('fork').Pool(1) as pool:
        got = pool.map(_child_read, [(reader, k) for k in (5, 6)])
    assert [g[1] for g in got] == [expect[5][2], expect[6][2]]
    global _INHERITED
    _INHERITED = reader
    try:
        with mp.get_context('fork').Pool(1) as pool:
            got = pool.map(_child_read_inherited, [5, 6])
    finally:
        _INHERITED = None
    assert [g[1] for g in got] == [expect[5][2], expect[6][2]]
    assert got[0][0] and not got[1][0]  # reopened at the first read only
    assert unpack(reader.read_idx(7))[1] == expect[7][2]  # the parent's handle still works


_INHERITED = None


def _child_read(args):
    reader, key = args
    return reader._file is None, unpack(reader.read_idx(key))[1]


def _child_read_inherited(key):
    before = _INHERITED._file
    payload = unpack(_INHERITED.read_idx(key))[1]
    return _INHERITED._file is not before, payload


# ---------------------------------------------------------------------- bad input
def test_offset_past_end_at_open(tmp_path):
    rec_bytes, off = golden()
    idx, rec = write_files(tmp_path, rec_bytes, f'0\t0\n1\t{off[1]}\n2\t4096\n')
    with pytest.raises(RecordIOError, match=r't\.idx: key 2 has offset 4096, past the end '
                                            r'of .*t\.rec \(116 bytes\)'):
        MXIndexedRecordIO(idx, rec)


def test_truncated_rec_at_open(tmp_path):
    rec_bytes, off = golden()
    idx, rec = write_files(tmp_path, rec_bytes[:-6], f'0\t0\n1\t{off[1]}\n2\t{off[2]}\n')
    with pytest.raises(RecordIOError, match=rf't\.rec: record key 2 at offset {off[2]} is '
                                            'truncated'):
        MXIndexedRecordIO(idx, rec)


def test_wrong_magic(tmp_path):
    rec_bytes, off = golden()
    bad_first = b'\x00\x01\x02\x03' + rec_bytes[4:]
    idx, rec = write_files(tmp_path, bad_first, f'0\t0\n1\t{off[1]}\n2\t{off[2]}\n')
    with pytest.raises(RecordIOError, match=r't\.rec: wrong magic 0x03020100 at offset 0 '
                                            r'\(record key 0'):
        MXIndexedRecordIO(idx, rec)  # at open: first record checked
    # a bad record in the middle: found by the header scan and by read_idx
    mid = bytearray(rec_bytes)
    mid[off[1]:off[1] + 4] = b'XXXX'
    idx, rec = write_files(tmp_path, bytes(mid), f'0\t0\n1\t{off[1]}\n2\t{off[2]}\n', 'mid')
    reader = MXIndexedRecordIO(idx, rec)
    with pytest.raises(RecordIOError, match=rf'wrong magic .* at offset {off[1]} '
                                            r'\(record key 1'):
        reader.scan_labels()
    with pytest.raises(RecordIOError, match=r'record key 1'):
        reader.read_idx(1)
    # an .idx offset that points into a payload
    idx, rec = write_files(tmp_path, rec_bytes, '0\t0\n1\t12\n2\t4\n', 'shift')
    with pytest.raises(RecordIOError, match='wrong magic'):
        MXIndexedRecordIO(idx, rec).read_idx(2)


@pytest.mark.parametrize('text,line', [
    ('0\t0\nx\t36\n', 2),
    ('0\t0\n1\t36\t9\n', 2),
    ('0\t0\n\n1 36\n', 3),
    ('0\t0\n1\t37\n', 2),  # offsets are 4-byte aligned
    ('0\t-4\n', 1),
    ('0\t0.0\n', 1),
])
def test_malformed_idx_line(tmp_path, text, line):
    rec_bytes, _ = golden()
    idx, rec = write_files(tmp_path, rec_bytes, text)
    with pytest.raises(RecordIOError, match=rf't\.idx: line {line}: '):
        MXIndexedRecordIO(idx, rec)


def test_unknown_and_duplicate_keys(tmp_path):
    rec_bytes, off = golden()
    idx, rec = write_files(tmp_path, rec_bytes, f'0\t0\n1\t{off[1]}\n')
    reader = MXIndexedRecordIO(idx, rec)
    with pytest.raises(RecordIOError, match=r't\.idx: unknown key 99'):
        reader.read_idx(99)
    with pytest.raises(RecordIOError, match=r'unknown key -1'):
        reader.scan_labels([0, -1])
    idx, rec = write_files(tmp_path, rec_bytes, f'0\t0\n1\t{off[1]}\n0\t{off[2]}\n', 'dup')
    with pytest.raises(RecordIOError, match='key 0 is listed more than once'):
        MXIndexedRecordIO(idx, rec)
    # sparse keys use the binary-search lookup
    idx, rec = write_files(tmp_path, rec_bytes, f'7\t0\n900000\t{off[1]}\n', 'sparse')
    reader = MXIndexedRecordIO(idx, rec)
    assert reader.read_idx(900000) == REC1 and reader._table is None
    with pytest.raises(RecordIOError, match='unknown key 8'):
        reader.read_idx(8)


def test_scan_rejects_short_and_orphan_chunks(tmp_path):
    # a 10-byte record cannot hold an IRHeader; a record may not start with a middle chunk
    rec_bytes = chunk(0, REC0) + chunk(0, b'0123456789') + chunk(2, REC2) + chunk(0, REC0)
    o1, o2 = 36, 36 + 20
    idx, rec = write_files(tmp_path, rec_bytes, f'0\t0\n1\t{o1}\n2\t{o2}\n3\t{o2 + 32}\n')
    reader = MXIndexedRecordIO(idx, rec)
    with pytest.raises(RecordIOError, match='shorter than an IRHeader'):
        reader.scan_labels([0, 1])
    with pytest.raises(RecordIOError, match=rf'record key 2 at offset {o2}: unexpected chunk '
                                            'flag 2'):
        reader.scan_labels([2, 3])


# Written by mxnet 1.9.1 (recordio.MXIndexedRecordIO(..., 'w'), write_idx + recordio.pack) in
# a separate numpy-1 environment: an unaligned magic (kept), a flag=3 label array followed by
# two aligned magics (split 1/2/3), an empty payload with id2=9.
MXNET_REC_HEX = (
    '0a23d7ce25000000000000000000e040000000000000000000000000000000006162636465660a23d7ce'
    '78797a0000000a23d7ce240000200300000000000000010000000000000000000000000000000000803f'
    '00000040000040400a23d7ce0400004031320a230a23d7ce01000060210000000a23d7ce180000000000'
    '00000000804002000000000000000900000000000000')
MXNET_IDX = '0\t0\n1\t48\n2\t116\n'
MXNET_INPUTS = [
    (IRHeader(0, 7.0, 0, 0), b'abcdef' + MAGIC_BYTES + b'xyz'),
    (IRHeader(0, [1.0, 2.0, 3.0], 1, 0), MAGIC_BYTES + b'12' + MAGIC_BYTES[:2] + MAGIC_BYTES
     + b'!'),
    (IRHeader(0, 4.0, 2, 9), b''),
]


def test_same_bytes_as_mxnet(tmp_path):
    idx, rec = str(tmp_path / 'ours.idx'), str(tmp_path / 'ours.rec')
    with MXIndexedRecordIOWriter(idx, rec) as w:
        for key, (header, payload) in enumerate(MXNET_INPUTS):
            w.write_idx(key, pack(header, payload))
    assert open(rec, 'rb').read().hex() == MXNET_REC_HEX
    assert open(idx).read() == MXNET_IDX
    reader = MXIndexedRecordIO(*write_files(tmp_path, bytes.fromhex(MXNET_REC_HEX), MXNET_IDX,
                                            'mx'))
    for key, (header, payload) in enumerate(MXNET_INPUTS):
        got, data = unpack(reader.read_idx(key))
        assert data == payload and got.id == header.id and got.id2 == header.id2
        np.testing.assert_array_equal(got.label, header.label)
    assert reader.scan_labels()[1].tolist() == [7.0, 1.0, 4.0]
