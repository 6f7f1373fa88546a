"""Device JPEG decode: on the CPU it equals the CPU pipeline bit for bit; on CUDA (nvJPEG)
within a few levels (skipped without CUDA)."""
import cv2
import numpy as np
import pytest
import torch

from coupleface.datasets import face_batch_collate
from coupleface.datasets.transforms import LoadFaceImage, PackFaceArrays, RandomFaceFlip
from coupleface.models.data_preprocessors import FaceDataPreprocessor
from coupleface.models.data_preprocessors.jpeg_decode import area_downscale

pytest.importorskip('torchvision')


def _payloads(n=6, side=112):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        img = cv2.GaussianBlur(rng.normal(128, 60, (side, side, 3)).astype(np.float32),
                               (0, 0), 1.6)
        img = np.clip(img * 2 - 128, 0, 255).astype(np.uint8)
        out.append(cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
    return out


def _batches(size):
    payloads = _payloads()
    cpu, dev = [], []
    for i, p in enumerate(payloads):
        base = dict(img_bytes=p, gt_label=i, sample_idx=i)
        cpu.append(PackFaceArrays()(RandomFaceFlip()(LoadFaceImage(size)(dict(base)))))
        dev.append(PackFaceArrays(size=size)(RandomFaceFlip()(dict(base))))
    return face_batch_collate(cpu), face_batch_collate(dev)


@pytest.mark.parametrize('size', [112, 56, 28])
def test_cpu_decode_equals_the_cpu_pipeline(size):
    cpu, dev = _batches(size)
    assert 0 < int(dev['data_samples'].flip.sum()) < 6
    pre = FaceDataPreprocessor()
    a, b = pre(cpu, training=True), pre(dev, training=True)
    assert torch.equal(a['inputs'], b['inputs'])
    assert torch.equal(a['data_samples'].flip, b['data_samples'].flip)


@pytest.mark.parametrize('side,size', [(112, 56), (111, 37), (112, 28), (120, 24)])
def test_area_downscale_is_opencvs(side, size):
    x = torch.randint(0, 256, (1, 3, side, side), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(side + size))
    ref = cv2.resize(x[0].permute(1, 2, 0).numpy(), (size, size), interpolation=cv2.INTER_AREA)
    assert np.array_equal(area_downscale(x, size)[0].permute(1, 2, 0).numpy(), ref)


def test_area_downscale_needs_an_integer_factor():
    x = torch.zeros((1, 3, 112, 112), dtype=torch.uint8)
    with pytest.raises(ValueError, match='integer factor'):
        area_downscale(x, 37)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA (nvJPEG)')
def test_cuda_decode_is_close_to_the_cpu_pipeline():
    cpu, dev = _batches(112)
    a = FaceDataPreprocessor()(cpu, training=True)['inputs']
    b = FaceDataPreprocessor().cuda()(dev, training=True)['inputs'].cpu()
    levels = ((a - b).abs() * 127.5).round()
    # nvJPEG's IDCT / chroma upsampling differ from libjpeg-turbo's by a few levels
    assert float(levels.max()) <= 8 and float(levels.mean()) < 1.0
