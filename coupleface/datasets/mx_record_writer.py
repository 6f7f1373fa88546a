"""Write insightface/mxnet RecordIO: the ``.rec`` + ``.idx`` writer and the training-set writer.

:class:`MXIndexedRecordIOWriter` frames records like dmlc-core's writer over the codec of
:mod:`coupleface.datasets.mx_record_codec`; :func:`write_insightface_rec` writes a whole
insightface training set with it (header record, images, identity ranges and the ``property``
file; the layout is described in :mod:`coupleface.datasets.mx_face_dataset`, which reads it).
"""
from __future__ import annotations

import os
import os.path as osp
from array import array
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

import cv2
import numpy as np

from .mx_record_codec import (
    CHUNK_HEADER,
    LENGTH_MASK,
    RECORDIO_MAGIC,
    IRHeader,
    RecordIOError,
    encode_record,
    framed_size,
    pack,
)

__all__ = ['MXIndexedRecordIOWriter', 'write_insightface_rec']

_MAX_EXACT_F32 = 1 << 24  # labels/keys in float32 headers are exact below this


class MXIndexedRecordIOWriter:
    """Write a ``.rec`` + ``.idx`` pair readable by mxnet/insightface and by us.

    Records are framed like dmlc-core's writer (split at aligned magic words);
    the ``.idx`` lists ``key<TAB>offset`` in write order. Both files are
    written under temporary names and renamed on a successful ``close()``, so
    an interrupted conversion leaves no half-written dataset.

    Args:
        idx_path: Output ``.idx`` path.
        rec_path: Output ``.rec`` path.

    Examples:
        >>> with MXIndexedRecordIOWriter('out.idx', 'out.rec') as w:
        ...     w.write_idx(0, pack(IRHeader(0, 3.0, 0, 0), jpeg_bytes))
    """

    def __init__(self, idx_path: str, rec_path: str) -> None:
        self.idx_path = str(idx_path)
        self.rec_path = str(rec_path)
        for path in (self.idx_path, self.rec_path):
            d = osp.dirname(osp.abspath(path))
            os.makedirs(d, exist_ok=True)
        self._tmp_rec = self.rec_path + '.tmp'
        self._tmp_idx = self.idx_path + '.tmp'
        self._rec = open(self._tmp_rec, 'w+b')
        self._idx = open(self._tmp_idx, 'w')
        self._keys = array('q')  # keys written so far (compact: millions of records)
        self._max_key = None
        self.num_split = 0  # records split at a magic word (dmlc's except_counter)
        self.closed = False

    def tell(self) -> int:
        """Offset the next record will be written at."""
        return self._rec.tell()

    def write_idx(self, key: int, record: bytes) -> int:
        """Append ``record`` under ``key``; return its offset.

        Args:
            key: Integer key (unique).
            record: Record bytes (usually ``pack(header, payload)``).
        """
        key = int(key)
        # increasing keys (the usual case) are unique without a lookup
        if self._max_key is not None and key <= self._max_key and key in self._keys:
            raise RecordIOError(f'{self.idx_path}: key {key} written twice')
        self._keys.append(key)
        self._max_key = key if self._max_key is None else max(key, self._max_key)
        offset = self._rec.tell()
        framed = encode_record(record)
        if len(framed) != framed_size(len(record)):
            self.num_split += 1
        self._rec.write(framed)
        self._idx.write(f'{key}\t{offset}\n')
        return offset

    def overwrite(self, offset: int, record: bytes) -> None:
        """Rewrite the record at ``offset`` with one of the same framed size.

        Used to write a header record first and fill it in at the end.
        """
        framed = encode_record(record)
        end = self._rec.tell()
        self._rec.seek(offset)
        magic, lrec = CHUNK_HEADER.unpack(self._rec.read(CHUNK_HEADER.size))
        old_size = framed_size(lrec & LENGTH_MASK)
        if magic != RECORDIO_MAGIC or lrec >> 29 or old_size != len(framed):
            raise RecordIOError(f'{self.rec_path}: overwrite at offset {offset} needs a '
                                f'whole record of {len(framed)} bytes there')
        self._rec.seek(offset)
        self._rec.write(framed)
        self._rec.seek(end)

    def close(self) -> None:
        """Flush, then move both files to their final names."""
        if self.closed:
            return
        self._rec.close()
        self._idx.close()
        os.replace(self._tmp_rec, self.rec_path)
        os.replace(self._tmp_idx, self.idx_path)
        self.closed = True

    def abort(self) -> None:
        """Close and delete the temporary files (nothing is written)."""
        if self.closed:
            return
        self._rec.close()
        self._idx.close()
        for path in (self._tmp_rec, self._tmp_idx):
            if osp.exists(path):
                os.remove(path)
        self.closed = True

    def __enter__(self) -> 'MXIndexedRecordIOWriter':
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_insightface_rec(out_prefix: str,
                          samples: Iterable[Tuple[int, Union[bytes, np.ndarray]]],
                          num_classes: Optional[int] = None,
                          quality: int = 95,
                          property_path: Optional[str] = None,
                          progress: Optional[Callable[[Any], Any]] = None) -> dict:
    """Write face images as an insightface RecordIO training set.

    Produces ``<out_prefix>.rec``, ``<out_prefix>.idx`` and a ``property``
    file (``C,H,W``) in the insightface layout (see :mod:`coupleface.datasets.mx_face_dataset`),
    readable by ``MXFaceDataset`` and by insightface/mxnet.

    Args:
        out_prefix: Output path without extension, e.g. ``data/synth/train``.
        samples: ``(label, image)`` pairs grouped by identity (labels
            non-decreasing, ``0..C-1``). ``image`` is encoded bytes (stored as
            they are: JPEG, or e.g. PNG for lossless sets) or a uint8 BGR array
            (encoded as JPEG at ``quality``).
        num_classes: ``C`` (default: the largest label + 1); identities
            without images get an empty range.
        quality: JPEG quality for array images.
        property_path: Where to write ``property`` (default: next to the
            ``.rec``).
        progress: Optional wrapper for the sample iterator (e.g. ``tqdm``).

    Returns:
        dict: ``rec_path``, ``idx_path``, ``property_path``, ``num_images``,
        ``num_classes``, ``image_size`` (H, W).

    Examples:
        >>> write_insightface_rec('data/synth/train',
        ...                       ((i // 4, render_jpeg(i)) for i in range(40)))
    """
    rec_path, idx_path = f'{out_prefix}.rec', f'{out_prefix}.idx'
    if property_path is None:
        property_path = osp.join(osp.dirname(osp.abspath(rec_path)), 'property')
    starts: List[int] = []  # starts[c] = first image key of identity c
    image_size = None
    key = 0
    last_label = -1
    iterator = progress(samples) if progress is not None else samples
    with MXIndexedRecordIOWriter(idx_path, rec_path) as writer:
        # placeholder header (same size as the final one: 2 float32 labels, no payload)
        head_off = writer.write_idx(0, pack(IRHeader(2, [0.0, 0.0], 0, 0), b''))
        for label, image in iterator:
            label = int(label)
            if label < last_label or label < 0:
                raise ValueError(f'write_insightface_rec: labels must be >= 0 and grouped by '
                                 f'identity (non-decreasing); got {label} after {last_label}')
            key += 1
            while len(starts) <= label:
                starts.append(key)
            last_label = label
            if isinstance(image, np.ndarray) and image.ndim >= 2:
                shape = image.shape[:2]
                ok, buf = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
                if not ok:
                    raise ValueError(f'write_insightface_rec: image {key} does not encode')
                data = buf.tobytes()
            else:
                data = bytes(image)
                shape = None
                if image_size is None:
                    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                    if img is None:
                        raise ValueError(f'write_insightface_rec: image {key} (label {label}) '
                                         'does not decode')
                    shape = img.shape[:2]
            if image_size is None:
                image_size = tuple(int(v) for v in shape)
            writer.write_idx(key, pack(IRHeader(0, float(label), key, 0), data))
        num_images = key
        if num_classes is None:
            num_classes = len(starts)
        elif num_classes < len(starts):
            raise ValueError(f'write_insightface_rec: label {len(starts) - 1} >= '
                             f'num_classes={num_classes}')
        if num_images == 0:
            raise ValueError('write_insightface_rec: no samples')
        if num_images + 1 + num_classes >= _MAX_EXACT_F32:
            raise ValueError('write_insightface_rec: more than 2**24 records do not fit the '
                             'float32 header of the insightface layout')
        while len(starts) < num_classes:
            starts.append(num_images + 1)
        bounds = starts + [num_images + 1]
        for c in range(num_classes):
            writer.write_idx(num_images + 1 + c,
                             pack(IRHeader(2, [bounds[c], bounds[c + 1]],
                                           num_images + 1 + c, 0), b''))
        writer.overwrite(head_off, pack(IRHeader(2, [num_images + 1,
                                                      num_images + 1 + num_classes], 0, 0), b''))
    tmp = property_path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(f'{num_classes},{image_size[0]},{image_size[1]}\n')
    os.replace(tmp, property_path)
    return dict(rec_path=rec_path, idx_path=idx_path, property_path=property_path,
                num_images=num_images, num_classes=num_classes, image_size=image_size)
