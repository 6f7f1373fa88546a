"""Collate ``PackFaceArrays`` samples into one batch tensor (docs/architecture.md §2.1).

Used as ``train_dataloader.collate_fn=dict(type='face_batch_collate')``. The batch is what
the default path (``PackFaceInputs`` + ``pseudo_collate``) gives ``FaceDataPreprocessor``,
in fewer objects:

* ``inputs``: one uint8 ``B×3×H×W`` tensor in channels-last memory (the ``B×H×W×3``
  bytes of the images back to back, each image one copy; the default path: a list of
  ``B`` contiguous CHW tensors). ``FaceDataPreprocessor`` makes it contiguous on its
  device, after the host-to-device copy, so the model gets the default path's tensor and
  the NHWC→NCHW transpose costs the loader nothing;
* ``teacher_inputs``: the same for the clean teacher views, when the samples have them;
* ``data_samples``: one ``FaceBatchSamples`` (label, index, flip, masked as ``B``-long
  tensors) instead of ``B`` ``DataSample`` objects.

A DataLoader worker runs the collate, so it returns three tensors and a small structure
instead of pickling ``B`` sample objects; in a worker the batch tensors are allocated in
shared memory from the start (as torch's ``default_collate`` does), so the hand-over to the
main process copies nothing.

Samples with encoded ``img_bytes`` instead of ``img`` (``PackFaceArrays(size=...)`` without
``LoadFaceImage``) are decoded where ``decode`` says. ``'cpu'``: here, image by image, each
written into the batch tensor right after its decode, while it is still in the CPU cache
(after a whole batch of decodes the images have left it, and the copy runs at memory
speed: measured ~10 µs per 112 px image in a DataLoader against ~1.5 µs hot); the same
decode and resize as ``LoadFaceImage(size)``. ``'device'``: ``jpeg_bytes`` (every payload
back to back, uint8), ``jpeg_offsets`` (``B + 1`` int64, NumPy) and ``jpeg_size`` instead of
``inputs``, for ``FaceDataPreprocessor`` to decode on the model's device.

With ``flip_prob`` the collate draws the flips of the whole batch instead of a per-sample
``RandomFaceFlip(prob=flip_prob)``: the same decisions bit for bit (the first draw of each
sample's ``sample_rng(sample, 'flip')`` stream, computed in array passes over blocks of
indices and looked up per batch, ``coupleface/utils/epoch_draw_table.py``, instead of a
``SeedSequence`` + ``PCG64`` per sample), the same mirrored
images (student and teacher view) and the same ``flip`` flags. Only where no transform
between the flip and ``PackFaceArrays`` looks at the image (not before ``SyntheticMask``).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import get_worker_info

from coupleface.datasets.transforms.flip import mirror
from coupleface.datasets.transforms.loading import decode_face_image, fit_face_size
from coupleface.registry import FUNCTIONS
from coupleface.utils.epoch_draw_table import batch_decisions
from coupleface.utils.face_batch_samples import FaceBatchSamples


def _empty(shape: Tuple[int, ...]) -> torch.Tensor:
    """An uninitialised uint8 tensor; in a DataLoader worker, in shared memory already (as
    torch's ``default_collate`` does), so that sending the batch costs no second copy."""
    new_shared = getattr(torch.UntypedStorage, '_new_shared', None)  # what default_collate uses
    if get_worker_info() is None or new_shared is None:
        return torch.empty(shape, dtype=torch.uint8)
    storage = new_shared(int(np.prod(shape)))
    return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)


def _place(dst: np.ndarray, img: np.ndarray, i: int, what: str, flip: bool) -> None:
    """Write the ``H×W×C`` uint8 ``img`` (mirrored when ``flip``) into ``dst`` in place."""
    if img.ndim == 2:
        img = img[..., None]
    if img.shape != dst.shape or img.dtype != np.uint8:
        raise ValueError(f'face_batch_collate: {what} {i} is {img.dtype} {img.shape}, '
                         f'the first is uint8 {dst.shape}; every image of a batch must '
                         'have the same size (LoadFaceImage(size=...) or '
                         'PackFaceArrays(size=...))')
    if not flip:
        dst[...] = img
    elif 1 < img.shape[2] <= 4 and img.flags.c_contiguous:
        # mirrors straight into the batch (~1 µs at 112 px); cv2 returns a new array
        # instead of writing a destination it cannot take, so check which one came back
        if cv2.flip(img, 1, dst) is not dst:
            dst[...] = mirror(img)  # pragma: no cover (cv2 takes every uint8 HxWxC<=4)
    else:
        dst[...] = mirror(img)


def _stack_nhwc(images: Sequence[np.ndarray], what: str,
                flip: Optional[np.ndarray] = None) -> torch.Tensor:
    """Write ``H×W×C`` uint8 images (mirrored where ``flip``) into one ``B×C×H×W`` uint8
    tensor in channels-last memory (NHWC bytes): one copy per image, no plane split."""
    first = images[0]
    out = _empty((len(images), *(first.shape if first.ndim == 3 else (*first.shape, 1))))
    dst = out.numpy()
    for i, img in enumerate(images):
        _place(dst[i], img, i, what, flip is not None and bool(flip[i]))
    return out.permute(0, 3, 1, 2)


