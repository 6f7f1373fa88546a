"""RandomFaceFlip: seeded per (seed, epoch, sample_idx), flips student and teacher views."""
import numpy as np
import pytest

from coupleface.datasets.transforms import RandomFaceFlip


def _sample(i, epoch=0):
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    return dict(img=img, teacher_img=img.copy(), sample_idx=i, epoch=epoch)


def test_flip_is_seeded_and_mirrors_both_views():
    t = RandomFaceFlip(prob=0.5)
    flags = [t(_sample(i))['flip'] for i in range(400)]
    assert flags == [t(_sample(i))['flip'] for i in range(400)]  # reproducible
    assert 160 < sum(flags) < 240  # about half (binomial, 400 draws)
    other_epoch = [t(_sample(i, epoch=1))['flip'] for i in range(400)]
    assert other_epoch != flags  # a new draw every epoch
    i = flags.index(True)
    out = t(_sample(i))
    img = _sample(i)['img']
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    np.testing.assert_array_equal(out['teacher_img'], img[:, ::-1])
    assert out['flip_direction'] == 'horizontal'
    j = flags.index(False)
    np.testing.assert_array_equal(t(_sample(j))['img'], _sample(j)['img'])


def test_probability_bounds():
    assert not any(RandomFaceFlip(prob=0.0)(_sample(i))['flip'] for i in range(50))
    assert all(RandomFaceFlip(prob=1.0)(_sample(i))['flip'] for i in range(50))
    with pytest.raises(ValueError, match='prob'):
        RandomFaceFlip(prob=1.5)


@pytest.mark.parametrize('shape', [(112, 112, 3), (7, 5, 3), (6, 4), (5, 3, 1), (4, 4, 4)])
def test_mirror_equals_numpy_reverse(shape):
    from coupleface.datasets.transforms.flip import mirror
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    out = mirror(img)
    np.testing.assert_array_equal(out, img[:, ::-1])
    assert out.shape == img.shape and out.flags.c_contiguous
    view = img[:, 1:]  # not contiguous: the NumPy fallback
    np.testing.assert_array_equal(mirror(view), view[:, ::-1])
