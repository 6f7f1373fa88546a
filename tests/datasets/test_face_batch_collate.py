"""face_batch_collate + PackFaceArrays: the fast path gives the default path's batches.

Same records, same sampler order, same seed: the preprocessed ``inputs`` and
``teacher_inputs`` are equal bit for bit, and labels, sample indices and flip/masked flags
are the default path's (docs/architecture.md §2.1), also with the flips drawn for the whole
batch by the collate (``flip_prob``) instead of a per-sample ``RandomFaceFlip``.
"""
from functools import partial

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from torch.utils.data import DataLoader

from coupleface.benchmarks.recordio_data import make_synthetic
from coupleface.datasets import MXFaceDataset, face_batch_collate
from coupleface.datasets.samplers import PartnerSampler, ResumableSampler
from coupleface.datasets.transforms import PackFaceArrays, RandomFaceFlip
from coupleface.models.data_preprocessors import FaceDataPreprocessor
from coupleface.registry import FUNCTIONS
from coupleface.utils.face_batch_samples import FaceBatchSamples, batch_field
from coupleface.utils.seeding import set_augment_epoch, set_augment_seed

BATCH = 8


@pytest.fixture(scope='module')
def rec_prefix(tmp_path_factory):
    prefix = tmp_path_factory.mktemp('fast') / 'train'
    make_synthetic(str(prefix), 48, ids=6)
    return prefix


def _pipeline(pack, masked, size=56, flip=True):
    steps = [dict(type='LoadFaceImage', size=size)]
    if flip:
        steps.append(dict(type='RandomFaceFlip', prob=0.5))
    if masked:
        steps.append(dict(type='SyntheticMask', p=0.5, keep_teacher_view=True))
    return steps + [dict(type=pack)]


def _dataset(prefix, pipeline):
    with DefaultScope.overwrite_default_scope('coupleface'):
        return MXFaceDataset(data_root=str(prefix.parent), rec_file='train.rec',
                             idx_file='train.idx', property_file=None, pipeline=pipeline)


def _sampler(kind, dataset):
    if kind == 'resumable':
        return ResumableSampler(dataset, shuffle=True, seed=3)
    sampler = PartnerSampler(dataset, batch_size=BATCH, num_partners=2, seed=3)
    sampler.set_neighbours(np.array([[(c + 1) % 6, (c + 2) % 6] for c in range(6)]))
    return sampler


def _batches(prefix, pack, masked, kind, workers=0, batch_flip=False, cpu_decode=False):
    pipeline = _pipeline(pack, masked, flip=not batch_flip)
    if cpu_decode:  # the collate decodes: no LoadFaceImage, the size goes to the packer
        pipeline = [dict(type=pack, size=56)]
    dataset = _dataset(prefix, pipeline)
    collate = face_batch_collate if pack == 'PackFaceArrays' else pseudo_collate
    if batch_flip:  # what mmengine's Runner builds of dict(type=..., flip_prob=0.5)
        collate = partial(face_batch_collate, flip_prob=0.5,
                          decode='cpu' if cpu_decode else 'device')
    loader = DataLoader(dataset, batch_size=BATCH, sampler=_sampler(kind, dataset),
                        num_workers=workers, collate_fn=collate,
                        multiprocessing_context='fork' if workers else None)
    pre = FaceDataPreprocessor()
    return [pre(batch, training=True) for batch in loader]


def _assert_same_batches(old, new, masked):
    assert len(old) == len(new) >= 6
    n = BATCH * len(new)
    flips = masked_any = 0
    for a, b in zip(old, new):
        assert b['inputs'].dtype == torch.float32 and b['inputs'].is_contiguous()
        assert torch.equal(a['inputs'], b['inputs'])
        assert ('teacher_inputs' in a) == ('teacher_inputs' in b) == masked
        if masked:
            assert torch.equal(a['teacher_inputs'], b['teacher_inputs'])
        assert isinstance(b['data_samples'], FaceBatchSamples)
        for name in ('gt_label', 'sample_idx', 'flip', 'masked'):
            assert torch.equal(batch_field(a['data_samples'], name),
                               batch_field(b['data_samples'], name)), name
        flips += int(b['data_samples'].flip.sum())
        masked_any += int(b['data_samples'].masked.sum())
    assert 0 < flips < n and (0 < masked_any < n) == masked


@pytest.mark.parametrize('kind', ['resumable', 'partner'])
@pytest.mark.parametrize('masked', [False, True])
def test_fast_batches_equal_default_batches(rec_prefix, kind, masked):
    old = _batches(rec_prefix, 'PackFaceInputs', masked, kind)
    new = _batches(rec_prefix, 'PackFaceArrays', masked, kind, workers=1 if masked else 0)
    _assert_same_batches(old, new, masked)


