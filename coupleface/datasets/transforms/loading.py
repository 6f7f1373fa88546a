"""Load an aligned face image from record bytes, an encoded array, or a path.

Decodes with OpenCV to uint8 BGR (docs/architecture.md §4 Images) and resizes to ``size`` when the
source differs (insightface data is 112×112; CPU demos may ask for 56 or 64).
Undecodable images raise by default; training may skip (and count) them instead.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from coupleface.registry import TRANSFORMS
from coupleface.utils.validation import check_int


class ImageDecodeError(ValueError):
    """An image's bytes (or file) could not be decoded."""


def _name(source: Union[str, Callable[[], str]]) -> str:
    return source() if callable(source) else source


def decode_face_image(data: Union[bytes, bytearray, memoryview, np.ndarray],
                      source: Union[str, Callable[[], str]] = '<bytes>') -> np.ndarray:
    """Decode encoded image bytes (or pass through a decoded array) to BGR uint8.

    Args:
        data: Encoded bytes, a 1-D uint8 array of encoded bytes, or an already
            decoded ``H×W`` / ``H×W×3`` uint8 array (taken as BGR).
        source: Name of the source for error messages, or a function giving it (called
            only to raise: a training loader names the record without formatting the
            name of every sample).

    Returns:
        ``H×W×3`` uint8 BGR image.

    Raises:
        ImageDecodeError: the data is empty or not a decodable image.
    """
    if isinstance(data, np.ndarray) and data.ndim in (2, 3):
        img = data  # already decoded
    else:
        buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
            else np.ascontiguousarray(data, dtype=np.uint8).ravel()
        if buf.size == 0:
            raise ImageDecodeError(f'{_name(source)}: empty image data')
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if img is None:
            raise ImageDecodeError(
                f'{_name(source)}: image data ({buf.size} bytes) does not decode')
    if img.dtype != np.uint8:
        raise ImageDecodeError(f'{_name(source)}: expected uint8 pixels, got {img.dtype}')
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img


def fit_face_size(img: np.ndarray, size: Optional[int],
                  interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``img`` at ``size``×``size`` (``INTER_AREA`` to shrink, ``interpolation`` to
    enlarge); unchanged when it has that size or ``size`` is ``None``."""
    if size is None or img.shape[:2] == (size, size):
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else interpolation
    return cv2.resize(img, (size, size), interpolation=interp)


@TRANSFORMS.register_module()
class LoadFaceImage(BaseTransform):
    """Decode a face image to uint8 BGR and bring it to ``size``.

    Reads ``results['img_bytes']`` (bytes or an encoded/decoded uint8 array, as
    RecordIO and ``.bin`` readers give) or else ``results['img_path']``.

    Required keys: ``img_bytes`` or ``img_path``.
    Added keys: ``img``, ``img_shape``, ``ori_shape``.

    Args:
        size: Output side length (square), or ``None`` to keep the source size.
            Aligned faces are 112 px; a smaller size is a plain resize of the
            aligned crop (landmarks scale with it).
        interpolation: OpenCV interpolation used when enlarging; shrinking
            always uses ``INTER_AREA``.
        on_error: ``'raise'`` (default; evaluation must never drop images) or
            ``'skip'``: log a warning naming the record/path, count the failure
            and return ``None``, so that mmengine's ``BaseDataset`` fetches
            another random sample in training mode (in test mode ``None`` is an
            error there too).
        max_failures: With ``'skip'``, the number of undecodable images
            tolerated per process (each DataLoader worker counts its own);
            one more raises ``ImageDecodeError``.

    Examples:
        >>> # training on a large RecordIO set with a few corrupt records
        >>> dict(type='LoadFaceImage', size=112, on_error='skip', max_failures=100)
        >>> pipeline = [dict(type='LoadFaceImage', size=112),
        ...             dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ...             dict(type='PackFaceInputs')]
    """

    def __init__(self, size: Optional[int] = 112,
                 interpolation: int = cv2.INTER_LINEAR,
                 on_error: str = 'raise',
                 max_failures: int = 100) -> None:
        if size is not None and (not isinstance(size, int) or size < 8):
            raise ValueError(f'LoadFaceImage: size must be an int >= 8 or None, got {size!r}')
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"LoadFaceImage: on_error must be 'raise' or 'skip', "
                             f'got {on_error!r}')
        self.max_failures = check_int(max_failures, 'max_failures', owner='LoadFaceImage')
        self.size = size
        self.interpolation = interpolation
        self.on_error = on_error
        self.num_failures = 0  # in this process (workers hold their own copy)

    @staticmethod
    def _source(results: dict) -> str:
        if results.get('img_path'):
            return str(results['img_path'])
        if results.get('rec_key') is not None:
            return f"record key {results['rec_key']} (sample {results.get('sample_idx', '?')})"
        return f"sample {results.get('sample_idx', '?')}"

    def _decode(self, results: dict) -> np.ndarray:
        if results.get('img_bytes') is not None:
            return decode_face_image(results['img_bytes'], lambda: self._source(results))
        if results.get('img_path') is not None:
            path = results['img_path']
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise ImageDecodeError(f'{path}: missing or not a decodable image')
            return img
        raise KeyError('LoadFaceImage needs "img_bytes" or "img_path" in the sample, '
                       f'got keys {sorted(results)}')

    def transform(self, results: dict) -> Optional[dict]:
        try:
            img = self._decode(results)
        except ImageDecodeError as e:
            if self.on_error == 'raise':
                raise
            self.num_failures += 1
            if self.num_failures > self.max_failures:
                raise ImageDecodeError(
                    f'{self.num_failures} images failed to decode in this process, more than '
                    f'max_failures={self.max_failures}; last: {e}') from e
            print_log(f'LoadFaceImage: skipped an undecodable image ({self.num_failures}/'
                      f'{self.max_failures} allowed in this process): {e}',
                      logger='current', level=logging.WARNING)
            return None
        ori_shape = img.shape[:2]
        img = fit_face_size(img, self.size, self.interpolation)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = ori_shape
        results.pop('img_bytes', None)  # do not carry raw bytes through the pipeline
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, on_error={self.on_error!r}, '
                f'max_failures={self.max_failures})')
