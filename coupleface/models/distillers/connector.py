"""Trainable connector: projects the student embedding to the teacher's size.

Only the student side is projected; the teacher embedding is never changed
(docs/architecture.md §2.1), so what the student is pulled towards stays the teacher's.
"""
from __future__ import annotations

import torch
from torch import nn

from coupleface.registry import MODELS


@MODELS.register_module()
class LinearConnector(nn.Module):
    """A linear map ``d -> D`` (no bias by default) applied to student embeddings.

    Args:
        in_channels: Student embedding size ``d``.
        out_channels: Teacher embedding size ``D``.
        bias: Add a bias term.

    Examples:
        >>> connector = dict(type='LinearConnector', in_channels=128, out_channels=512)
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.proj = nn.Linear(in_channels, out_channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_channels:
            raise ValueError(f'LinearConnector expects {self.in_channels}-d student embeddings, '
                             f'got {x.shape[-1]}-d')
        return self.proj(x)
