"""CurricularFace head: ArcFace positives, curriculum-weighted hard negatives.

Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020 (https://arxiv.org/abs/2004.00288); follows the
authors' ``CurricularFace`` head (HuangYG123/CurricularFace).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from coupleface.registry import MODELS

from .margin_head import MarginHead


@MODELS.register_module()
class CurricularFaceHead(MarginHead):
    """Margin head of CurricularFace.

    The positive logit is ArcFace's ``cos(theta_y + m)`` (with the same
    ``cos theta_y - m * sin(m)`` fallback where ``theta_y + m > pi``). A
    negative with ``cos theta_j > cos(theta_y + m)`` is hard and becomes
    ``cos theta_j * (t + cos theta_j)``, with gradient; ``t`` (buffer ``t``,
    checkpointed) follows the mean positive cosine:
    ``t <- momentum * mean(cos theta_y) + (1 - momentum) * t``, updated in
    training before it is used, so early in training (t ~ 0) hard negatives are
    down-weighted and later emphasised. Rows whose positive is not among the
    columns (label -1) are left unchanged.

    Args:
        num_classes: As :class:`MarginHead`.
        in_channels: As :class:`MarginHead`.
        margin: Angular margin ``m`` in radians, in [0, pi). Defaults to 0.5.
        momentum: EMA momentum of ``t``, in [0, 1]. Defaults to 0.01.
        **kwargs: ``scale``, ``label_smoothing``, ``loss_weight`` and ``init_cfg`` of
            :class:`MarginHead`.

    Examples:
        >>> head = dict(type='CurricularFaceHead', num_classes=85742, in_channels=512,
        ...             margin=0.5, momentum=0.01)
    """

    t: Tensor
    hparam_ranges = {'margin': 'in [0, pi)', 'momentum': 'in [0, 1]'}

    def __init__(self, num_classes: int, in_channels: int, margin: float = 0.5,
                 momentum: float = 0.01, **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.set_hparams(margin=margin, momentum=momentum)
        self.th = math.cos(math.pi - self.margin)
        self.mm = math.sin(math.pi - self.margin) * self.margin
        self.register_buffer('t', torch.zeros(1))

    @torch.no_grad()
    def _update_t(self, target: Tensor, has_positive: Tensor) -> None:
        # Masked mean without a host sync; t is kept when no row has a positive.
        count = has_positive.sum()
        mean = (target * has_positive).sum() / count.clamp(min=1)
        t = self.t.to(target.dtype)
        new_t = torch.where(count > 0, self.momentum * mean + (1.0 - self.momentum) * t, t)
        self.t.copy_(new_t.reshape(self.t.shape))

    def _apply_margin(self, cos: Tensor, labels: Tensor,
                      norms: Optional[Tensor]) -> Tensor:
        has_positive = labels >= 0
        target = self.positive_cosine(cos, labels)
        theta = torch.acos(target.clamp(-1.0 + self.eps, 1.0 - self.eps))
        cos_theta_m = torch.cos(theta + self.margin)
        phi = torch.where(target > self.th, cos_theta_m, target - self.mm)
        if self.training:
            self._update_t(target.detach(), has_positive)
        t = self.t.to(cos.dtype)
        hard = (cos > cos_theta_m.detach().unsqueeze(1)) & has_positive.unsqueeze(1)
        logits = torch.where(hard, cos * (t + cos), cos)
        return self.replace_positive(logits, labels, phi)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, margin={self.margin}, momentum={self.momentum}'
