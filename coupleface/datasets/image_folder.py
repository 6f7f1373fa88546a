"""Face training data as image folders: ``data_root/<identity>/<image>.jpg``.

The layout of insightface's extracted ``.rec`` files, of CASIA-WebFace
releases and of SynthFaces (``tools/make_synthfaces.py``): one folder per
identity, sorted folder names give labels ``0..C-1``. Listing millions of
files is slow, so the scanned list is cached in
``data_root/.coupleface_filelist.json`` and reused while no identity folder
was added, removed or changed (each folder's mtime is part of the key).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import tempfile
import time
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from coupleface.registry import DATASETS

from .missing_data import check_exists

_CACHE_VERSION = 1
# Folders modified this recently when the list was scanned may change again
# within the same mtime tick; their cache entry is not trusted (as git does).
_RACY_NS = 2_000_000_000


def _scan_signature(root: str) -> List[Tuple[str, int]]:
    """(name, mtime_ns) of every identity folder of ``root``, sorted by name."""
    with os.scandir(root) as it:
        entries = [(e.name, e.stat().st_mtime_ns) for e in it
                   if not e.name.startswith('.') and e.is_dir()]
    return sorted(entries)


@DATASETS.register_module()
class ImageFolderFaceDataset(BaseDataset):
    """Identity folders of aligned faces as a labelled training set.

    Items are ``dict(img_path=<absolute path>, gt_label=<int>)`` (MMEngine
    adds ``sample_idx``). Labels follow the sorted identity folder names.

    Args:
        data_root (str): Folder with one sub-folder per identity.
        pipeline (Sequence[dict | Callable]): Transforms, starting with
            ``LoadFaceImage``.
        data_prefix (dict): ``img_path`` sub-folder of ``data_root`` holding
            the identity folders. Defaults to ``dict(img_path='')``.
        extensions (Sequence[str]): Image file extensions (case-insensitive).
            Defaults to ``('.jpg', '.jpeg', '.png', '.bmp')``.
        use_cache (bool): Read/write the file list cache. Defaults to True.
        test_mode (bool): Defaults to False.
        lazy_init (bool): Defer the scan to ``full_init``.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.

    Examples:
        >>> # the dataset of a train_dataloader
        >>> dataset = dict(type='ImageFolderFaceDataset', data_root='data/synthfaces/train',
        ...                pipeline=[dict(type='LoadFaceImage'), dict(type='RandomFlip', prob=0.5),
        ...                          dict(type='PackFaceInputs')])
    """

    CACHE_NAME = '.coupleface_filelist.json'
    IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')

    def __init__(self,
                 data_root: str,
                 pipeline: Sequence[Any] = (),
                 data_prefix: Optional[dict] = None,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 use_cache: bool = True,
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 **kwargs):
        self.extensions = tuple(e.lower() if e.startswith('.') else '.' + e.lower()
                                for e in extensions)
        self.use_cache = use_cache
        #: 'hit', 'written', 'unwritable' or 'off': what the last scan did.
        self.cache_status = 'off'
        self._gt_labels: Optional[np.ndarray] = None
        self._class_to_indices: Optional[List[np.ndarray]] = None
        super().__init__(ann_file='', data_root=data_root,
                         data_prefix=data_prefix or dict(img_path=''),
                         pipeline=list(pipeline), test_mode=test_mode, lazy_init=lazy_init,
                         **kwargs)

    # ------------------------------------------------------------------ scan
    @property
    def image_root(self) -> str:
        """The folder holding the identity folders."""
        root = self.data_prefix['img_path'] or self.data_root
        return osp.normpath(root) if root else root

    def _scan(self, root: str, signature: List[Tuple[str, int]]
              ) -> Tuple[List[str], List[List[str]]]:
        classes = [name for name, _ in signature]
        files = []
        for name in classes:
            folder = osp.join(root, name)
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it if e.is_file()
                               and osp.splitext(e.name)[1].lower() in self.extensions)
            if not names:
                raise ValueError(f'{folder}: identity folder has no images '
                                 f'({", ".join(self.extensions)})')
            files.append(names)
        return classes, files

    def _read_cache(self, path: str, signature: List[Tuple[str, int]]
                    ) -> Optional[Tuple[List[str], List[List[str]]]]:
        try:
            with open(path, encoding='utf-8') as f:
                cache = json.load(f)
            if (cache.get('version') != _CACHE_VERSION
                    or cache.get('extensions') != list(self.extensions)
                    or [tuple(x) for x in cache['signature']] != signature):
                return None
            fresh = cache['scanned_at_ns'] - _RACY_NS
            if any(mtime >= fresh for _, mtime in signature):
                return None
            classes, files = cache['classes'], cache['files']
            if len(classes) != len(files) or classes != [n for n, _ in signature]:
                return None
            return classes, files
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cache(self, root: str, path: str, signature, classes, files,
                     scanned_at_ns: int) -> bool:
        if not os.access(root, os.W_OK):
            return False
        cache = dict(version=_CACHE_VERSION, extensions=list(self.extensions),
                     scanned_at_ns=scanned_at_ns, signature=signature, classes=classes,
                     files=files)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix='.coupleface_tmp_', suffix='.json', dir=root)
            with os.fdopen(fd, 'w', encoding='utf-8') as f:
                json.dump(cache, f, separators=(',', ':'))
            os.replace(tmp, path)
            return True
        except OSError:
            if tmp is not None and osp.exists(tmp):
                os.remove(tmp)
            return False

    def load_data_list(self) -> List[dict]:
        """Scan (or read from the cache) the identity folders."""
        root = self.image_root
        if not root:
            raise ValueError('ImageFolderFaceDataset needs data_root')
        check_exists(root, 'image folder')
        signature = _scan_signature(root)
        if not signature:
            raise ValueError(f'{root}: no identity folders (expected <root>/<identity>/<image>)')
        cache_path = osp.join(root, self.CACHE_NAME)
        cached = self._read_cache(cache_path, signature) if self.use_cache else None
        if cached is not None:
            classes, files = cached
            self.cache_status = 'hit'
        else:
            scanned_at_ns = time.time_ns()
            classes, files = self._scan(root, signature)
            self.cache_status = 'off'
            if self.use_cache:
                written = self._write_cache(root, cache_path, signature, classes, files,
                                            scanned_at_ns)
                self.cache_status = 'written' if written else 'unwritable'
        print_log(f'ImageFolderFaceDataset: {len(classes)} identities, '
                  f'{sum(map(len, files))} images in {root} (file list cache: '
                  f'{self.cache_status})', logger='current')
        self._metainfo.update(classes=tuple(classes), num_classes=len(classes))
        return [dict(img_path=osp.join(root, name, fname), gt_label=label)
                for label, (name, names) in enumerate(zip(classes, files))
                for fname in names]

    # ---------------------------------------------------------------- labels
    def _serialize_data(self):
        # Keep the labels before BaseDataset packs the data list into bytes.
        self._set_labels([info['gt_label'] for info in self.data_list])
        return super()._serialize_data()

    def full_init(self) -> None:
        """Scan, filter, subset and serialise (BaseDataset), keeping the labels."""
        if self._fully_initialized:
            return
        super().full_init()
        if not self.serialize_data:
            self._set_labels([info['gt_label'] for info in self.data_list])

    def _set_labels(self, labels: Sequence[int]) -> None:
        self._gt_labels = np.asarray(labels, dtype=np.int64)
        self._class_to_indices = None

    def _refresh_labels(self) -> None:
        self._set_labels([self.get_data_info(i)['gt_label'] for i in range(len(self))])

    def get_subset_(self, indices: Union[Sequence[int], int]) -> None:
        """In-place subset (BaseDataset), then recompute the labels."""
        super().get_subset_(indices)
        self._refresh_labels()

    def get_subset(self, indices: Union[Sequence[int], int]) -> 'ImageFolderFaceDataset':
        """Subset copy (BaseDataset) with its own labels."""
        sub = super().get_subset(indices)
        sub._refresh_labels()
        return sub

    def get_gt_labels(self) -> np.ndarray:
        """The int64 label of every item, in dataset order."""
        if not self._fully_initialized:
            self.full_init()
        return self._gt_labels.copy()

    def get_cat_ids(self, idx: int) -> List[int]:
        """``[label]`` of item ``idx`` (for MMEngine's ClassBalancedDataset)."""
        if not self._fully_initialized:
            self.full_init()
        return [int(self._gt_labels[idx])]

    @property
    def num_classes(self) -> int:
        """Number of identities (folders)."""
        if not self._fully_initialized:
            self.full_init()
        return int(self._metainfo['num_classes'])

    @property
    def class_to_indices(self) -> List[np.ndarray]:
        """Per identity (label order), the int64 dataset indices of its items."""
        if not self._fully_initialized:
            self.full_init()
        if self._class_to_indices is None:
            labels = self._gt_labels
            order = np.argsort(labels, kind='stable')
            counts = np.bincount(labels, minlength=self.num_classes)
            self._class_to_indices = np.split(order, np.cumsum(counts)[:-1])
        return self._class_to_indices
