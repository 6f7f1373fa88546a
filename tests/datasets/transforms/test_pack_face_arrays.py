"""PackFaceArrays: keeps arrays and scalars, passes JPEG bytes on, refuses masks there."""
import numpy as np
import pytest

from coupleface.datasets.transforms import PackFaceArrays


def test_keeps_the_image_array_and_the_scalars():
    img = np.zeros((4, 4, 3), np.uint8)
    out = PackFaceArrays()(dict(img=img, teacher_img=img + 1, gt_label=np.int64(2),
                                sample_idx=5, flip=True, rec_key=9))
    assert out['img'] is img and out['teacher_img'][0, 0, 0] == 1
    assert (out['gt_label'], out['sample_idx'], out['flip'], out['masked']) == (2, 5, True, False)
    assert 'rec_key' not in out


def test_jpeg_bytes_pass_through_with_the_size():
    out = PackFaceArrays(size=56)(dict(img_bytes=b'\xff\xd8', sample_idx=1, gt_label=0))
    assert out['img_bytes'] == b'\xff\xd8' and out['img_size'] == 56 and 'img' not in out
    with pytest.raises(ValueError, match='CPU path'):
        PackFaceArrays()(dict(img_bytes=b'x', sample_idx=1, masked=True))
    with pytest.raises(KeyError, match='img_bytes'):
        PackFaceArrays()(dict(sample_idx=1))
    with pytest.raises(ValueError, match='size'):
        PackFaceArrays(size=4)


def test_the_epoch_travels_when_the_sample_carries_it():
    img = np.zeros((4, 4, 3), np.uint8)
    assert PackFaceArrays()(dict(img=img, sample_idx=1, epoch=np.int64(3)))['epoch'] == 3
    assert 'epoch' not in PackFaceArrays()(dict(img=img, sample_idx=1, epoch=None))