def _decode_nhwc(data_batch: Sequence[dict], flip: Optional[np.ndarray]) -> torch.Tensor:
    """Decode each sample's ``img_bytes`` as ``LoadFaceImage(size=img_size)`` would and
    write it (mirrored where ``flip``) into the batch while it is still in the cache."""
    size = data_batch[0].get('img_size')
    out = dst = None
    for i, sample in enumerate(data_batch):
        img = decode_face_image(sample['img_bytes'],
                                lambda: f"sample {sample.get('sample_idx', '?')}")
        img = fit_face_size(img, size)
        if out is None:
            out = _empty((len(data_batch), *img.shape))
            dst = out.numpy()
        _place(dst[i], img, i, 'image', flip is not None and bool(flip[i]))
    return out.permute(0, 3, 1, 2)


def _jpeg_batch(payloads: Sequence, size: Optional[int]) -> Dict[str, object]:
    lengths = np.fromiter((len(p) for p in payloads), dtype=np.int64, count=len(payloads))
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    buf = _empty((int(offsets[-1]),))
    dst = buf.numpy()
    for i, p in enumerate(payloads):
        dst[offsets[i]:offsets[i + 1]] = np.frombuffer(p, dtype=np.uint8)
    # the offsets stay a NumPy array: pickled inline by a worker, not as one more segment
    return dict(jpeg_bytes=buf, jpeg_offsets=offsets, jpeg_size=size)


def _batch_flips(data_batch: Sequence[dict], prob: float, salt: str) -> np.ndarray:
    """The ``RandomFaceFlip(prob, seed_salt=salt)`` decisions of every sample."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f'face_batch_collate: flip_prob must be in [0, 1], got {prob}')
    if any(s['flip'] for s in data_batch):
        raise ValueError('face_batch_collate: flip_prob is set but a sample is already '
                         'flipped; drop RandomFaceFlip from the pipeline (the collate draws '
                         'the same flips) or leave flip_prob out')
    return batch_decisions(data_batch, salt, prob)


@FUNCTIONS.register_module()
def face_batch_collate(data_batch: Sequence[dict], flip_prob: Optional[float] = None,
                       flip_salt: str = 'flip', decode: str = 'device') -> dict:
    """Batch ``PackFaceArrays`` samples: a uint8 ``B×C×H×W`` tensor (channels-last memory)
    and a ``FaceBatchSamples``.

    Args:
        data_batch: The samples, in sampler order.
        flip_prob: Draw the flips here, for the whole batch: the same flips, images and
            ``flip`` flags as ``RandomFaceFlip(prob=flip_prob, seed_salt=flip_salt)`` last
            in the pipeline (which then must not be there). ``None``: the samples'
            own ``flip`` flags, images as they come.
        flip_salt: The ``seed_salt`` of the ``RandomFaceFlip`` this replaces.
        decode: Where samples with encoded ``img_bytes`` (``PackFaceArrays(size=...)``
            without ``LoadFaceImage``) are decoded: ``'device'`` ships the payloads to
            ``FaceDataPreprocessor``; ``'cpu'`` decodes them here, as
            ``LoadFaceImage(size)`` would, each straight into the batch tensor (the
            fastest CPU path: the decoded image is copied while still in the cache).

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
        >>> # pipeline [dict(type='PackFaceArrays', size=112)]: decode in the collate
        >>> collate_fn = dict(type='face_batch_collate', flip_prob=0.5, decode='cpu')
    """
    if not data_batch:
        raise ValueError('face_batch_collate: empty batch')
    if decode not in ('device', 'cpu'):
        raise ValueError(f"face_batch_collate: decode must be 'device' or 'cpu', got {decode!r}")
    flip = None if flip_prob is None else _batch_flips(data_batch, flip_prob, flip_salt)
    n = len(data_batch)
    samples = FaceBatchSamples(
        gt_label=np.fromiter((s['gt_label'] for s in data_batch), np.int64, n),
        sample_idx=np.fromiter((s['sample_idx'] for s in data_batch), np.int64, n),
        flip=np.fromiter((s['flip'] for s in data_batch), bool, n) if flip is None else flip,
        masked=np.fromiter((s['masked'] for s in data_batch), bool, n))
    if 'img' in data_batch[0]:
        out = dict(inputs=_stack_nhwc([s['img'] for s in data_batch], 'image', flip))
    elif decode == 'cpu':
        # encoded samples are never mirrored yet: their flip flags (a RandomFaceFlip before
        # PackFaceArrays(size)) say what to mirror, as on the device decode path
        out = dict(inputs=_decode_nhwc(data_batch, samples.flip.numpy()))
    else:
        out = _jpeg_batch([s['img_bytes'] for s in data_batch], data_batch[0].get('img_size'))
    teachers = [s.get('teacher_img') for s in data_batch]
    if any(t is not None for t in teachers):
        if any(t is None for t in teachers):
            raise ValueError('face_batch_collate: some samples have a teacher view and some '
                             'not (SyntheticMask(keep_teacher_view=True) gives every sample '
                             'one)')
        out['teacher_inputs'] = _stack_nhwc(teachers, 'teacher image', flip)
    out['data_samples'] = samples
    return out
