"""The RecordIO codec: chunk framing sizes, the format constants and the header errors."""
import struct

import numpy as np
import pytest

import coupleface.datasets.mx_record_codec as codec
from coupleface.datasets.mx_record_codec import IRHeader, RecordIOError, pack, unpack


def test_constants_follow_the_format():
    assert codec.MAGIC_BYTES == struct.pack('<I', 0xced7230a) and codec.RECORDIO_MAGIC == 0xced7230a
    assert codec.CHUNK_HEADER.size == 8 and codec.IR_SIZE == 24 and codec.LENGTH_MASK == 2 ** 29 - 1


@pytest.mark.parametrize('length', [0, 1, 3, 4, 5, 27])
def test_framed_size_of_an_unsplit_record(length):
    record = b'x' * length
    framed = codec.encode_record(record)
    assert codec.framed_size(length) == len(framed)
    magic, lrec = codec.CHUNK_HEADER.unpack_from(framed)
    assert magic == codec.RECORDIO_MAGIC and lrec >> 29 == 0 and lrec & codec.LENGTH_MASK == length


def test_split_record_is_not_the_framed_size():
    payload = b'\0' * 4 + codec.MAGIC_BYTES + b'tail'
    assert len(codec.encode_record(payload)) != codec.framed_size(len(payload))


def test_pack_unpack_round_trip():
    header, payload = unpack(pack(IRHeader(0, 3.0, 7, 0), b'jpeg'))
    assert header == IRHeader(0, 3.0, 7, 0) and payload == b'jpeg'
    header, payload = unpack(pack((9, [1.0, 2.0], 1, 0), b''))
    assert header.flag == 2 and payload == b''
    np.testing.assert_array_equal(header.label, [1.0, 2.0])


def test_codec_rejects_bad_input():
    with pytest.raises(RecordIOError, match=r'2\*\*29'):
        codec.encode_record(b'\0' * (1 << 29))
    with pytest.raises(RecordIOError, match='shorter than an IRHeader'):
        unpack(b'\0' * 10)
    with pytest.raises(RecordIOError, match='flag=3'):
        unpack(struct.pack('<IfQQ', 3, 0, 0, 0) + b'\0' * 4)

