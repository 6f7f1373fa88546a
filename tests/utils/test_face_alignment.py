"""5-point alignment: similarity estimation, round trip through a known warp, AlignFace."""
import cv2
import numpy as np
import pytest

from coupleface.datasets.synthfaces import render_identity_image
from coupleface.datasets.transforms.alignment import AlignFace
from coupleface.registry import TRANSFORMS
from coupleface.utils.face_alignment import (
    align_face,
    as_landmarks,
    estimate_similarity,
    transform_points,
)
from coupleface.utils.face_template import face_template

# Inside the face (eyes to chin, cheek to cheek) of a 112 px aligned face.
FACE_BOX = (slice(30, 105), slice(25, 88))


def _known_similarity(angle=20.0, scale=1.3, shift=(40.0, 25.0)):
    mat = cv2.getRotationMatrix2D((56.0, 56.0), angle, scale)
    mat[:, 2] += shift
    return mat


def _aligned_face():
    """A SynthFaces face rendered exactly on the template (no nuisance, no landmark offsets)."""
    img, lm = render_identity_image(3, 0, seed=0, return_landmarks=True,
                                    cfg=dict(nuisance=False, landmark_jitter=0.0))
    np.testing.assert_allclose(lm, face_template(112), atol=1e-4)
    return img, lm


def test_round_trip_through_a_known_similarity():
    img, lm = _aligned_face()
    mat = _known_similarity()
    warped = cv2.warpAffine(img, mat, (200, 200), flags=cv2.INTER_LINEAR)
    lm_warped = transform_points(lm, mat)

    aligned, back = align_face(warped, lm_warped, size=112, return_matrix=True)
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    # The warped landmarks land on the template (< 1 px; exact up to rounding here).
    err = np.linalg.norm(transform_points(lm_warped, back) - face_template(112), axis=1)
    assert err.max() < 1e-3
    # The estimated matrix undoes the known one.
    composed = back @ np.vstack([mat, [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(composed, [[1, 0, 0], [0, 1, 0]], atol=1e-6)
    # And the face comes back: the residual is only resampling blur.
    diff = np.abs(aligned.astype(np.int16) - img.astype(np.int16))[FACE_BOX]
    assert diff.mean() < 3.0
    # Sensitivity check: ignoring the rotation leaves a clearly different image.
    no_rotation = align_face(warped, transform_points(lm, _known_similarity(angle=0.0)))
    wrong = np.abs(no_rotation.astype(np.int16) - img.astype(np.int16))[FACE_BOX]
    assert wrong.mean() > 3 * diff.mean() + 5.0


def test_round_trip_with_noisy_landmarks_stays_under_a_pixel():
    img, lm = _aligned_face()
    mat = _known_similarity(angle=-35.0, scale=0.8, shift=(10.0, 60.0))
    warped = cv2.warpAffine(img, mat, (180, 180))
    noisy = transform_points(lm, mat) + np.random.default_rng(0).normal(0, 0.3, (5, 2))
    _, back = align_face(warped, noisy, return_matrix=True)
    err = np.linalg.norm(transform_points(noisy, back) - face_template(112), axis=1)
    assert err.mean() < 1.0


def test_a_jittered_face_aligns_the_same_before_and_after_a_warp():
    img, lm = render_identity_image(5, 3, seed=0, return_landmarks=True)  # full nuisance
    mat = _known_similarity()
    warped = cv2.warpAffine(img, mat, (200, 200))
    a1 = align_face(img, lm)
    a2 = align_face(warped, transform_points(lm, mat).ravel())  # 10-value form
    assert np.abs(a1.astype(np.int16) - a2.astype(np.int16))[FACE_BOX].mean() < 3.0


def test_estimate_similarity_is_the_least_squares_similarity():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 150, (5, 2))
    dst = rng.uniform(0, 112, (5, 2))
    mat = estimate_similarity(src, dst)
    # Linear least squares over (a, b, tx, ty) with M = [[a, -b, tx], [b, a, ty]].
    rows = np.zeros((10, 4))
    rows[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(5), np.zeros(5)]
    rows[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(5), np.ones(5)]
    a, b, tx, ty = np.linalg.lstsq(rows, dst.ravel(), rcond=None)[0]
    np.testing.assert_allclose(mat, [[a, -b, tx], [b, a, ty]], atol=1e-9)
    # A rotation + scale, never a reflection.
    assert np.linalg.det(mat[:, :2]) > 0
    # Exact on points related by a similarity (also with a different size template).
    np.testing.assert_allclose(
        estimate_similarity(face_template(112), face_template(56)),
        [[0.5, 0, 0], [0, 0.5, 0]], atol=1e-9)


@pytest.mark.parametrize('bad', [np.zeros((4, 2)), np.zeros((5, 3)), np.zeros(11),
                                 np.zeros((2, 5, 2))])
def test_wrong_shape_landmarks_raise_one_line_naming_the_shape(bad):
    img = np.zeros((150, 150, 3), np.uint8)
    with pytest.raises(ValueError) as info:
        align_face(img, bad)
    msg = str(info.value)
    assert str(bad.shape) in msg and '5x2' in msg and '\n' not in msg


def test_non_finite_and_degenerate_landmarks_raise():
    with pytest.raises(ValueError, match='non-finite'):
        as_landmarks(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match='degenerate'):
        align_face(np.zeros((50, 50, 3), np.uint8), np.ones((5, 2)))


def test_align_face_transform_from_registry():
    img, lm = _aligned_face()
    mat = _known_similarity(angle=10.0, scale=1.1)
    warped = cv2.warpAffine(img, mat, (160, 160))
    transform = TRANSFORMS.build(dict(type='AlignFace', size=64))
    assert isinstance(transform, AlignFace)
    out = transform(dict(img=warped, landmarks=transform_points(lm, mat).astype(np.float32),
                         img_path='x.jpg'))
    assert out['img'].shape == (64, 64, 3) and out['img_shape'] == (64, 64)
    np.testing.assert_allclose(out['landmarks'], face_template(64), atol=1e-3)
    assert out['align_matrix'].shape == (2, 3)
    with pytest.raises(ValueError, match=r'x\.jpg.*shape \(3, 2\)'):
        transform(dict(img=warped, landmarks=np.zeros((3, 2)), img_path='x.jpg'))
    with pytest.raises(KeyError, match='landmarks'):
        transform(dict(img=warped))
