"""AdaFace head: feature-norm adaptive margin.

Kim et al., "AdaFace: Quality Adaptive Margin for Face Recognition", CVPR 2022
(https://arxiv.org/abs/2204.00964); follows the authors' ``AdaFace`` head
(mk-minchul/AdaFace, ``head.py``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from coupleface.registry import MODELS

from .margin_head import MarginHead


@MODELS.register_module()
class AdaFaceHead(MarginHead):
    """Margin head of AdaFace: the margin adapts to the feature norm (image quality).

    With ``n`` the (detached, clipped to [0.001, 100]) raw embedding norm and
    ``mu``, ``sigma`` EMAs of its batch mean and std (buffers ``batch_mean``,
    ``batch_std``, initialised to 20 and 100 as the authors' code; updated in
    training before they are used, ``x <- t_alpha * batch + (1 - t_alpha) * x``):

    - ``margin_scaler = clip((n - mu) / (sigma + eps) * h, -1, 1)``
    - ``g_angular = -m * margin_scaler``, ``g_add = m + m * margin_scaler``
    - positive logit ``s * (cos(clip(theta + g_angular, eps, pi - eps)) - g_add)``

    High-norm (good quality) samples get an ArcFace-like angular margin, low-norm
    ones a CosFace-like additive one. ``eps = 1e-3`` as in the authors' code.
    Negatives keep ``cos theta`` (the authors' code clamps them to
    ``[-1 + eps, 1 - eps]`` as well; we only clamp the positive before
    ``acos``). Norm statistics are over the local batch.

    Args:
        num_classes: As :class:`MarginHead`.
        in_channels: As :class:`MarginHead`.
        margin: Margin ``m``, >= 0. Defaults to 0.4.
        h: Concentration ``h`` of the margin scaler, >= 0. Defaults to 0.333.
        t_alpha: EMA momentum of the norm statistics, in [0, 1]. Defaults to 0.01.
        **kwargs: ``scale``, ``label_smoothing``, ``loss_weight`` and ``init_cfg`` of
            :class:`MarginHead`.

    Examples:
        >>> head = dict(type='AdaFaceHead', num_classes=85742, in_channels=512, margin=0.4,
        ...             h=0.333, t_alpha=0.01)
    """

    eps: float = 1e-3
    hparam_ranges = {'margin': '>= 0', 'h': '>= 0', 't_alpha': 'in [0, 1]'}
    batch_mean: Tensor
    batch_std: Tensor

    def __init__(self, num_classes: int, in_channels: int, margin: float = 0.4,
                 h: float = 0.333, t_alpha: float = 0.01, **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.set_hparams(margin=margin, h=h, t_alpha=t_alpha)
        self.register_buffer('batch_mean', torch.full((1,), 20.0))
        self.register_buffer('batch_std', torch.full((1,), 100.0))

    @torch.no_grad()
    def _update_norm_stats(self, safe_norms: Tensor) -> None:
        a = self.t_alpha
        mean = safe_norms.mean()
        self.batch_mean.copy_(a * mean + (1.0 - a) * self.batch_mean.to(mean.dtype))
        if safe_norms.numel() > 1:  # the std of one sample is undefined
            std = safe_norms.std()
            self.batch_std.copy_(a * std + (1.0 - a) * self.batch_std.to(std.dtype))

    def _apply_margin(self, cos: Tensor, labels: Tensor,
                      norms: Optional[Tensor]) -> Tensor:
        if norms is None:
            raise ValueError('AdaFaceHead needs the raw feature norms, got norms=None')
        safe_norms = norms.detach().clamp(0.001, 100.0)
        if self.training:
            self._update_norm_stats(safe_norms)
        mean = self.batch_mean.to(cos.dtype)
        std = self.batch_std.to(cos.dtype)
        margin_scaler = ((safe_norms - mean) / (std + self.eps) * self.h).clamp(-1.0, 1.0)
        g_angular = -self.margin * margin_scaler
        g_add = self.margin + self.margin * margin_scaler

        target = self.positive_cosine(cos, labels)
        theta = torch.acos(target.clamp(-1.0 + self.eps, 1.0 - self.eps))
        theta_m = (theta + g_angular).clamp(self.eps, math.pi - self.eps)
        return self.replace_positive(cos, labels, torch.cos(theta_m) - g_add)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, margin={self.margin}, h={self.h}, '
                f't_alpha={self.t_alpha}')
