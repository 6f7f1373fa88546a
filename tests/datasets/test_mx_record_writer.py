"""The RecordIO writer: unique keys, atomic files, in-place header rewrite, split counting."""
import os

import pytest

from coupleface.datasets.mx_record import MXIndexedRecordIO
from coupleface.datasets.mx_record_codec import MAGIC_BYTES, IRHeader, RecordIOError, pack, unpack
from coupleface.datasets.mx_record_writer import MXIndexedRecordIOWriter


def test_writer_rejects_bad_input(tmp_path):
    idx, rec = str(tmp_path / 'x.idx'), str(tmp_path / 'x.rec')
    w = MXIndexedRecordIOWriter(idx, rec)
    w.write_idx(3, b'a')
    w.write_idx(1, b'b')
    with pytest.raises(RecordIOError, match='key 3 written twice'):
        w.write_idx(3, b'c')
    w.abort()
    assert not os.path.exists(rec) and not os.path.exists(rec + '.tmp')


def test_overwrite_and_split_count(tmp_path):
    idx, rec = str(tmp_path / 'sub' / 'y.idx'), str(tmp_path / 'sub' / 'y.rec')
    with MXIndexedRecordIOWriter(idx, rec) as w:
        head = w.write_idx(0, pack(IRHeader(2, [0.0, 0.0], 0, 0), b''))
        w.write_idx(1, pack(IRHeader(0, 1.0, 1, 0), b'\0' * 4 + MAGIC_BYTES))
        assert not os.path.exists(rec)  # only the temporary files until close
        w.overwrite(head, pack(IRHeader(2, [2.0, 3.0], 0, 0), b''))
        with pytest.raises(RecordIOError, match='overwrite at offset'):
            w.overwrite(head, pack(IRHeader(2, [2.0, 3.0], 0, 0), b'longer'))
        assert w.num_split == 1
    reader = MXIndexedRecordIO(idx, rec)
    assert list(unpack(reader.read_idx(0))[0].label) == [2.0, 3.0]
    assert unpack(reader.read_idx(1))[1] == b'\0' * 4 + MAGIC_BYTES
