"""Read and check what the deployment API is given: images and their 5-point landmarks.

Images are decoded as the data pipeline decodes them (:func:`decode_face_image`: uint8 BGR
``H×W×3``, grey and BGRA converted); landmarks are ``5×2`` (x, y) in the insightface template
order (docs/architecture.md §4 "Images"). Errors name the file or the image.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional, Union

import numpy as np

from coupleface.datasets.transforms.loading import ImageDecodeError, decode_face_image

__all__ = ['ImageLike', 'as_image_list', 'check_landmarks', 'landmark_list', 'read_face_image']

ImageLike = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray]

def read_face_image(image: ImageLike, source: Optional[str] = None) -> np.ndarray:
    """Decode an image path, encoded bytes or a BGR array to a ``H×W×3`` uint8 BGR array.

    Args:
        image: A file path, encoded file bytes (or a 1-D uint8 array of them), or a decoded
            ``H×W×3`` (BGR) / ``H×W`` uint8 array.
        source: Name used in error messages (defaults to the path).

    Returns:
        np.ndarray: The BGR image.

    Raises:
        FileNotFoundError: the path does not exist (the message names it).
        ImageDecodeError: the file/bytes are not a decodable image (the message names the
            path or source).
    """
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            with open(path, 'rb') as f:
                data = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f'image not found: {path}') from None
        except OSError as err:
            raise ImageDecodeError(f'{path}: cannot read image file ({err.strerror})') from None
        try:
            return decode_face_image(data, source=path)
        except ImageDecodeError as err:
            raise ImageDecodeError(f'{err} (not a readable image file)') from None
    if isinstance(image, (bytes, bytearray, memoryview, np.ndarray)):
        return decode_face_image(image, source=source or f'<{type(image).__name__}>')
    raise ValueError(f'{source or "image"}: expected a path, encoded bytes or a uint8 BGR '
                     f'array, got {type(image).__name__}')


def as_image_list(images: Any) -> List[Any]:
    """One image or a sequence of them as a list (an ``N×H×W×3`` array is N images).

    Args:
        images: A path, encoded bytes, an image array, an ``N×H×W×3`` array or a sequence.

    Returns:
        list: The images, one item each.
    """
    if isinstance(images, (str, os.PathLike, bytes, bytearray, memoryview)):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    return list(images)


def check_landmarks(points: Any, what: str) -> np.ndarray:
    """Validate one face's 5-point landmarks.

    Args:
        points: ``5×2`` (x, y) of left eye, right eye, nose, left and right mouth corners.
        what: Name of the image in error messages.

    Returns:
        np.ndarray: The landmarks, ``5×2`` float32.

    Raises:
        ValueError: not numeric, another shape, or not finite (the message names ``what``).
    """
    try:
        arr = np.asarray(points, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f'landmarks of {what} are not a numeric 5x2 array: {points!r}') from None
    if arr.shape != (5, 2):
        raise ValueError(f'landmarks of {what} have shape {tuple(arr.shape)}; expected '
                         '(5, 2): (x, y) of left eye, right eye, nose, left and right mouth '
                         'corners')
    if not np.all(np.isfinite(arr)):
        raise ValueError(f'landmarks of {what} are not finite: {arr.tolist()}')
    return arr


def landmark_list(landmarks: Any, num_images: int) -> List[Optional[np.ndarray]]:
    """Per-image ``5×2`` landmarks (``None``: the face is already aligned).

    Args:
        landmarks: ``None``, an ``N×5×2`` array (a ``5×2`` one for a single image), or a
            list with one ``5×2`` array or ``None`` per image.
        num_images: ``N``.

    Returns:
        list: ``N`` checked ``5×2`` float32 arrays or ``None``.

    Raises:
        ValueError: wrong count or shape (the message names the image).
    """
    if landmarks is None:
        return [None] * num_images
    per_image = isinstance(landmarks, (list, tuple)) and any(lm is None for lm in landmarks)
    if not per_image:
        try:
            arr = np.asarray(landmarks, dtype=np.float32)
        except (TypeError, ValueError):  # ragged: report the offending image below
            per_image = True
    if not per_image:
        if arr.ndim == 2 and num_images == 1:
            arr = arr[None]  # the landmarks of the only image
        if arr.ndim != 3:
            raise ValueError(f'landmarks have shape {tuple(arr.shape)}; expected '
                             f'({num_images}, 5, 2): 5 (x, y) points per image')
        items = list(arr)
    else:
        items = list(landmarks)
    if len(items) != num_images:
        raise ValueError(f'{len(items)} landmark sets for {num_images} images')
    return [None if lm is None else check_landmarks(lm, f'image {i}')
            for i, lm in enumerate(items)]
