"""Mixed precision: the losses and heads compute in fp32 whatever the AMP setting.

Margin maths (``acos`` near ±1), softmax statistics and distillation distances lose too
much in fp16/bf16, so every loss and head runs its maths inside :func:`autocast_off` on
:func:`upcast` tensors: half and bfloat16 inputs become fp32, fp64 stays fp64 (gradient
checks), and the gradient still flows back to the half-precision input.
"""
from __future__ import annotations

import contextlib
from typing import Union

import torch
from torch import Tensor

__all__ = ['autocast_off', 'upcast']


def autocast_off(device: Union[torch.device, str]) -> contextlib.AbstractContextManager:
    """A context in which autocast is disabled on ``device``'s type.

    Args:
        device: The device (or device type, e.g. ``'cuda'``) the computation runs on.

    Returns:
        ``torch.autocast(device_type, enabled=False)``, or a no-op context where the
        device type has no autocast.
    """
    device_type = torch.device(device).type
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def upcast(x: Tensor) -> Tensor:
    """Cast half/bfloat16 (and integer) tensors to fp32; keep fp32 and fp64.

    Args:
        x: Any tensor.

    Returns:
        ``x`` itself when it is fp32 or fp64, else ``x.float()``.
    """
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
