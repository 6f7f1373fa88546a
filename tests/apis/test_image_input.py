"""Image and landmark input of the deployment API: forms, checks and the error messages."""
import cv2
import numpy as np
import pytest

from coupleface.apis.image_input import (
    as_image_list,
    check_landmarks,
    landmark_list,
    read_face_image,
)
from coupleface.datasets.transforms import ImageDecodeError


def _img(h=20, w=16):
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_read_face_image_forms(tmp_path):
    img = _img()
    ok, png = cv2.imencode('.png', img)
    path = tmp_path / 'face.png'
    path.write_bytes(png.tobytes())
    np.testing.assert_array_equal(read_face_image(str(path)), img)
    np.testing.assert_array_equal(read_face_image(path), img)
    np.testing.assert_array_equal(read_face_image(png.tobytes()), img)
    np.testing.assert_array_equal(read_face_image(img), img)
    grey = read_face_image(img[..., 0])
    assert grey.shape == (20, 16, 3) and grey.dtype == np.uint8


def test_read_face_image_errors(tmp_path):
    missing = str(tmp_path / 'missing.jpg')
    with pytest.raises(FileNotFoundError, match=missing):
        read_face_image(missing)
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'nope')
    with pytest.raises(ImageDecodeError, match='not a readable image file'):
        read_face_image(str(bad))
    with pytest.raises(ValueError, match='probe: expected a path'):
        read_face_image(3.5, source='probe')


def test_as_image_list():
    img = _img()
    assert len(as_image_list('a.jpg')) == 1 and len(as_image_list(b'xx')) == 1
    assert len(as_image_list(img)) == 1
    assert len(as_image_list(np.stack([img, img, img]))) == 3
    assert as_image_list(('a.jpg', 'b.jpg')) == ['a.jpg', 'b.jpg']


def test_landmarks():
    five = np.arange(10, dtype=np.float64).reshape(5, 2)
    arr = check_landmarks(five.tolist(), 'x')
    assert arr.dtype == np.float32 and arr.shape == (5, 2)
    with pytest.raises(ValueError, match=r'landmarks of x have shape \(4, 2\)'):
        check_landmarks(np.zeros((4, 2)), 'x')
    with pytest.raises(ValueError, match='landmarks of x are not finite'):
        check_landmarks(np.full((5, 2), np.nan), 'x')
    with pytest.raises(ValueError, match='not a numeric 5x2 array'):
        check_landmarks([['a', 'b']], 'x')

    assert landmark_list(None, 2) == [None, None]
    single = landmark_list(five, 1)
    assert len(single) == 1 and single[0].shape == (5, 2)
    mixed = landmark_list([None, five], 2)
    assert mixed[0] is None and mixed[1].shape == (5, 2)
    assert len(landmark_list(np.zeros((3, 5, 2)), 3)) == 3
    with pytest.raises(ValueError, match='2 landmark sets for 3 images'):
        landmark_list(np.zeros((2, 5, 2)), 3)
    with pytest.raises(ValueError, match=r'landmarks of image 1 have shape \(4, 2\)'):
        landmark_list([five, np.zeros((4, 2))], 2)
    with pytest.raises(ValueError, match=r'expected \(2, 5, 2\)'):
        landmark_list(np.zeros((2, 10)), 2)
