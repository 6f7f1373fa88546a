"""The RecordIO codec shared by the reader and the writer: chunk framing and ``IRHeader``.

Formats (re-implemented from their descriptions; mxnet does not import with
numpy 2):

* dmlc-core RecordIO (``dmlc/recordio.h``): a record is one or more chunks, each
  ``uint32 magic 0xced7230a``, ``uint32 lrec`` (``cflag = lrec >> 29``,
  ``length = lrec & (2**29 - 1)``), ``length`` payload bytes, zero padding to a
  4-byte boundary. The writer splits a payload at every 4-byte-aligned
  occurrence of the magic and drops it: ``cflag`` 0 = whole record, 1 = first
  chunk, 2 = middle, 3 = last; the reader re-joins the chunks with the magic.
* mxnet ``IRHeader`` (``recordio.pack``/``unpack``): ``struct '<IfQQ'``
  (flag, label, id, id2) before the payload; ``flag > 0`` means ``flag``
  float32 labels follow the header and the label is that array.

The ``.idx`` text index and the reader are in :mod:`coupleface.datasets.mx_record`, the
writers in :mod:`coupleface.datasets.mx_record_writer`.
"""
from __future__ import annotations

import numbers
import struct
from typing import NamedTuple, Sequence, Tuple, Union

import numpy as np

__all__ = [
    'CHUNK_HEADER', 'IR_SIZE', 'LENGTH_MASK', 'MAGIC_BYTES', 'RECORDIO_MAGIC', 'IRHeader',
    'RecordIOError', 'encode_record', 'framed_size', 'pack', 'unpack'
]

RECORDIO_MAGIC = 0xced7230a
#: The magic word as it stands in the file (little endian).
MAGIC_BYTES = struct.pack('<I', RECORDIO_MAGIC)
#: ``lrec & LENGTH_MASK`` is a chunk's payload length; ``lrec >> 29`` its ``cflag``.
LENGTH_MASK = (1 << 29) - 1
#: A chunk header: ``(magic, lrec)``.
CHUNK_HEADER = struct.Struct('<II')
_IR = struct.Struct('<IfQQ')
IR_SIZE = _IR.size  # 24


class RecordIOError(ValueError):
    """A ``.rec``/``.idx`` pair is malformed (message names the file and offset/key)."""


class IRHeader(NamedTuple):
    """mxnet image-record header.

    Attributes:
        flag: Number of float32 labels stored after the header (0: the scalar
            ``label`` field is the label).
        label: ``float`` when ``flag == 0``, else a float32 array of ``flag``
            values.
        id: Record id (insightface: the key).
        id2: High bits of the id (usually 0).
    """
    flag: int
    label: Union[float, np.ndarray]
    id: int
    id2: int


def pack(header: Union[IRHeader, Sequence], payload: bytes) -> bytes:
    """Prefix ``payload`` with an mxnet ``IRHeader`` (same bytes as ``mxnet.recordio.pack``).

    A scalar label is stored in the header with ``flag = 0``; an array label
    sets ``flag`` to its size, stores 0 in the header's label field and puts the
    float32 values between header and payload (the given ``flag`` is ignored,
    as mxnet does).

    Args:
        header: ``IRHeader`` or a 4-sequence ``(flag, label, id, id2)``.
        payload: Record content (e.g. JPEG bytes).

    Returns:
        bytes: The packed record.
    """
    _, label, rid, rid2 = header
    if isinstance(label, numbers.Number) or np.ndim(label) == 0:
        return _IR.pack(0, float(label), int(rid), int(rid2)) + bytes(payload)
    arr = np.asarray(label, dtype='<f4').ravel()
    return _IR.pack(arr.size, 0.0, int(rid), int(rid2)) + arr.tobytes() + bytes(payload)


def unpack(record: Union[bytes, bytearray, memoryview]) -> Tuple[IRHeader, bytes]:
    """Split a record into its ``IRHeader`` and payload (as ``mxnet.recordio.unpack``).

    Args:
        record: Record bytes as returned by ``MXIndexedRecordIO.read_idx``.

    Returns:
        tuple[IRHeader, bytes]: The header (label array when ``flag > 0``) and
        the remaining payload.

    Raises:
        RecordIOError: the record is shorter than its header says.
    """
    if len(record) < IR_SIZE:
        raise RecordIOError(f'record of {len(record)} bytes is shorter than an IRHeader '
                            f'({IR_SIZE} bytes)')
    flag, label, rid, rid2 = _IR.unpack_from(record, 0)
    start = IR_SIZE
    if flag > 0:
        start += 4 * flag
        if len(record) < start:
            raise RecordIOError(f'record of {len(record)} bytes is too short for an IRHeader '
                                f'with flag={flag} ({start} bytes)')
        label = np.frombuffer(record, dtype='<f4', count=flag, offset=IR_SIZE).astype(np.float32)
    return IRHeader(flag, label, rid, rid2), bytes(record[start:])


def encode_record(payload: bytes) -> bytes:
    """Frame ``payload`` as dmlc RecordIO chunks (split at aligned magic words).

    Args:
        payload: Record content (usually ``pack(header, image_bytes)``).

    Returns:
        bytes: The chunk(s) with headers and zero padding, ready to append to
        a ``.rec`` file.
    """
    payload = bytes(payload)
    size = len(payload)
    if size > LENGTH_MASK:
        raise RecordIOError(f'a RecordIO record must be shorter than 2**29 bytes, got {size}')
    # the payload is cut at each 4-byte-aligned magic word, which the reader re-inserts
    cuts = []
    pos = payload.find(MAGIC_BYTES)
    while pos != -1 and pos + 4 <= size:
        if pos % 4 == 0:
            cuts.append(pos)
            pos = payload.find(MAGIC_BYTES, pos + 4)
        else:
            pos = payload.find(MAGIC_BYTES, pos + 1)
    parts = []
    start = 0
    for i, cut in enumerate(cuts):
        cflag = 1 if i == 0 else 2
        parts.append(CHUNK_HEADER.pack(RECORDIO_MAGIC, (cflag << 29) | (cut - start)))
        parts.append(payload[start:cut])  # aligned: no padding between chunks
        start = cut + 4
    last = size - start
    parts.append(CHUNK_HEADER.pack(RECORDIO_MAGIC, ((3 if cuts else 0) << 29) | last))
    parts.append(payload[start:])
    parts.append(b'\0' * (-size % 4))
    return b''.join(parts)


def framed_size(length: int) -> int:
    """Bytes a ``length``-byte record takes in the file when it is not split (one chunk).

    Args:
        length: The record's length (``pack(header, payload)``).

    Returns:
        int: Chunk header + record + zero padding to 4 bytes.
    """
    return CHUNK_HEADER.size + length + (-length % 4)
