"""One data structure for a whole training batch (docs/architecture.md §2.1, fast path).

The default data path packs one mmpretrain ``DataSample`` per image and hands the model a
list of them; building, pickling and iterating those objects costs more than decoding a
112 px JPEG. The fast path (``PackFaceArrays`` + ``face_batch_collate``) hands the model one
:class:`FaceBatchSamples` instead: the per-sample fields the training step reads, as
``B``-long tensors. It is an MMEngine ``BaseDataElement``, so the data preprocessor's
``cast_data`` moves it to the device like any data sample.

Readers: ``FaceRecognizer.gt_labels`` (labels), ``CoupleFaceDistiller.teacher_embeddings``
(``sample_idx`` and ``flip`` for the teacher bank), ``FaceDataPreprocessor`` (``flip`` on
the JPEG path). ``to_data_samples`` gives the per-sample list where one is still needed.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.structures import BaseDataElement

__all__ = ['FaceBatchSamples', 'batch_field']

_FIELDS = ('gt_label', 'sample_idx', 'flip', 'masked')

ArrayLike = Union[Sequence, np.ndarray, torch.Tensor]


class FaceBatchSamples(BaseDataElement):
    """Labels, sample indices and flip/masked flags of a batch, one tensor each.

    Args:
        gt_label: ``B`` identity labels (int64).
        sample_idx: ``B`` dataset indices (int64).
        flip: ``B`` flags, the image was mirrored (bool).
        masked: ``B`` flags, the student view carries a synthetic mask (bool).

    Examples:
        >>> s = FaceBatchSamples(gt_label=[3, 1], sample_idx=[7, 2], flip=[1, 0],
        ...                      masked=[0, 0])
        >>> len(s), s.gt_label.dtype
        (2, torch.int64)
    """

    def __init__(self, gt_label: Optional[ArrayLike] = None,
                 sample_idx: Optional[ArrayLike] = None, flip: Optional[ArrayLike] = None,
                 masked: Optional[ArrayLike] = None) -> None:
        super().__init__()
        given = dict(gt_label=gt_label, sample_idx=sample_idx, flip=flip, masked=masked)
        if all(v is None for v in given.values()):
            return  # empty: what BaseDataElement.new / .to start from
        if any(v is None for v in given.values()):
            raise ValueError('FaceBatchSamples: give all of gt_label, sample_idx, flip, masked')
        values = {k: torch.as_tensor(v, dtype=torch.bool if k in ('flip', 'masked')
                                     else torch.int64) for k, v in given.items()}
        sizes = {k: tuple(v.shape) for k, v in values.items()}
        if len(set(sizes.values())) != 1 or len(next(iter(sizes.values()))) != 1:
            raise ValueError(f'FaceBatchSamples: every field must be one B-long vector, got '
                             f'shapes {sizes}')
        self.set_data(values)

    def __reduce_ex__(self, protocol):
        """Pickle the four CPU fields by value (a few hundred bytes inline).

        A DataLoader worker sends its batch through a ``torch.multiprocessing`` queue,
        which passes every tensor as a new shared-memory segment and a file descriptor
        over a socket: ~0.65 ms per tensor measured here, 2.6 ms a batch for four small
        vectors. Anything else (other fields, device tensors) pickles as usual.
        """
        fields = dict(self.items())
        if set(fields) == set(_FIELDS) and not self.metainfo_keys() and all(
                isinstance(v, torch.Tensor) and v.device.type == 'cpu'
                for v in fields.values()):
            return _rebuild, ({k: fields[k].numpy() for k in _FIELDS},)
        return super().__reduce_ex__(protocol)

    def __len__(self) -> int:
        return int(self.gt_label.shape[0]) if 'gt_label' in self else 0

    def to_data_samples(self) -> List:
        """One mmpretrain ``DataSample`` per image, with the fields ``PackFaceInputs`` sets
        (``gt_label``; metainfo ``sample_idx``, ``flip``, ``masked``)."""
        from mmpretrain.structures import DataSample

        out = []
        labels, idx = self.gt_label.tolist(), self.sample_idx.tolist()
        flips, masked = self.flip.tolist(), self.masked.tolist()
        for i in range(len(labels)):
            sample = DataSample().set_gt_label(labels[i])
            sample.set_metainfo(dict(sample_idx=idx[i], flip=flips[i], masked=masked[i]))
            out.append(sample)
        return out


def _rebuild(arrays: dict) -> FaceBatchSamples:
    return FaceBatchSamples(**arrays)


def batch_field(data_samples, name: str) -> torch.Tensor:
    """Field ``name`` of a batch: from :class:`FaceBatchSamples` or a list of samples.

    Args:
        data_samples: A :class:`FaceBatchSamples` or a sequence of ``DataSample``.
        name: ``'gt_label'``, ``'sample_idx'``, ``'flip'`` or ``'masked'``.

    Returns:
        Tensor: ``B`` values (int64 labels and indices, bool flags); on the structure's
        device for :class:`FaceBatchSamples`, on the CPU otherwise.
    """
    if isinstance(data_samples, FaceBatchSamples):
        return getattr(data_samples, name)
    if name == 'gt_label':
        return torch.cat([ds.gt_label for ds in data_samples]).long()
    if name == 'sample_idx':
        return torch.tensor([int(ds.sample_idx) for ds in data_samples], dtype=torch.int64)
    return torch.tensor([bool(ds.get(name, False)) for ds in data_samples], dtype=torch.bool)
