"""ProtocolMask: masks exactly the images a protocol asks for, the same way every time."""
import cv2
import numpy as np
import pytest

from coupleface.datasets import VerificationBinDataset, write_bin
from coupleface.datasets.mask_protocols import MASK_PROTOCOLS, protocol_set_name
from coupleface.datasets.transforms import (
    PackFaceInputs,
    ProtocolMask,
    SyntheticMask,
    set_augment_epoch,
    set_augment_seed,
)
from coupleface.registry import TRANSFORMS

SIZE = 64
N_IMAGES = 8  # 4 pairs


@pytest.fixture(autouse=True)
def _reset_globals():
    set_augment_seed(None)
    set_augment_epoch(None)
    yield
    set_augment_seed(None)
    set_augment_epoch(None)


def _images(seed):
    """Distinct smooth images, PNG-encoded (lossless, so decoding is exact)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_IMAGES):
        small = rng.integers(40, 215, size=(8, 8, 3), dtype=np.uint8)
        img = cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        out.append(cv2.imencode('.png', img)[1].tobytes())
    return out


@pytest.fixture
def bin_root(tmp_path):
    write_bin(str(tmp_path / 'lfw.bin'), _images(0), [True, False, True, False])
    write_bin(str(tmp_path / 'cfp.bin'), _images(1), [False, True, False, True])
    return str(tmp_path)


def _dataset(root, mask_cfg=None, protocols=MASK_PROTOCOLS):
    pipeline = [TRANSFORMS.build(dict(type='LoadFaceImage', size=SIZE)),
                TRANSFORMS.build(dict(type='ProtocolMask', **(mask_cfg or {})))]
    return VerificationBinDataset(ann_files=['lfw.bin', 'cfp.bin'], data_root=root,
                                  protocols=protocols, pipeline=pipeline)


def _by_set(ds):
    """{set_name: [results of image 0..N-1]}."""
    out = {}
    for i in range(len(ds)):
        res = ds[i]
        out.setdefault(res['set_name'], []).append(res)
    return out


def test_masks_exactly_the_protocol_images(bin_root):
    sets = _by_set(_dataset(bin_root))
    assert sorted(sets) == sorted(protocol_set_name(b, p) for b in ('lfw', 'cfp')
                                  for p in MASK_PROTOCOLS)
    for base in ('lfw', 'cfp'):
        clean = sets[base]
        mu, mm = sets[f'{base}@masked_unmasked'], sets[f'{base}@masked_masked']
        for k in range(N_IMAGES):
            assert clean[k]['sample_idx'] == mu[k]['sample_idx'] == mm[k]['sample_idx'] == k
            assert not clean[k]['masked']
            # masked_unmasked: only the first image of each pair (even index)
            assert mu[k]['masked'] == (k % 2 == 0)
            changed_mu = np.abs(mu[k]['img'].astype(int) - clean[k]['img']).max(-1) > 0
            if k % 2 == 0:
                # a mask covers a real part of the face (nose, mouth, chin), not the eyes
                assert changed_mu.mean() > 0.2
                assert not changed_mu[:SIZE // 3].any()
            else:
                np.testing.assert_array_equal(mu[k]['img'], clean[k]['img'])
            # masked_masked: both images; the first image wears the same mask as in
            # masked_unmasked (the same image always gets the same mask)
            assert mm[k]['masked']
            changed_mm = np.abs(mm[k]['img'].astype(int) - clean[k]['img']).max(-1) > 0
            assert changed_mm.mean() > 0.2
            if k % 2 == 0:
                np.testing.assert_array_equal(mm[k]['img'], mu[k]['img'])
    # different images get their own draw: the masks of images 0 and 2 are not the same
    # change pattern (shape, colour, jitter differ)
    a = sets['lfw@masked_masked'][0]['img'].astype(int) - sets['lfw'][0]['img']
    b = sets['lfw@masked_masked'][2]['img'].astype(int) - sets['lfw'][2]['img']
    assert ((a != 0).any(-1) != (b != 0).any(-1)).any()


def test_deterministic_across_instances_seed_and_epoch(bin_root):
    first = _by_set(_dataset(bin_root))
    # the experiment's augmentation seed and epoch do not change protocol masks
    set_augment_seed(1234)
    set_augment_epoch(7)
    second = _by_set(_dataset(bin_root))
    for name, items in first.items():
        for a, b in zip(items, second[name]):
            np.testing.assert_array_equal(a['img'], b['img'])
    # ... the transform's own seed does
    other = _by_set(_dataset(bin_root, dict(seed=1)))
    assert any(not np.array_equal(a['img'], b['img'])
               for a, b in zip(first['lfw@masked_masked'], other['lfw@masked_masked']))
    for a, b in zip(first['lfw'], other['lfw']):
        np.testing.assert_array_equal(a['img'], b['img'])


def test_transform_on_plain_results_and_packing():
    img = np.full((SIZE, SIZE, 3), 128, np.uint8)
    t = TRANSFORMS.build(dict(type='ProtocolMask', shapes=('surgical',)))
    assert isinstance(t, ProtocolMask)
    # no protocol given = clean
    out = t(dict(img=img, sample_idx=0, set_name='lfw'))
    assert out['img'] is img and out['masked'] is False
    out = t(dict(img=img, sample_idx=3, set_name='lfw@masked_unmasked',
                 mask_protocol='masked_unmasked'))
    assert out['img'] is img and out['masked'] is False
    out = t(dict(img=img, sample_idx=2, set_name='lfw@masked_unmasked',
                 mask_protocol='masked_unmasked'))
    assert out['masked'] is True and (out['img'] != img).any()
    assert not (img != 128).any()  # the input array is not written
    # the base set name comes from set_name when base_set_name is absent: same mask
    same = t(dict(img=img, sample_idx=2, set_name='lfw@masked_masked',
                  mask_protocol='masked_masked', base_set_name='lfw'))
    np.testing.assert_array_equal(same['img'], out['img'])
    packed = PackFaceInputs()(out)
    assert packed['data_samples'].masked is True
    with pytest.raises(ValueError, match='unknown mask protocol'):
        t(dict(img=img, sample_idx=0, mask_protocol='masked'))
    with pytest.raises(KeyError, match='sample_idx'):
        t(dict(img=img, mask_protocol='masked_masked'))


def test_repr_names_the_options():
    t = ProtocolMask(seed=3, shapes=('n95',), colors=('white',), textures=False)
    options = SyntheticMask(shapes=('n95',), colors=('white',), textures=False).options_repr()
    assert repr(t) == f"ProtocolMask(seed=3, {options}, seed_salt='protocol_mask')"
    assert options == "shapes=('n95',), colors=('white',), textures=()"
