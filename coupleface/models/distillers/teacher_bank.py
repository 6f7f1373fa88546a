"""TeacherBank: precomputed teacher embeddings, memory-mapped, looked up by sample index.

A distiller whose teacher view has no random augmentation (only the flip) can replace
the frozen teacher's forward pass with a lookup (docs/architecture.md §4 Teacher bank):
``tools/extract_embeddings.py`` runs the teacher once over the training set, original and
mirrored image, and writes

- ``<prefix>.npy``: float16 ``[N, 2, D]`` (slot 0 the original image, slot 1 its mirror),
  a plain ``.npy`` opened with ``np.load(mmap_mode='r')`` so every dataloader worker and
  rank shares the page cache instead of holding a copy;
- ``<prefix>.labels.npy`` (optional): int64 ``[N]``, the identity label of every row, needed
  to use bank rows as RAD partners (``CoupleFaceDistiller(rad_bank_partners=M)``); the
  ``.json`` then records its file name under ``labels``. Banks written without labels
  still open (``TeacherBank.labels`` is ``None``);
- ``<prefix>.json``: its provenance (teacher checkpoint hash, dataset identity) and
  layout (``num_samples``, ``embedding_dim``, ``dtype``), checked when the bank is opened.

5.8M MS1MV2 images x 512-d take 11.9 GB on disk (plus 46 MB of labels).
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, Iterable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from coupleface.utils.meta_check import check_meta

__all__ = ['TeacherBank', 'write_teacher_bank']

BANK_DTYPE = np.float16
LABEL_DTYPE = np.int64
_LAYOUT_KEYS = ('num_samples', 'embedding_dim', 'dtype')
#: Metadata key naming the labels file (relative to the ``.json``); absent without labels.
LABELS_KEY = 'labels'


def _bank_paths(path_prefix: str) -> tuple:
    return f'{path_prefix}.npy', f'{path_prefix}.json'


def _labels_path(path_prefix: str) -> str:
    return f'{path_prefix}.labels.npy'


def _as_numpy(chunk: Union[Tensor, np.ndarray]) -> np.ndarray:
    if isinstance(chunk, Tensor):
        chunk = chunk.detach().float().cpu().numpy()
    return np.asarray(chunk)


def _check_labels(labels: Union[np.ndarray, Tensor, Sequence[int]],
                  num_samples: int) -> np.ndarray:
    """The labels as an int64 ``[num_samples]`` array, or a one-line ``ValueError``."""
    if isinstance(labels, Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.shape != (num_samples,):
        raise ValueError(f'labels must have shape ({num_samples},) (one per bank row), '
                         f'got {arr.shape}')
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f'labels must be integers, got dtype {arr.dtype}')
    return arr.astype(LABEL_DTYPE, copy=False)


def write_teacher_bank(path_prefix: str,
                       embeddings: Union[np.ndarray, Tensor, Iterable],
                       meta: Dict[str, Any], num_samples: Optional[int] = None,
                       labels: Optional[Union[np.ndarray, Tensor, Sequence[int]]] = None
                       ) -> str:
    """Write a TeacherBank: ``<prefix>.npy`` (float16 ``[N, 2, D]``) and ``<prefix>.json``.

    All files are written under temporary names and renamed when complete (the
    ``.json`` last), so an interrupted extraction never leaves a bank that opens.

    Args:
        path_prefix: Output path without extension.
        embeddings: The whole ``[N, 2, D]`` array/tensor, or an iterable of
            ``[b, 2, D]`` chunks in sample order (then ``num_samples`` is required).
            Slot 0 is the original image, slot 1 its horizontal mirror.
        meta: JSON-serialisable provenance, e.g. ``teacher_sha256`` (checkpoint SHA-256)
            and ``dataset`` (an identity string such as the ``.rec`` path and length);
            ``num_samples``, ``embedding_dim`` and ``dtype`` are added (and ``labels``
            with labels).
        num_samples: ``N``, required for an iterable.
        labels: Optional identity label of every row, integer ``[N]`` in sample order;
            written to ``<prefix>.labels.npy`` (int64) and named in the ``.json``.
            Required for TeacherBank partners in RAD.

    Returns:
        str: The ``.npy`` path.
    """
    npy_path, json_path = _bank_paths(path_prefix)
    if isinstance(embeddings, (np.ndarray, Tensor)):
        num_samples = len(embeddings) if num_samples is None else num_samples
        chunks: Iterable = [embeddings]
    else:
        if num_samples is None:
            raise ValueError('num_samples is required when embeddings is an iterable of chunks')
        chunks = embeddings
    clash = sorted(set(meta) & set(_LAYOUT_KEYS + (LABELS_KEY,)))
    if clash:
        raise ValueError(f'meta must not set {clash}: they are derived from the array')
    label_array = None if labels is None else _check_labels(labels, int(num_samples))
    labels_path = _labels_path(path_prefix)
    os.makedirs(osp.dirname(osp.abspath(npy_path)), exist_ok=True)
    tmp_npy, tmp_json = f'{npy_path}.tmp{os.getpid()}', f'{json_path}.tmp{os.getpid()}'
    tmp_labels = f'{labels_path}.tmp{os.getpid()}'
    bank = None
    try:
        written, dim = 0, None
        for chunk in chunks:
            chunk = _as_numpy(chunk)
            if chunk.ndim != 3 or chunk.shape[1] != 2:
                raise ValueError(f'embedding chunks must be [b, 2, D] (original, flip), got '
                                 f'{chunk.shape}')
            if bank is None:
                dim = chunk.shape[2]
                bank = np.lib.format.open_memmap(tmp_npy, mode='w+', dtype=BANK_DTYPE,
                                                 shape=(num_samples, 2, dim))
            if chunk.shape[2] != dim:
                raise ValueError(f'embedding size changed from {dim} to {chunk.shape[2]}')
            if written + len(chunk) > num_samples:
                raise ValueError(f'more than num_samples={num_samples} embeddings given')
            bank[written:written + len(chunk)] = chunk
            written += len(chunk)
        if bank is None or written != num_samples:
            raise ValueError(f'{written} embeddings given, expected num_samples={num_samples}')
        bank.flush()
        del bank
        bank = None
        record = dict(meta, num_samples=int(num_samples), embedding_dim=int(dim),
                      dtype=np.dtype(BANK_DTYPE).name)
        if label_array is not None:
            with open(tmp_labels, 'wb') as f:
                np.save(f, label_array, allow_pickle=False)
            record[LABELS_KEY] = osp.basename(labels_path)
        with open(tmp_json, 'w') as f:
            json.dump(record, f, indent=2, sort_keys=True)
        os.replace(tmp_npy, npy_path)
        if label_array is not None:
            os.replace(tmp_labels, labels_path)
        os.replace(tmp_json, json_path)
    finally:
        del bank
        for tmp in (tmp_npy, tmp_json, tmp_labels):
            if osp.exists(tmp):
                os.remove(tmp)
    return npy_path


class TeacherBank:
    """Read-only, memory-mapped teacher embeddings ``[N, 2 (orig, flip), D]``.

    Args:
        path_prefix: Path without extension of the ``.npy``/``.json`` pair written by
            :func:`write_teacher_bank`.
        expect_meta: Values the ``.json`` must hold (e.g. the current teacher's
            ``teacher_sha256``, the dataset's ``num_samples``); a difference raises a
            one-line ``ValueError`` naming the file and the key.

    Examples:
        >>> bank = TeacherBank('work_dirs/teacher_bank/ms1mv2_r100',
        ...                    expect_meta=dict(num_samples=len(dataset)))
        >>> t = bank.lookup(sample_idx, flip)  # float32, B x D, on sample_idx's device
        >>> bank.labels  # int64 [N] memmap, or None for a bank written without labels
    """

    def __init__(self, path_prefix: str, expect_meta: Optional[Dict[str, Any]] = None) -> None:
        self.npy_path, self.json_path = _bank_paths(path_prefix)
        for path in (self.npy_path, self.json_path):
            if not osp.isfile(path):
                raise FileNotFoundError(f'teacher bank file not found: {path} (write it with '
                                        'tools/extract_embeddings.py)')
        with open(self.json_path) as f:
            try:
                self.meta: Dict[str, Any] = json.load(f)
            except ValueError as err:
                raise ValueError(f'{self.json_path}: not valid JSON ({err})') from None
        for key in _LAYOUT_KEYS:
            if key not in self.meta:
                raise ValueError(f'{self.json_path}: teacher bank metadata has no {key!r}')
        try:
            self._array = np.load(self.npy_path, mmap_mode='r', allow_pickle=False)
        except (OSError, EOFError, ValueError) as err:  # truncated, not .npy, object dtype
            raise ValueError(f'{self.npy_path}: not a readable teacher bank array '
                             f'({type(err).__name__}: {err})') from None
        expected_shape = (self.meta['num_samples'], 2, self.meta['embedding_dim'])
        if self._array.shape != expected_shape:
            key = ('num_samples' if self._array.shape[:1] != expected_shape[:1]
                   else 'embedding_dim')
            raise ValueError(f'{self.npy_path}: array shape {self._array.shape} does not match '
                             f'{key} in {osp.basename(self.json_path)} (expected '
                             f'{expected_shape})')
        if self._array.dtype.name != self.meta['dtype']:
            raise ValueError(f'{self.npy_path}: array dtype {self._array.dtype.name} does not '
                             f'match dtype={self.meta["dtype"]!r} in '
                             f'{osp.basename(self.json_path)}')
        check_meta(self.json_path, self.meta, expect_meta, 'teacher embeddings')
        self.labels_path: Optional[str] = None
        self._labels: Optional[np.ndarray] = None
        if self.meta.get(LABELS_KEY):
            self.labels_path = osp.join(osp.dirname(self.json_path), self.meta[LABELS_KEY])
            self._labels = self._load_labels(self.labels_path)

    def _load_labels(self, path: str) -> np.ndarray:
        if not osp.isfile(path):
            raise FileNotFoundError(f'teacher bank labels file not found: {path} (named in '
                                    f'{self.json_path}; re-extract the bank with '
                                    'tools/extract_embeddings.py)')
        try:
            labels = np.load(path, mmap_mode='r', allow_pickle=False)
        except (OSError, EOFError, ValueError) as err:
            raise ValueError(f'{path}: not a readable teacher bank labels array '
                             f'({type(err).__name__}: {err})') from None
        if labels.shape != (len(self),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f'{path}: labels must be integers of shape ({len(self)},), got '
                             f'{labels.dtype} {labels.shape}')
        return labels

    def __len__(self) -> int:
        return self._array.shape[0]

    @property
    def array(self) -> np.ndarray:
        """The read-only float16 memmap ``[N, 2, D]`` (slot 0 original, slot 1 mirror)."""
        return self._array

    @property
    def labels(self) -> Optional[np.ndarray]:
        """The read-only int64 memmap ``[N]`` of identity labels, or ``None``.

        ``None`` for a bank written without labels (before they were recorded).
        """
        return self._labels

    @property
    def embedding_dim(self) -> int:
        """The teacher's embedding size ``D``."""
        return self._array.shape[2]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.npy_path!r}, num_samples={len(self)}, '
                f'embedding_dim={self.embedding_dim}, labels={self._labels is not None})')

    def _indices(self, sample_idx: Tensor) -> np.ndarray:
        idx = torch.as_tensor(sample_idx).detach().cpu().long().numpy().reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f'sample_idx out of range [0, {len(self)}) of {self.npy_path}: '
                             f'[{idx.min()}, {idx.max()}]')
        return idx

    def lookup(self, sample_idx: Tensor, flip: Tensor) -> Tensor:
        """Teacher embeddings of the given samples and views.

        Args:
            sample_idx: ``B`` integer indices into the training set.
            flip: ``B`` bools: whether the (teacher) view of each sample was mirrored.

        Returns:
            Tensor: float32 ``B x D`` raw teacher embeddings on ``sample_idx``'s device.
        """
        slot = torch.as_tensor(flip).detach().cpu().long().numpy().reshape(-1)
        if torch.as_tensor(sample_idx).numel() != slot.size:
            raise ValueError(f'sample_idx and flip must have the same length, got '
                             f'{(torch.as_tensor(sample_idx).numel(),)} and {slot.shape}')
        idx = self._indices(sample_idx)
        # Fancy indexing on the memmap reads only the B requested rows.
        rows = np.asarray(self._array[idx, slot], dtype=np.float32)
        device = sample_idx.device if isinstance(sample_idx, Tensor) else 'cpu'
        return torch.from_numpy(rows).to(device)

    def lookup_labels(self, sample_idx: Tensor) -> Tensor:
        """Identity labels of the given rows.

        Args:
            sample_idx: ``B`` integer indices into the training set.

        Returns:
            Tensor: int64 ``B`` labels on ``sample_idx``'s device.

        Raises:
            ValueError: The bank was written without labels.
        """
        if self._labels is None:
            raise ValueError(f'teacher bank {self.json_path} has no identity labels: '
                             're-extract it with tools/extract_embeddings.py')
        idx = self._indices(sample_idx)
        rows = np.asarray(self._labels[idx], dtype=LABEL_DTYPE)
        device = sample_idx.device if isinstance(sample_idx, Tensor) else 'cpu'
        return torch.from_numpy(rows).to(device)
