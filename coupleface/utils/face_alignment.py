"""5-point face alignment: similarity transform of detected landmarks onto the face template.

The transform (rotation + uniform scale + translation, no reflection) is the exact
least-squares fit of Umeyama (1991), "Least-squares estimation of transformation parameters
between two point patterns", which is what insightface's ``norm_crop`` gets from
``skimage.transform.SimilarityTransform.estimate``. The target is the canonical template of
:mod:`coupleface.utils.face_template` (insightface ``arcface_dst``) scaled to the output size,
and the face is resampled with ``cv2.warpAffine`` (bilinear, black border, as insightface).

Landmarks are ``(x, y)`` pixel coordinates in the order left eye, right eye, nose tip, left
mouth corner, right mouth corner, given as a ``5 x 2`` array or as the 10 values
``x1 y1 ... x5 y5`` of an IJB ``*_name_5pts_score.txt`` line.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple, Union

import cv2
import numpy as np

from coupleface.utils.face_template import face_template

Size = Union[int, Sequence[int]]

__all__ = ['align_face', 'as_landmarks', 'estimate_similarity', 'transform_points']


def as_landmarks(landmarks: Any, name: str = 'landmarks') -> np.ndarray:
    """Check and convert 5-point landmarks to a ``5 x 2`` float64 array.

    Args:
        landmarks (array-like): ``5 x 2`` points or the 10 values ``x1 y1 ... x5 y5``.
        name (str): what to call them in error messages.

    Returns:
        np.ndarray: ``5 x 2`` float64 ``(x, y)`` points.

    Raises:
        ValueError: wrong shape or non-finite values (one line naming the shape).
    """
    try:
        points = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{name} must be numeric 5x2 points, got {type(landmarks).__name__}: '
                         f'{err}') from None
    if points.shape == (10, ):
        points = points.reshape(5, 2)
    if points.shape != (5, 2):
        raise ValueError(f'{name} must be 5x2 points (or 10 values x1 y1 ... x5 y5), '
                         f'got shape {points.shape}')
    if not np.all(np.isfinite(points)):
        raise ValueError(f'{name} contain non-finite values: {points.ravel().tolist()}')
    return points


def estimate_similarity(src: Any, dst: Any) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` points onto ``dst`` (Umeyama).

    Minimises ``sum_i |s R src_i + t - dst_i|^2`` over a rotation ``R`` (no reflection), a
    scale ``s > 0`` and a translation ``t``; exact when the points are related by a
    similarity.

    Args:
        src (array-like): ``N x 2`` source points (``N >= 2``), e.g. detected landmarks.
        dst (array-like): ``N x 2`` target points, e.g. ``face_template(112)``.

    Returns:
        np.ndarray: the ``2 x 3`` float64 matrix ``[s R | t]`` (``cv2.warpAffine`` layout).

    Examples:
        >>> src = np.array([[0., 0.], [1., 0.], [0., 1.]])
        >>> estimate_similarity(src, 2 * src + 3).round(6).tolist()
        [[2.0, 0.0, 3.0], [0.0, 2.0, 3.0]]
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f'src and dst must both be Nx2 with N >= 2, got shapes {src.shape} '
                         f'and {dst.shape}')
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    var_src = float(np.mean(np.sum(src_c ** 2, axis=1)))
    if var_src <= 1e-12:
        raise ValueError(f'source points are degenerate (all coincide): {src.tolist()}')
    cov = dst_c.T @ src_c / src.shape[0]
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # best orthogonal map is a reflection
        d[1] = -1.0
    rotation = (u * d) @ vt
    scale = float(np.sum(sing * d)) / var_src
    translation = mean_dst - scale * rotation @ mean_src
    return np.hstack([scale * rotation, translation[:, None]])


def transform_points(points: Any, matrix: Any) -> np.ndarray:
    """Apply a ``2 x 3`` affine matrix to ``N x 2`` points.

    Args:
        points (array-like): ``N x 2`` points.
        matrix (array-like): ``2 x 3`` matrix.

    Returns:
        np.ndarray: the transformed ``N x 2`` points (float64).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def _hw(size: Size) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    height, width = (int(s) for s in size)
    return height, width


def align_face(img: np.ndarray,
               landmarks: Any,
               size: Size = 112,
               border_value: Union[int, Sequence[int]] = 0,
               interpolation: int = cv2.INTER_LINEAR,
               return_matrix: bool = False
               ) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """Warp a face onto the canonical 5-point template (insightface ``norm_crop``).

    Args:
        img (np.ndarray): ``H x W`` or ``H x W x C`` image (uint8 BGR from the loaders).
        landmarks (array-like): the face's 5 landmarks in ``img``: ``5 x 2`` or 10 values.
        size (int | tuple[int, int]): output side, or ``(height, width)``. Defaults to 112.
        border_value (int | Sequence[int]): fill outside the source image. Defaults to 0.
        interpolation (int): OpenCV interpolation flag. Defaults to bilinear.
        return_matrix (bool): also return the ``2 x 3`` matrix mapping ``img`` coordinates to
            aligned ones. Defaults to False.

    Returns:
        np.ndarray | tuple[np.ndarray, np.ndarray]: the aligned image (same dtype and
        channels as ``img``), and the matrix when ``return_matrix``.

    Examples:
        >>> img = np.zeros((150, 150, 3), np.uint8)
        >>> lm = face_template(112) + 20
        >>> align_face(img, lm).shape
        (112, 112, 3)
    """
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3) or img.size == 0:
        raise ValueError(f'img must be a non-empty HxW or HxWxC array, got '
                         f'{getattr(img, "shape", type(img).__name__)}')
    points = as_landmarks(landmarks)
    height, width = _hw(size)
    if height < 8 or width < 8:
        raise ValueError(f'aligned size must be at least 8 px, got {size!r}')
    matrix = estimate_similarity(points, face_template((height, width)))
    if isinstance(border_value, (int, float)):
        border = (float(border_value),) * 4
    else:
        border = tuple(float(v) for v in border_value)
    aligned = cv2.warpAffine(img, matrix, (width, height), flags=interpolation,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    if img.ndim == 3 and aligned.ndim == 2:  # OpenCV drops a single channel axis
        aligned = aligned[..., None]
    return (aligned, matrix) if return_matrix else aligned
