"""Collate ``PackFaceArrays`` samples into one batch tensor (docs/architecture.md §2.1).

Used as ``train_dataloader.collate_fn=dict(type='face_batch_collate')``. The batch is what
the default path (``PackFaceInputs`` + ``pseudo_collate``) gives ``FaceDataPreprocessor``,
in fewer objects:

* ``inputs``: one uint8 ``B×3×H×W`` tensor (contiguous NCHW), each image written once
  from its HWC array (the default path: a list of ``B`` CHW tensors);
* ``teacher_inputs``: the same for the clean teacher views, when the samples have them;
* ``data_samples``: one ``FaceBatchSamples`` (label, index, flip, masked as ``B``-long
  tensors) instead of ``B`` ``DataSample`` objects.

A DataLoader worker runs the collate, so it returns three tensors (shared memory) and a
small structure instead of pickling ``B`` sample objects.

Samples with encoded ``img_bytes`` instead of ``img`` (the device-decode pipeline) give
``jpeg_bytes`` (every payload back to back, uint8), ``jpeg_offsets`` (``B + 1`` int64) and
``jpeg_size`` instead of ``inputs``; ``FaceDataPreprocessor`` decodes them.

With ``flip_prob`` the collate draws the flips of the whole batch instead of a per-sample
``RandomFaceFlip(prob=flip_prob)``: the same decisions bit for bit (``batch_uniforms``, the
first draw of each sample's ``sample_rng(sample, 'flip')`` stream, computed for the batch in
one array pass instead of a ``SeedSequence`` + ``PCG64`` per sample), the same mirrored
images (student and teacher view) and the same ``flip`` flags. Only where no transform
between the flip and ``PackFaceArrays`` looks at the image (not before ``SyntheticMask``).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch

from coupleface.datasets.transforms.flip import mirror
from coupleface.registry import FUNCTIONS
from coupleface.utils.face_batch_samples import FaceBatchSamples
from coupleface.utils.seeding import batch_uniforms


def _stack_chw(images: Sequence[np.ndarray], what: str,
               flip: Optional[np.ndarray] = None) -> torch.Tensor:
    """Write ``H×W×C`` uint8 images (mirrored where ``flip``) into one contiguous
    ``B×C×H×W`` uint8 tensor."""
    first = images[0]
    shape = first.shape if first.ndim == 3 else (*first.shape, 1)
    out = torch.empty((len(images), shape[2], shape[0], shape[1]), dtype=torch.uint8)
    dst = out.numpy()
    scratch = None  # one mirror buffer for the batch: cv2.flip writes it, cv2.split reads it
    for i, img in enumerate(images):
        if flip is not None and flip[i]:
            if img.shape == first.shape and img.dtype == np.uint8 and img.flags.c_contiguous \
                    and img.ndim == 3 and 1 < shape[2] <= 4:
                scratch = np.empty_like(img) if scratch is None else scratch
                img = cv2.flip(img, 1, scratch)
            else:
                img = mirror(img)
        if img.ndim == 2:
            img = img[..., None]
        if img.shape != shape or img.dtype != np.uint8:
            raise ValueError(f'face_batch_collate: {what} {i} is {img.dtype} {img.shape}, '
                             f'the first is uint8 {shape}; every image of a batch must '
                             'have the same size (LoadFaceImage(size=...))')
        if img.flags.c_contiguous and shape[2] > 1:
            # cv2.split writes the planes into dst[i] in place: ~4x NumPy's strided copy
            planes = cv2.split(img, list(dst[i]))
            if planes[0].ctypes.data != dst[i, 0].ctypes.data:  # cv2 allocated instead
                dst[i] = img.transpose(2, 0, 1)
        else:
            dst[i] = img.transpose(2, 0, 1)
    return out


def _jpeg_batch(payloads: Sequence, size: Optional[int]) -> Dict[str, object]:
    lengths = np.fromiter((len(p) for p in payloads), dtype=np.int64, count=len(payloads))
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    buf = torch.empty(int(offsets[-1]), dtype=torch.uint8)
    dst = buf.numpy()
    for i, p in enumerate(payloads):
        dst[offsets[i]:offsets[i + 1]] = np.frombuffer(p, dtype=np.uint8)
    return dict(jpeg_bytes=buf, jpeg_offsets=torch.from_numpy(offsets), jpeg_size=size)


def _batch_flips(data_batch: Sequence[dict], prob: float, salt: str) -> np.ndarray:
    """The ``RandomFaceFlip(prob, seed_salt=salt)`` decisions of every sample."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'face_batch_collate: flip_prob must be in [0, 1], got {prob}')
    if any(s['flip'] for s in data_batch):
        raise ValueError('face_batch_collate: flip_prob is set but a sample is already '
                         'flipped; drop RandomFaceFlip from the pipeline (the collate draws '
                         'the same flips) or leave flip_prob out')
    return batch_uniforms(data_batch, salt) < prob


@FUNCTIONS.register_module()
def face_batch_collate(data_batch: Sequence[dict], flip_prob: Optional[float] = None,
                       flip_salt: str = 'flip') -> dict:
    """Batch ``PackFaceArrays`` samples: a uint8 NCHW tensor and a ``FaceBatchSamples``.

    Args:
        data_batch: The samples, in sampler order.
        flip_prob: Draw the flips here, for the whole batch: the same flips, images and
            ``flip`` flags as ``RandomFaceFlip(prob=flip_prob, seed_salt=flip_salt)`` last
            in the pipeline (which then must not be there). ``None``: the samples'
            own ``flip`` flags, images as they come.
        flip_salt: The ``seed_salt`` of the ``RandomFaceFlip`` this replaces.

    Returns:
        dict: ``inputs`` (or ``jpeg_bytes``/``jpeg_offsets``/``jpeg_size``),
        ``teacher_inputs`` when the samples carry ``teacher_img``, and ``data_samples``.

    Raises:
        ValueError: images of different sizes, a teacher view on only some samples, or
            ``flip_prob`` with samples already flipped.

    Examples:
        >>> train_dataloader = dict(collate_fn=dict(type='face_batch_collate'), ...)
        >>> train_dataloader = dict(
        ...     collate_fn=dict(type='face_batch_collate', flip_prob=0.5), ...)
    """
    if not data_batch:
        raise ValueError('face_batch_collate: empty batch')
    flip = None if flip_prob is None else _batch_flips(data_batch, flip_prob, flip_salt)
    samples = FaceBatchSamples(
        gt_label=[s['gt_label'] for s in data_batch],
        sample_idx=[s['sample_idx'] for s in data_batch],
        flip=[s['flip'] for s in data_batch] if flip is None else flip,
        masked=[s['masked'] for s in data_batch])
    if 'img' not in data_batch[0]:
        out = _jpeg_batch([s['img_bytes'] for s in data_batch], data_batch[0].get('img_size'))
    else:
        out = dict(inputs=_stack_chw([s['img'] for s in data_batch], 'image', flip))
    teachers = [s.get('teacher_img') for s in data_batch]
    if any(t is not None for t in teachers):
        if any(t is None for t in teachers):
            raise ValueError('face_batch_collate: some samples have a teacher view and some '
                             'not (SyntheticMask(keep_teacher_view=True) gives every sample '
                             'one)')
        out['teacher_inputs'] = _stack_chw(teachers, 'teacher image', flip)
    out['data_samples'] = samples
    return out
