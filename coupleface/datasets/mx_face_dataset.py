"""Face-recognition training set stored as insightface RecordIO (``train.rec``/``.idx``).

Reads the layout of insightface's ``faces_emore`` / MS1M / Glint sets (and
im2rec-style header-less records) with our own RecordIO reader
(``mx_record.py``); ``write_insightface_rec`` (``mx_record_writer.py``) writes that layout.

insightface layout (``N`` images, ``C`` identities)::

    key 0          header record: IRHeader label = [N + 1, N + 1 + C] (flag 2)
    keys 1..N      images: JPEG payload, label = identity (scalar, or label[0])
    keys N+1..N+C  identity c's range of image keys: label = [start, end)
    property       text file "C,H,W" next to the record files

Header-less layout: key 0 is not such a header, so every key is an image whose
label is read from its own header.
"""
from __future__ import annotations

import copy
import os.path as osp
import time
from typing import Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from coupleface.datasets.mx_record import MXIndexedRecordIO
from coupleface.datasets.mx_record_codec import RecordIOError, unpack
from coupleface.registry import DATASETS

from .missing_data import check_exists

__all__ = ['MXFaceDataset', 'read_property_file']


def read_property_file(path: str) -> Tuple[int, int, int]:
    """Parse an insightface ``property`` file (``num_classes,height,width``).

    Raises:
        ValueError: the file does not hold three comma-separated integers.
    """
    with open(path) as f:
        text = f.read().strip()
    try:
        values = tuple(int(v) for v in text.replace(' ', '').split(','))
        if len(values) != 3:
            raise ValueError
    except ValueError:
        raise ValueError(f'{path}: expected "num_classes,height,width", got {text[:60]!r}') \
            from None
    return values  # type: ignore[return-value]


def _insightface_header(reader: MXIndexedRecordIO) -> Optional[Tuple[int, int]]:
    """``(N, C)`` when key 0 is an insightface header record, else ``None``.

    A header has ``flag == 2``, label ``[N + 1, N + 1 + C]`` (integers,
    ``1 <= N + 1 <= N + 1 + C``), the keys it implies exist, and no image payload.
    """
    if 0 not in reader:
        return None
    header, payload = unpack(reader.read_idx(0))
    if header.flag != 2:
        return None
    first, stop = (float(v) for v in header.label)
    if not (first.is_integer() and stop.is_integer() and 1 <= first <= stop):
        return None
    first, stop = int(first), int(stop)
    if (first > 1 and first - 1 not in reader) or (stop > first and stop - 1 not in reader):
        return None
    if payload and cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED) \
            is not None:
        return None  # an image with a 2-value label: header-less layout
    return first - 1, stop - first


