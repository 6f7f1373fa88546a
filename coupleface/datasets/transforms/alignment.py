"""AlignFace: warp a loosely cropped face onto the 5-point template in a pipeline.

Used for IJB-B/IJB-C (``loose_crop`` images with landmarks from ``*_name_5pts_score.txt``) and
any other set that ships landmarks instead of aligned crops; the maths is
:func:`coupleface.utils.face_alignment.align_face` (insightface ``norm_crop``).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from coupleface.registry import TRANSFORMS
from coupleface.utils.face_alignment import align_face, transform_points


@TRANSFORMS.register_module()
class AlignFace(BaseTransform):
    """Align ``img`` with its 5 landmarks to a ``size`` x ``size`` face.

    Required keys: ``img``, ``landmarks`` (or ``landmarks_key``): ``5 x 2`` or 10 values.
    Modified keys: ``img``, ``img_shape``, ``landmarks`` (now in aligned coordinates).
    Added keys: ``align_matrix`` (``2 x 3``, source to aligned pixels).

    Args:
        size (int | tuple[int, int]): aligned side, or ``(height, width)``. Defaults to 112.
        landmarks_key (str): key of the landmarks in the results. Defaults to ``'landmarks'``.
        border_value (int | Sequence[int]): fill outside the source image. Defaults to 0.
        interpolation (str): ``'bilinear'`` (default, as insightface), ``'bicubic'``,
            ``'area'`` or ``'nearest'``.

    Examples:
        >>> test_pipeline = [
        ...     dict(type='LoadFaceImage', size=None),   # keep the loose crop's size
        ...     dict(type='AlignFace', size=112),
        ...     dict(type='PackFaceInputs',
        ...          meta_keys=('sample_idx', 'template_id', 'media_id', 'faceness')),
        ... ]
    """

    INTERPOLATIONS = dict(bilinear=cv2.INTER_LINEAR, bicubic=cv2.INTER_CUBIC,
                          area=cv2.INTER_AREA, nearest=cv2.INTER_NEAREST)

    def __init__(self, size: Union[int, Sequence[int]] = 112,
                 landmarks_key: str = 'landmarks',
                 border_value: Union[int, Sequence[int]] = 0,
                 interpolation: str = 'bilinear') -> None:
        if interpolation not in self.INTERPOLATIONS:
            raise ValueError(f'AlignFace: interpolation must be one of '
                             f'{sorted(self.INTERPOLATIONS)}, got {interpolation!r}')
        self.size = size if isinstance(size, int) else tuple(int(s) for s in size)
        self.landmarks_key = landmarks_key
        self.border_value = border_value
        self.interpolation = interpolation

    def transform(self, results: dict) -> Optional[dict]:
        source = results.get('img_path') or f"sample {results.get('sample_idx', '?')}"
        if 'img' not in results:
            raise KeyError('AlignFace needs "img"; put LoadFaceImage(size=None) before it')
        if results.get(self.landmarks_key) is None:
            raise KeyError(f'AlignFace needs "{self.landmarks_key}" in the sample ({source})')
        try:
            aligned, matrix = align_face(
                results['img'], results[self.landmarks_key], size=self.size,
                border_value=self.border_value,
                interpolation=self.INTERPOLATIONS[self.interpolation], return_matrix=True)
        except ValueError as err:
            raise ValueError(f'AlignFace: {source}: {err}') from None
        results['img'] = aligned
        results['img_shape'] = aligned.shape[:2]
        results[self.landmarks_key] = transform_points(
            np.asarray(results[self.landmarks_key], dtype=np.float64).reshape(5, 2),
            matrix).astype(np.float32)
        results['align_matrix'] = matrix
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'interpolation={self.interpolation!r})')
