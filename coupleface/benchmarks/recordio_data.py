"""The RecordIO data path of the ``loader`` benchmarks: synthetic records, the dataset with
its pipeline, a raw-decode baseline and a throughput probe.

Shared by ``tools/analysis_tools/benchmark_dataloader.py`` and the ``loader`` section of
``tools/analysis_tools/benchmark.py``.
"""
from __future__ import annotations

import os.path as osp
import time
from typing import List


def make_synthetic(prefix: str, num: int, ids: int = 0, seed: int = 0, side: int = 112) -> dict:
    """``num`` textured JPEGs (~6 KB each at 112 px, like aligned face crops) as a .rec set."""
    import cv2
    import numpy as np

    from coupleface.datasets.mx_record_writer import write_insightface_rec

    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(64):  # distinct images, reused: encoding is not what we measure
        img = cv2.GaussianBlur(rng.normal(128, 60, (side, side, 3)).astype(np.float32),
                               (0, 0), 1.6)
        img = np.clip(img * 2 - 128, 0, 255).astype(np.uint8)
        pool.append(cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
    ids = ids or max(1, num // 20)
    per = -(-num // ids)
    samples = ((i // per, pool[i % len(pool)]) for i in range(num))
    return write_insightface_rec(prefix, samples)


def make_loader(dataset, workers: int, batch_size: int, seed: int = 0, collate=None):
    """A shuffled torch ``DataLoader`` (fork workers) with ``collate`` (default mmengine's
    ``pseudo_collate``; the fast path's is ``face_batch_collate``)."""
    import torch
    from mmengine.dataset import pseudo_collate

    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, generator=g, num_workers=workers,
        collate_fn=collate or pseudo_collate,
        multiprocessing_context='fork' if workers else None)


def images_per_s(loader, num_samples: int, consume=None) -> float:
    """Throughput after the first batch (worker start-up excluded); ``consume(batch)``, when
    given, runs on every batch inside the timing (e.g. :func:`device_decoder`)."""
    it = iter(loader)
    first = next(it)
    if consume is not None:
        consume(first)  # warm-up (CUDA context, decoder handles)
    seen, t0 = 0, time.perf_counter()
    for batch in it:
        if consume is not None:
            consume(batch)
        seen += _batch_len(batch)
        if seen >= num_samples:
            break
    return seen / (time.perf_counter() - t0)


def _batch_len(batch) -> int:
    if not isinstance(batch, dict):
        return len(batch)
    if 'data_samples' in batch:  # a JPEG batch's first value is its byte buffer
        return len(batch['data_samples'])
    return len(next(iter(batch.values())))


def device_decoder(device: str):
    """A consumer for :func:`images_per_s`: decode a ``decode='device'`` batch's JPEG
    payloads with ``FaceDataPreprocessor.decode_jpeg`` on ``device`` (nvJPEG on CUDA,
    libjpeg-turbo on the CPU) and wait for it."""
    import torch

    from coupleface.models.data_preprocessors import FaceDataPreprocessor

    pre = FaceDataPreprocessor().to(device)

    def consume(batch: dict) -> None:
        pre.decode_jpeg(batch)
        if torch.device(device).type == 'cuda':
            torch.cuda.synchronize(device)
    return consume


class RawDecode:
    """In-memory payloads, ``cv2.imdecode`` only: the floor any loader pays."""

    def __init__(self, payloads: List[bytes]) -> None:
        self.payloads = payloads

    def __len__(self) -> int:
        return len(self.payloads)

    def __getitem__(self, i: int):
        import cv2
        import numpy as np
        return cv2.imdecode(np.frombuffer(self.payloads[i], np.uint8), cv2.IMREAD_COLOR)


def build_dataset(prefix: str, full_pipeline: bool = True):
    """``MXFaceDataset`` of ``prefix``.rec/.idx with ``LoadFaceImage(112)`` (+ ``RandomFlip``
    and ``PackFaceInputs`` when ``full_pipeline``)."""
    from mmcv.transforms import RandomFlip

    from coupleface.datasets.mx_face_dataset import MXFaceDataset
    from coupleface.datasets.transforms import LoadFaceImage, PackFaceInputs

    pipeline = [LoadFaceImage(size=112)]
    if full_pipeline:
        pipeline += [RandomFlip(prob=0.5, direction='horizontal'), PackFaceInputs()]
    return MXFaceDataset(data_root=osp.dirname(osp.abspath(prefix)),
                         rec_file=osp.basename(prefix) + '.rec',
                         idx_file=osp.basename(prefix) + '.idx',
                         property_file=None, pipeline=pipeline)


def build_fast_dataset(prefix: str, decode_in_collate: bool = False):
    """The fast training path of ``prefix``: ``LoadFaceImage(112)`` + ``PackFaceArrays``, or
    with ``decode_in_collate`` only ``PackFaceArrays(size=112)`` (the collate decodes, see
    :func:`fast_collate`). Batch it with :func:`fast_collate`, which draws and applies the
    flips (the ``RandomFaceFlip(prob=0.5)`` of the default pipeline, bit for bit)."""
    from coupleface.datasets.mx_face_dataset import MXFaceDataset
    from coupleface.datasets.transforms import LoadFaceImage, PackFaceArrays

    pipeline = [PackFaceArrays(size=112)] if decode_in_collate \
        else [LoadFaceImage(size=112), PackFaceArrays()]
    return MXFaceDataset(data_root=osp.dirname(osp.abspath(prefix)),
                         rec_file=osp.basename(prefix) + '.rec',
                         idx_file=osp.basename(prefix) + '.idx', property_file=None,
                         pipeline=pipeline)


def fast_collate(decode: str = 'device'):
    """``face_batch_collate`` with ``flip_prob=0.5``, the fast path's collate function
    (``configs/_base_/pipelines/synthfaces_fast_56px.py``); ``decode='cpu'`` decodes the
    payloads of a :func:`build_fast_dataset` ``(decode_in_collate=True)`` set."""
    from functools import partial

    from coupleface.datasets.face_batch_collate import face_batch_collate
    return partial(face_batch_collate, flip_prob=0.5, decode=decode)