@pytest.mark.parametrize('kind', ['resumable', 'partner'])
def test_batch_flip_in_a_worker_equals_default_batches(rec_prefix, kind):
    # the seed and epoch reach the forked worker through the seeding module, as the
    # RandomFaceFlip of the default path reads them
    set_augment_seed(11)
    set_augment_epoch(2)
    try:
        old = _batches(rec_prefix, 'PackFaceInputs', False, kind)
        new = _batches(rec_prefix, 'PackFaceArrays', False, kind, workers=1, batch_flip=True)
    finally:
        set_augment_seed(None)
        set_augment_epoch(None)
    _assert_same_batches(old, new, False)


def _sample(i, teacher=True, **extra):
    rng = np.random.default_rng(i)
    img = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    out = dict(img=img, gt_label=i % 3, sample_idx=i, **extra)
    if teacher:
        out['teacher_img'] = img[::-1].copy()
    return out


@pytest.mark.parametrize('salt', ['flip', 'other'])
def test_batch_flip_mirrors_both_views_like_random_face_flip(salt):
    samples = [_sample(i, epoch=i % 2 if i > 8 else None) for i in range(24)]
    flip, pack = RandomFaceFlip(prob=0.5, seed_salt=salt), PackFaceArrays()
    old = face_batch_collate([pack(flip(dict(s))) for s in samples])
    new = face_batch_collate([pack(dict(s)) for s in samples], flip_prob=0.5, flip_salt=salt)
    assert torch.equal(old['inputs'], new['inputs'])
    assert torch.equal(old['teacher_inputs'], new['teacher_inputs'])
    assert torch.equal(old['data_samples'].flip, new['data_samples'].flip)
    assert 0 < int(new['data_samples'].flip.sum()) < len(samples)


def test_batch_flip_flags_for_device_decode_and_its_checks():
    payloads = [dict(img_bytes=b'\xff\xd8', img_size=56, gt_label=0, sample_idx=i, flip=False,
                     masked=False) for i in range(16)]
    expected = [RandomFaceFlip(prob=0.5)(dict(sample_idx=i))['flip'] for i in range(16)]
    batch = face_batch_collate(payloads, flip_prob=0.5)
    assert batch['data_samples'].flip.tolist() == expected
    assert face_batch_collate(payloads, flip_prob=1.0)['data_samples'].flip.all()
    with pytest.raises(ValueError, match='already flipped'):
        face_batch_collate([dict(payloads[0], flip=True)], flip_prob=0.5)
    with pytest.raises(ValueError, match='flip_prob'):
        face_batch_collate(payloads, flip_prob=1.5)


def test_registered_and_checks(rec_prefix):
    assert FUNCTIONS.get('face_batch_collate') is face_batch_collate
    img = np.zeros((4, 4, 3), np.uint8)
    sample = dict(img=img, gt_label=1, sample_idx=0, flip=False, masked=False)
    with pytest.raises(ValueError, match='same size'):
        face_batch_collate([sample, dict(sample, img=np.zeros((5, 4, 3), np.uint8))])
    with pytest.raises(ValueError, match='teacher view'):
        face_batch_collate([sample, dict(sample, teacher_img=img)])
    with pytest.raises(ValueError, match='empty'):
        face_batch_collate([])


def test_jpeg_batch_is_one_buffer_with_offsets():
    payloads = [b'\xff\xd8abc', b'\xff\xd8de']
    batch = face_batch_collate([
        dict(img_bytes=p, img_size=56, gt_label=i, sample_idx=i, flip=bool(i), masked=False)
        for i, p in enumerate(payloads)])
    assert batch['jpeg_bytes'].tolist() == list(b''.join(payloads))
    assert batch['jpeg_offsets'].tolist() == [0, 5, 9] and batch['jpeg_size'] == 56
    assert batch['data_samples'].flip.tolist() == [False, True] and 'inputs' not in batch


def test_inputs_are_the_images_bytes_in_channels_last_memory():
    samples = [_sample(i, teacher=False) for i in range(5)]
    samples[3]['img'] = np.asfortranarray(samples[3]['img'])  # not C-contiguous: NumPy mirror
    grey = [dict(s, img=s['img'][..., 0].copy()) for s in samples]
    pack = PackFaceArrays()
    for batch_samples, channels in ((samples, 3), (grey, 1)):
        batch = face_batch_collate([pack(dict(s)) for s in batch_samples], flip_prob=1.0)
        x = batch['inputs']
        assert x.shape == (5, channels, 6, 5) and x.dtype == torch.uint8
        assert x.is_contiguous(memory_format=torch.channels_last)
        assert x.is_contiguous() == (channels == 1)  # one channel: both layouts coincide
        mirrored = np.stack([s['img'].reshape(6, 5, channels)[:, ::-1] for s in batch_samples])
        assert torch.equal(x.permute(0, 2, 3, 1), torch.from_numpy(mirrored))
    unflipped = face_batch_collate([pack(dict(s)) for s in samples], flip_prob=0.0)['inputs']
    assert torch.equal(unflipped.permute(0, 2, 3, 1),
                       torch.from_numpy(np.stack([s['img'] for s in samples])))


