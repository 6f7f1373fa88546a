"""Lean packing for the fast training path (docs/architecture.md §2.1, fast path).

``PackFaceInputs`` turns every sample into CHW tensors and an mmpretrain ``DataSample``;
``PackFaceArrays`` only picks what the training step reads (the uint8 HWC image, the
teacher view, label, index and flags) and leaves the batching to ``face_batch_collate``
(``coupleface/datasets/face_batch_collate.py``), which writes one uint8 NCHW batch tensor
and one ``FaceBatchSamples``. Without ``img`` (no ``LoadFaceImage`` in the pipeline) it
passes the encoded ``img_bytes`` on, for decoding on the device (``FaceDataPreprocessor``).
"""
from __future__ import annotations

from typing import Optional

from mmcv.transforms import BaseTransform

from coupleface.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackFaceArrays(BaseTransform):
    """Keep the arrays and scalars of a training sample; build no tensors or data samples.

    Required keys: ``img`` (uint8 ``H×W×3``), or ``img_bytes`` (encoded JPEG) without
    ``img``; ``sample_idx``.
    Optional keys: ``teacher_img``, ``gt_label`` (-1 when absent), ``flip``, ``masked``,
    ``epoch``.

    Output: ``img`` or ``img_bytes``, ``teacher_img`` (when present), ``gt_label``,
    ``sample_idx``, ``flip``, ``masked``, ``epoch`` (when present: the collate's flip draw,
    ``face_batch_collate(flip_prob=...)``, reads it as ``RandomFaceFlip`` would) and, with
    ``img_bytes``, ``img_size``. Use it with ``collate_fn=dict(type='face_batch_collate')``;
    validation and test pipelines keep ``PackFaceInputs``.

    Args:
        size: With ``img_bytes`` only: the side the device decoder brings the images to
            (the ``LoadFaceImage(size)`` of the CPU pipeline); ``None`` keeps the stored
            size.

    Examples:
        >>> train_pipeline = [dict(type='LoadFaceImage', size=112),
        ...                   dict(type='RandomFaceFlip', prob=0.5),
        ...                   dict(type='PackFaceArrays')]
        >>> jpeg_pipeline = [dict(type='PackFaceArrays', size=112)]  # with
        >>> collate_fn = dict(type='face_batch_collate', flip_prob=0.5)
    """

    def __init__(self, size: Optional[int] = None) -> None:
        if size is not None and (not isinstance(size, int) or size < 8):
            raise ValueError(f'PackFaceArrays: size must be an int >= 8 or None, got {size!r}')
        self.size = size

    def transform(self, results: dict) -> dict:
        out = dict(gt_label=int(results.get('gt_label', -1)),
                   sample_idx=int(results['sample_idx']),
                   flip=bool(results.get('flip', False)),
                   masked=bool(results.get('masked', False)))
        if results.get('epoch') is not None:
            out['epoch'] = int(results['epoch'])
        if results.get('img') is not None:
            out['img'] = results['img']
            if results.get('teacher_img') is not None:
                out['teacher_img'] = results['teacher_img']
        elif results.get('img_bytes') is not None:
            if out['masked'] or results.get('teacher_img') is not None:
                raise ValueError('PackFaceArrays: a masked or two-view sample needs the CPU '
                                 'path (LoadFaceImage before the mask); the device decoder '
                                 'only flips')
            out['img_bytes'] = results['img_bytes']
            out['img_size'] = self.size
        else:
            raise KeyError('PackFaceArrays needs "img" (LoadFaceImage) or "img_bytes" '
                           f'(a RecordIO sample), got keys {sorted(results)}')
        return out

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(size={self.size})'