@DATASETS.register_module()
class MXFaceDataset(BaseDataset):
    """Insightface RecordIO face dataset (``train.rec``, ``train.idx``, ``property``).

    The data list is built from the record headers only (no image is decoded;
    ~48 bytes read per record); ``get_data_info`` adds the record's image bytes
    as ``img_bytes`` for ``LoadFaceImage`` to decode. Items are
    ``dict(rec_key, gt_label, sample_idx[, img_bytes])``; keys and labels are
    held in two int64 arrays, so millions of records cost 16 bytes each.

    Both insightface's layout (header record at key 0) and header-less record
    files (every key an image) are read; see the module docstring. Samples are
    in key order for the insightface layout and ``.idx`` order otherwise (as
    insightface's own ``MXFaceDataset``).

    Args:
        data_root: Folder holding the files.
        rec_file: RecordIO file, relative to ``data_root`` unless absolute.
        idx_file: Its index file.
        property_file: insightface ``property`` file (``C,H,W``) to check the
            data against, or ``None``. A missing file is skipped; a
            disagreement raises ``ValueError``.
        pipeline: Transforms (``LoadFaceImage`` first).
        test_mode: mmengine test mode (no re-fetch of ``None`` samples).
        lazy_init: Defer reading the headers until first use.
        indices: Keep only these samples (mmengine semantics).
        metainfo: Extra meta information.
        max_refetch: Re-fetch attempts when the pipeline returns ``None``
            (e.g. ``LoadFaceImage(on_error='skip')`` on an undecodable record).

    Examples:
        >>> train_dataloader = dict(
        ...     batch_size=128, num_workers=4,
        ...     sampler=dict(type='DefaultSampler', shuffle=True),
        ...     dataset=dict(
        ...         type='MXFaceDataset', data_root='data/faces_emore',
        ...         pipeline=[dict(type='LoadFaceImage', size=112,
        ...                        on_error='skip', max_failures=100),
        ...                   dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ...                   dict(type='PackFaceInputs')]))
    """

    METAINFO: dict = dict()

    def __init__(self,
                 data_root: str = '',
                 rec_file: str = 'train.rec',
                 idx_file: str = 'train.idx',
                 property_file: Optional[str] = 'property',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 metainfo: Optional[dict] = None,
                 max_refetch: int = 1000) -> None:
        def join(path):
            return path if path is None or osp.isabs(path) else osp.join(data_root, path)

        self.rec_path = join(rec_file)
        self.idx_path = join(idx_file)
        self.property_path = join(property_file)
        self._reader: Optional[MXIndexedRecordIO] = None
        self._rec_keys = np.zeros(0, np.int64)
        self._rec_rows = np.zeros(0, np.int64)  # the reader's .idx row of each sample
        self._gt_labels = np.zeros(0, np.int64)
        self._class_to_indices: List[np.ndarray] = []
        self._num_classes = 0
        self.layout = None
        super().__init__(ann_file='', metainfo=metainfo, data_root=data_root,
                         data_prefix=dict(), indices=indices, serialize_data=False,
                         pipeline=list(pipeline), test_mode=test_mode, lazy_init=lazy_init,
                         max_refetch=max_refetch)

    # ------------------------------------------------------------------ loading
    @property
    def reader(self) -> MXIndexedRecordIO:
        """The RecordIO reader (opened on first use; one file handle per process)."""
        if self._reader is None:
            self._reader = MXIndexedRecordIO(self.idx_path, self.rec_path)
        return self._reader

    def full_init(self) -> None:
        """Scan the record headers into key/label arrays and check them."""
        if self._fully_initialized:
            return
        start = time.perf_counter()
        check_exists(self.rec_path, 'RecordIO file')
        check_exists(self.idx_path, 'RecordIO index')
        keys, labels, num_classes = self._scan()
        self._rec_keys, self._gt_labels, self._num_classes = keys, labels, num_classes
        self._rec_rows = self.reader.rows(keys)
        self._check_property()
        if self._indices is not None:
            self._select(self._indices)
        else:
            self._index_classes()
        self._metainfo['num_classes'] = num_classes
        self._fully_initialized = True
        print_log(f'MXFaceDataset: {keys.size} images, {num_classes} identities in '
                  f'{self.rec_path} ({self.layout} layout, headers read in '
                  f'{time.perf_counter() - start:.2f} s)', logger='current')

    def _scan(self) -> Tuple[np.ndarray, np.ndarray, int]:
        reader = self.reader
        header = _insightface_header(reader)
        if header is not None:
            num_images, num_classes = header
            self.layout = 'insightface'
            keys = np.arange(1, num_images + 1, dtype=np.int64)
        else:
            self.layout = 'headerless'
            keys = reader.key_array.copy()
            num_classes = None
        if not keys.size:
            raise ValueError(f'{self.rec_path}: no image records ({self.layout} layout)')
        try:
            _, first = reader.scan_labels(keys)
        except RecordIOError as e:
            if self.layout != 'insightface':
                raise
            raise RecordIOError(f'{e} (key 0 of {self.rec_path} is an insightface header '
                                f'announcing images 1..{keys.size})') from None
        ok = np.isfinite(first) & (first >= 0) & (first == np.floor(first))
        if num_classes is not None:
            ok &= first < num_classes
        if not ok.all():
            i = int(np.nonzero(~ok)[0][0])
            limit = f'0..{num_classes - 1}' if num_classes is not None else 'integers >= 0'
            raise ValueError(
                f'{self.rec_path}: record key {int(keys[i])} has label {float(first[i])}; labels '
                f'must be {limit} ({self.layout} layout, {int((~ok).sum())} bad records)')
        labels = first.astype(np.int64)
        if num_classes is None:
            num_classes = int(labels.max()) + 1
        return keys, labels, num_classes

    def _check_property(self) -> None:
        path = self.property_path
        if path is None or not osp.isfile(path):
            return
        num_classes, height, width = read_property_file(path)
        if num_classes != self._num_classes:
            raise ValueError(f'{path}: says {num_classes} classes but {self.rec_path} has '
                             f'{self._num_classes}')
        _, payload = unpack(self.reader.read_idx(int(self._rec_keys[0])))
        img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        if img is not None and img.shape[:2] != (height, width):
            raise ValueError(f'{path}: says images are {height}x{width} but record key '
                             f'{int(self._rec_keys[0])} of {self.rec_path} is '
                             f'{img.shape[0]}x{img.shape[1]}')

    def _index_classes(self) -> None:
        labels = self._gt_labels
        order = np.argsort(labels, kind='stable')
        counts = np.bincount(labels, minlength=self._num_classes)
        self._class_to_indices = np.split(order.astype(np.int64), np.cumsum(counts)[:-1])

    def _select(self, indices: Union[int, Sequence[int]]) -> None:
        n = self._rec_keys.size
        if isinstance(indices, (int, np.integer)):
            sel = np.arange(n)[:indices] if indices >= 0 else np.arange(n)[indices:]
        else:
            sel = np.asarray(indices, np.int64).reshape(-1)
        self._rec_keys = self._rec_keys[sel]
        self._rec_rows = self._rec_rows[sel]
        self._gt_labels = self._gt_labels[sel]
        self._index_classes()

    def load_data_list(self) -> List[dict]:
        """The data list as dicts ``{rec_key, gt_label}`` (built from the arrays)."""
        self.full_init()
        return [dict(rec_key=k, gt_label=g)
                for k, g in zip(self._rec_keys.tolist(), self._gt_labels.tolist())]

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        self.full_init()
        return int(self._rec_keys.size)

    def get_data_info(self, idx: int) -> dict:
        """Sample ``idx``: ``rec_key``, ``gt_label``, ``sample_idx`` and ``img_bytes``."""
        self.full_init()
        n = self._rec_keys.size
        if not -n <= idx < n:
            raise IndexError(f'index {idx} out of range for {n} samples')
        idx = int(idx) % n
        try:
            _, payload = unpack(self.reader.read_row(self._rec_rows[idx]))
        except RecordIOError as e:
            raise RecordIOError(f'{self.rec_path}: record key {int(self._rec_keys[idx])}: '
                                f'{e}') from None
        return dict(rec_key=int(self._rec_keys[idx]), gt_label=int(self._gt_labels[idx]),
                    sample_idx=idx, img_bytes=payload)

    def get_cat_ids(self, idx: int) -> List[int]:
        """The identity of sample ``idx`` as a one-element list."""
        self.full_init()
        return [int(self._gt_labels[idx])]

    def get_gt_labels(self) -> np.ndarray:
        """Identity labels of all samples (int64 array, a copy)."""
        self.full_init()
        return self._gt_labels.copy()

    def get_rec_keys(self) -> np.ndarray:
        """RecordIO keys of all samples (int64 array, a copy)."""
        self.full_init()
        return self._rec_keys.copy()

    @property
    def num_classes(self) -> int:
        """Number of identities (``C``; labels are ``0..C-1``)."""
        self.full_init()
        return self._num_classes

    @property
    def class_to_indices(self) -> List[np.ndarray]:
        """For each identity ``c``, the int64 array of dataset indices labelled ``c``."""
        self.full_init()
        return self._class_to_indices

    def get_subset_(self, indices: Union[Sequence[int], int]) -> None:
        """Keep only ``indices`` (an int keeps the first/last ``|n|``; mmengine semantics)."""
        self.full_init()
        self._select(indices)

    def get_subset(self, indices: Union[Sequence[int], int]) -> 'MXFaceDataset':
        """A new dataset holding ``indices`` of this one (shares the reader's index)."""
        self.full_init()
        sub = copy.copy(self)
        sub._metainfo = copy.deepcopy(self._metainfo)
        sub._select(indices)
        return sub

    def __repr__(self) -> str:
        n = len(self) if self._fully_initialized else 'not loaded'
        return (f'{self.__class__.__name__}(rec={self.rec_path!r}, samples={n}, '
                f'num_classes={self._num_classes if self._fully_initialized else "?"})')
