"""Channels-last (NHWC) memory format for a model, with a guard against a CPU bug.

torch 2.13's CPU (oneDNN) backward of a channels-last 1×1 stride-2 ``Conv2d`` with fewer
input channels than one vector register holds floats corrupts the heap: it segfaults,
aborts with glibc's "corrupted size vs. prev_size" or hangs within a few steps (input *or*
weight channels-last is enough; docs/benchmarks.md, Channels-last, has the reproduction).
Measured: on the AVX2 path (AMD Zen 3, or any x86 CPU with ``ONEDNN_MAX_CPU_ISA=AVX2``)
3-7 input channels fail and 8 or more run; on the AVX-512 path (Zen 4) 8, 12 and 15 fail
(batch 32-128, 56-112 px) and 16 or more run. Stride 1, 3×3 kernels and grouped
convolutions ran on both. It is IResNet's 1×1 stride-2 downsample at ``base_channels`` 4
(AVX2) or 8 (AVX-512).

:func:`to_channels_last` therefore keeps every convolution with fewer than
:data:`MIN_CHANNELS_LAST_IN_CHANNELS` (16, the fp32 width of AVX-512) input channels in the
contiguous (NCHW) format on the CPU: its weight stays contiguous and a forward pre-hook
makes its CPU input contiguous (oneDNN takes the channels-last kernel when either is
channels-last). Such layers are the stem and very narrow blocks, a negligible share of the
compute. On other devices (cuDNN) the input passes unchanged. No library offers this guard:
it is a workaround for one upstream bug, written here so that no config, shipped or
narrowed, can reach it.
"""
from __future__ import annotations

from typing import Any, Tuple

import torch
from torch import nn

#: Convolutions with fewer input channels stay NCHW on the CPU (see the module docstring).
MIN_CHANNELS_LAST_IN_CHANNELS = 16

_GUARD_ATTR = '_coupleface_nchw_on_cpu'


def is_guarded_conv(module: nn.Module) -> bool:
    """Whether ``module`` is a convolution that must stay NCHW on the CPU."""
    return (isinstance(module, nn.Conv2d)
            and module.in_channels < MIN_CHANNELS_LAST_IN_CHANNELS)


def has_nchw_strides(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` has the row-major strides of its shape.

    Stricter than ``is_contiguous()``, which ignores the strides of size-1 dimensions: a
    ``C×C×1×1`` weight converted to channels-last is "contiguous" yet oneDNN reads its
    strides as channels-last and takes the faulty kernel.
    """
    expected, step = [], 1
    for size in reversed(tensor.shape):
        expected.append(step)
        step *= size
    return tuple(tensor.stride()) == tuple(reversed(expected))


def _as_nchw(tensor: torch.Tensor) -> torch.Tensor:
    if has_nchw_strides(tensor):
        return tensor
    return tensor.clone(memory_format=torch.contiguous_format)


def _nchw_cpu_input(module: nn.Module, args: Tuple[Any, ...]) -> Tuple[Any, ...]:
    x = args[0]
    if isinstance(x, torch.Tensor) and x.device.type == 'cpu' and x.dim() == 4:
        return (_as_nchw(x), ) + tuple(args[1:])
    return args


def to_channels_last(model: nn.Module) -> nn.Module:
    """Put ``model``'s 4-D tensors in channels-last memory, narrow convolutions excepted.

    Idempotent: hooks are registered once per convolution. Later ``.to(device)``,
    in-place initialisation and ``load_state_dict`` keep each tensor's layout.

    Args:
        model: The module to convert in place.

    Returns:
        nn.Module: ``model``.
    """
    model.to(memory_format=torch.channels_last)
    for module in model.modules():
        if not is_guarded_conv(module):
            continue
        with torch.no_grad():
            module.weight.data = _as_nchw(module.weight.data)
        if not getattr(module, _GUARD_ATTR, False):
            module.register_forward_pre_hook(_nchw_cpu_input)
            setattr(module, _GUARD_ATTR, True)
    return model