def test_preprocessor_makes_channels_last_batches_contiguous_with_the_same_values():
    rng = np.random.default_rng(0)
    nchw = torch.from_numpy(rng.integers(0, 256, (4, 3, 6, 5), dtype=np.uint8))
    nhwc = nchw.contiguous(memory_format=torch.channels_last)
    for bgr_to_rgb in (True, False):  # without the swap nothing else would reorder memory
        pre = FaceDataPreprocessor(bgr_to_rgb=bgr_to_rgb)
        a = pre(dict(inputs=nchw, teacher_inputs=nchw.flip(0).contiguous()))
        b = pre(dict(inputs=nhwc, teacher_inputs=nhwc.flip(0).contiguous(
            memory_format=torch.channels_last)))
        for key in ('inputs', 'teacher_inputs'):
            assert b[key].is_contiguous() and b[key].stride() == a[key].stride()
            assert torch.equal(a[key], b[key])
        channel = 2 if bgr_to_rgb else 0
        assert torch.equal(a['inputs'][0, 0], (nchw[0, channel].float() - 127.5) / 127.5)


@pytest.mark.parametrize('workers', [0, 1])
def test_decode_in_the_collate_equals_default_batches(rec_prefix, workers):
    # 112 px records brought to 56 px as LoadFaceImage(size=56) does, flips for the batch
    old = _batches(rec_prefix, 'PackFaceInputs', False, 'resumable')
    new = _batches(rec_prefix, 'PackFaceArrays', False, 'resumable', workers=workers,
                   batch_flip=True, cpu_decode=True)
    _assert_same_batches(old, new, False)


def test_decode_in_the_collate_checks_its_input():
    import cv2
    img = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    good = cv2.imencode('.png', img)[1].tobytes()
    sample = dict(img_bytes=good, img_size=None, gt_label=0, sample_idx=0, flip=False,
                  masked=False)
    batch = face_batch_collate([sample, dict(sample, sample_idx=1)], decode='cpu')
    assert torch.equal(batch['inputs'][1].permute(1, 2, 0), torch.from_numpy(img))
    with pytest.raises(ValueError, match='sample 7: image data'):
        face_batch_collate([sample, dict(sample, img_bytes=b'junk', sample_idx=7)],
                           decode='cpu')
    small = cv2.imencode('.png', img[:4, :4])[1].tobytes()
    with pytest.raises(ValueError, match='same size'):
        face_batch_collate([sample, dict(sample, img_bytes=small)], decode='cpu')
    with pytest.raises(ValueError, match="decode must be 'device' or 'cpu'"):
        face_batch_collate([sample], decode='gpu')


def _collate_reporting_shared(data_batch):
    batch = face_batch_collate(data_batch, flip_prob=0.5)
    return batch, batch['inputs'].is_shared()  # evaluated where the collate runs


def test_a_worker_builds_the_batch_in_shared_memory():
    samples = [PackFaceArrays()(_sample(i, teacher=False)) for i in range(8)]
    for workers, shared in ((0, False), (1, True)):
        loader = DataLoader(samples, batch_size=4, num_workers=workers,
                            collate_fn=_collate_reporting_shared,
                            multiprocessing_context='fork' if workers else None)
        got = list(loader)
        assert [s for _, s in got] == [shared, shared]
        assert torch.equal(got[0][0]['inputs'], face_batch_collate(samples[:4],
                                                                   flip_prob=0.5)['inputs'])


def test_decode_in_the_collate_mirrors_what_a_pipeline_flip_flagged(rec_prefix):
    # RandomFaceFlip before PackFaceArrays(size) only flags encoded samples (nothing to
    # mirror yet); the collate mirrors them when it decodes, as the device decoder does
    flagged = _dataset(rec_prefix, [dict(type='RandomFaceFlip', prob=0.5),
                                    dict(type='PackFaceArrays', size=56)])
    plain = _dataset(rec_prefix, [dict(type='PackFaceArrays', size=56)])
    idx = list(range(16))
    a = face_batch_collate([flagged[i] for i in idx], decode='cpu')
    b = face_batch_collate([plain[i] for i in idx], flip_prob=0.5, decode='cpu')
    assert torch.equal(a['data_samples'].flip, b['data_samples'].flip)
    assert 0 < int(a['data_samples'].flip.sum()) < 16
    assert torch.equal(a['inputs'], b['inputs'])
