"""Pack a face sample into model inputs and a data sample (docs/architecture.md §2.1).

``inputs`` is the student view; ``teacher_inputs`` the clean teacher view when
the pipeline kept one (``results['teacher_img']``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.structures import DataSample

from coupleface.registry import TRANSFORMS


def _to_chw_tensor(img: np.ndarray) -> torch.Tensor:
    if img.ndim == 2:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackFaceInputs(BaseTransform):
    """Pack ``img`` (and ``teacher_img``) into tensors and a ``DataSample``.

    Required keys: ``img``.
    Optional keys: ``teacher_img``, ``gt_label`` and the ``meta_keys``.

    The data sample always carries ``sample_idx``, ``flip`` and ``masked``
    (``False`` when no transform set them), plus whichever other meta keys are
    present.

    Args:
        meta_keys: Keys copied to the data sample's metainfo when present.

    Examples:
        >>> dict(type='PackFaceInputs', meta_keys=('sample_idx', 'flip', 'masked'))
    """

    DEFAULT_META_KEYS = ('sample_idx', 'flip', 'masked', 'set_name', 'img_path',
                         'img_shape', 'ori_shape')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        if 'img' not in results:
            raise KeyError('PackFaceInputs needs "img"; add LoadFaceImage before it')
        packed = dict(inputs=_to_chw_tensor(results['img']))
        if results.get('teacher_img') is not None:
            packed['teacher_inputs'] = _to_chw_tensor(results['teacher_img'])
        sample = DataSample()
        if results.get('gt_label') is not None:
            sample.set_gt_label(int(results['gt_label']))
        meta = {k: results[k] for k in self.meta_keys if k in results}
        meta['flip'] = bool(results.get('flip', False))
        meta['masked'] = bool(results.get('masked', False))
        sample.set_metainfo(meta)
        packed['data_samples'] = sample
        return packed

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
