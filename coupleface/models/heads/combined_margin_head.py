"""Combined margin head: cos(m1 * theta + m2) - m3.

The combined margin of insightface (Deng et al., "ArcFace: Additive Angular
Margin Loss for Deep Face Recognition", CVPR 2019, Sec. 3.3), arcface_torch's
``CombinedMarginLoss``: m1 the multiplicative angular margin (SphereFace), m2 the
additive angular margin (ArcFace), m3 the additive cosine margin (CosFace).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from coupleface.registry import MODELS

from .margin_head import MarginHead


@MODELS.register_module()
class CombinedMarginHead(MarginHead):
    """Margin head with insightface's combined margin.

    The positive logit is ``s * (cos(m1 * theta + m2) - m3)``; ``(1, 0.5, 0)``
    is ArcFace and ``(1, 0, 0.35)`` CosFace. Where ``m1 * theta + m2 > pi`` the
    target would turn back up; as insightface does for ArcFace, the positive
    there is ``cos theta - m3 - mm`` with ``theta0 = (pi - m2) / m1`` (where the
    angle reaches pi) and ``mm = (pi - theta0) * sin(theta0)``, which is
    insightface's ``m2 * sin(m2)`` for ``m1 = 1`` and keeps the target
    monotonic for the margins used in practice.

    Args:
        num_classes: As :class:`MarginHead`.
        in_channels: As :class:`MarginHead`.
        m1: Multiplicative angular margin, > 0. Defaults to 1.0.
        m2: Additive angular margin in radians, in [0, pi). Defaults to 0.5.
        m3: Additive cosine margin, >= 0. Defaults to 0.0.
        **kwargs: ``scale``, ``label_smoothing``, ``loss_weight`` and ``init_cfg`` of
            :class:`MarginHead`.

    Examples:
        >>> head = dict(type='CombinedMarginHead', num_classes=85742, in_channels=512,
        ...             m1=1.0, m2=0.3, m3=0.2)
    """

    hparam_ranges = {'m1': '> 0', 'm2': 'in [0, pi)', 'm3': '>= 0'}

    def __init__(self, num_classes: int, in_channels: int, m1: float = 1.0,
                 m2: float = 0.5, m3: float = 0.0, **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.set_hparams(m1=m1, m2=m2, m3=m3)
        theta0 = (math.pi - self.m2) / self.m1
        # Only margins that can push the angle past pi need the fallback.
        self.has_fallback = theta0 < math.pi
        self.th = math.cos(theta0)
        self.mm = (math.pi - theta0) * math.sin(theta0)

    def _apply_margin(self, cos: Tensor, labels: Tensor,
                      norms: Optional[Tensor]) -> Tensor:
        target = self.positive_cosine(cos, labels)
        if self.m1 == 1.0 and self.m2 == 0.0:
            # Pure cosine margin: no angle, so exactly CosFace.
            return self.replace_positive(cos, labels, target - self.m3)
        theta = torch.acos(target.clamp(-1.0 + self.eps, 1.0 - self.eps))
        phi = torch.cos(self.m1 * theta + self.m2) - self.m3
        if self.has_fallback:
            phi = torch.where(target > self.th, phi, target - self.m3 - self.mm)
        return self.replace_positive(cos, labels, phi)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, m1={self.m1}, m2={self.m2}, m3={self.m3}'
