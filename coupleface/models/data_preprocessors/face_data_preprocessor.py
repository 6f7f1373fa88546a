"""Turn packed uint8 BGR faces into normalised RGB float batches.

Same maths as insightface (``(x - 127.5) / 127.5`` on RGB), so insightface
checkpoints give the embeddings they were trained to give. MMEngine's
``ImgDataPreprocessor`` does the stacking, channel swap and normalisation; we add
the teacher view (``teacher_inputs``) of the distillation data flow.

Inputs come as a list of ``C×H×W`` uint8 tensors (``PackFaceInputs`` + ``pseudo_collate``),
as one uint8 ``B×C×H×W`` tensor in channels-last memory (``face_batch_collate``; copied to
the device as it is and made contiguous there: same result, bit for bit), or as
JPEG payloads (``jpeg_bytes``/``jpeg_offsets``/``jpeg_size`` from ``face_batch_collate``),
decoded, resized and flipped on this preprocessor's device first (``jpeg_decode.py``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmengine.model import ImgDataPreprocessor

from coupleface.registry import MODELS
from coupleface.utils.face_batch_samples import batch_field

from .jpeg_decode import decode_jpeg_batch, split_payloads


@MODELS.register_module()
class FaceDataPreprocessor(ImgDataPreprocessor):
    """BGR uint8 → RGB float, ``(x - mean) / std``, stacked ``N×3×H×W``.

    Args:
        mean: Per-channel mean in the output (RGB) order.
        std: Per-channel std.
        bgr_to_rgb: Swap BGR (OpenCV) to RGB.
        non_blocking: Non-blocking host-to-device copies.

    Examples:
        >>> data_preprocessor = dict(type='FaceDataPreprocessor')
    """

    def __init__(self, mean: Sequence[float] = (127.5, 127.5, 127.5),
                 std: Sequence[float] = (127.5, 127.5, 127.5),
                 bgr_to_rgb: bool = True, non_blocking: bool = False) -> None:
        super().__init__(mean=mean, std=std, bgr_to_rgb=bgr_to_rgb,
                         non_blocking=non_blocking)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Normalise ``inputs`` and, when present, ``teacher_inputs`` (decode first when
        the batch holds JPEG payloads)."""
        if 'jpeg_bytes' in data:
            data = self.decode_jpeg(data)
        data = self._nchw_on_device(data)
        teacher: Optional[list] = data.get('teacher_inputs')
        out = super().forward({k: v for k, v in data.items() if k != 'teacher_inputs'},
                              training)
        if teacher is not None:
            out['teacher_inputs'] = super().forward({'inputs': teacher}, training)['inputs']
        return out

    def _nchw_on_device(self, data: dict) -> dict:
        """Copy channels-last uint8 batches (``face_batch_collate``) to the device as they
        are and make them contiguous NCHW there: the transpose runs on the device, on
        uint8, and the model gets the layout of the default path."""
        out = None
        for key in ('inputs', 'teacher_inputs'):
            value = data.get(key)
            if isinstance(value, torch.Tensor) and not value.is_contiguous():
                out = dict(data) if out is None else out
                out[key] = value.to(self.device, non_blocking=self._non_blocking).contiguous()
        return data if out is None else out

    def decode_jpeg(self, data: dict) -> dict:
        """Replace ``jpeg_bytes``/``jpeg_offsets``/``jpeg_size`` by decoded ``inputs``.

        Decoded on this preprocessor's device, brought to ``jpeg_size`` and flipped where
        the data samples' ``flip`` says, then put in BGR order so that the usual channel
        swap and normalisation follow.
        """
        data = dict(data)
        payloads = split_payloads(data.pop('jpeg_bytes'), data.pop('jpeg_offsets'))
        size = data.pop('jpeg_size', None)
        samples = data.get('data_samples')
        flip = None if samples is None else batch_field(samples, 'flip')
        rgb = decode_jpeg_batch(payloads, self.device, size=size, flip=flip)
        data['inputs'] = rgb.flip(1)  # BGR, what the CPU decoder gives
        return data
