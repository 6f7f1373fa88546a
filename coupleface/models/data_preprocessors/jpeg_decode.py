"""Decode a batch of JPEG payloads where the model runs (docs/architecture.md §2.1).

The device-decode data path (``PackFaceArrays`` without ``LoadFaceImage`` +
``face_batch_collate``) ships the encoded bytes of a batch as one uint8 buffer with
offsets; ``FaceDataPreprocessor`` calls :func:`decode_jpeg_batch` to turn them into the
uint8 RGB batch the CPU path would have given: ``torchvision.io.decode_jpeg`` on the model's
device (nvJPEG on CUDA, libjpeg-turbo on the CPU), an exact integer-factor area
downscale to the training size, and the per-sample flips.

Exactness against the CPU path (``cv2.imdecode`` + ``cv2.resize(INTER_AREA)`` + flip):
on the CPU, torchvision and OpenCV both use libjpeg-turbo and agree bit for bit (tested);
the downscale is OpenCV's for integer factors (tested for 2 to 5);
nvJPEG's IDCT and chroma upsampling differ from libjpeg-turbo's by a few levels per pixel
(tests/models/data_preprocessors/test_jpeg_decode.py bounds it when CUDA is present).
Synthetic masks are drawn on decoded CPU images, so masked pipelines keep the CPU path.
"""
from __future__ import annotations

from typing import List, Optional, Union

import numpy as np
import torch

__all__ = ['split_payloads', 'area_downscale', 'decode_jpeg_batch']


def split_payloads(jpeg_bytes: torch.Tensor,
                   offsets: Union[torch.Tensor, np.ndarray]) -> List[torch.Tensor]:
    """The ``B`` payloads of a collated buffer, as 1-D uint8 CPU tensors (views)."""
    lengths = (offsets[1:] - offsets[:-1]).tolist()
    start = int(offsets[0])
    return list(torch.split(jpeg_bytes.cpu()[start:start + sum(lengths)], lengths))


def area_downscale(images: torch.Tensor, size: int) -> torch.Tensor:
    """OpenCV's ``INTER_AREA`` shrink of uint8 ``B×C×H×W`` by an integer factor, exactly.

    Args:
        images: uint8 square images.
        size: Target side; ``H`` must be ``k · size`` for an integer ``k >= 1``.

    Returns:
        Tensor: uint8 ``B×C×size×size``, what OpenCV computes for uint8: ``(sum + 2) >> 2``
        of each 2×2 block for ``k = 2``, else the block sum times ``float32(1/k²)`` rounded
        half to even (tested for k = 2, 3, 4 and 5).

    Raises:
        ValueError: the images are not square or the factor is not an integer.
    """
    h, w = images.shape[-2:]
    if h != w or h % size:
        raise ValueError(f'device decode: stored images of {h}x{w} px cannot be brought to '
                         f'{size} px exactly (needs a square image and an integer factor); '
                         'decode on the CPU (LoadFaceImage) instead')
    k = h // size
    if k == 1:
        return images
    b, c = images.shape[:2]
    sums = images.reshape(b, c, size, k, size, k).sum(dim=(3, 5), dtype=torch.int32)
    if k == 2:  # OpenCV's fast 2x path: (sum + 2) >> 2
        return ((sums + 2) // 4).to(torch.uint8)
    # other integer factors: sum * float(1 / k²), rounded half to even (cvRound)
    scale = torch.tensor(1.0 / (k * k), dtype=torch.float32)
    return torch.round(sums.to(torch.float32) * scale).clamp(0, 255).to(torch.uint8)


def decode_jpeg_batch(payloads: List[torch.Tensor], device: torch.device,
                      size: Optional[int] = None,
                      flip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Decode JPEG payloads to a uint8 RGB ``B×3×H×W`` batch on ``device``.

    Args:
        payloads: 1-D uint8 CPU tensors, one encoded image each.
        device: Where to decode (``cuda``: nvJPEG, batched; ``cpu``: libjpeg-turbo).
        size: Bring the images to ``size × size`` (:func:`area_downscale`); None keeps them.
        flip: ``B`` bools: mirror these images left-right (after the resize, as the CPU
            pipeline does).

    Returns:
        Tensor: uint8 RGB images on ``device``.

    Raises:
        ValueError: images of different sizes in one batch.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    device = torch.device(device)
    decoded = decode_jpeg(payloads, mode=ImageReadMode.RGB, device=device)
    shapes = {tuple(img.shape) for img in decoded}
    if len(shapes) != 1:
        raise ValueError(f'device decode: a batch holds images of several sizes {shapes}')
    images = torch.stack(decoded)
    if size is not None:
        images = area_downscale(images, size)
    if flip is not None and bool(flip.any()):
        rows = flip.to(device=images.device, dtype=torch.bool)
        images[rows] = images[rows].flip(-1)
    return images
