"""ArcFace head: additive angular margin, cos(theta + m).

Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
CVPR 2019 (https://arxiv.org/abs/1801.07698). The hard-margin fallback and the
easy margin follow insightface arcface_torch's ``ArcFace`` loss.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from coupleface.registry import MODELS

from .margin_head import MarginHead


@MODELS.register_module()
class ArcFaceHead(MarginHead):
    """Margin head with the additive angular margin of ArcFace.

    The positive logit is ``s * cos(theta + m)``. Where ``theta + m > pi``
    (``cos theta <= cos(pi - m)``) that would turn back up, so insightface's
    fallback ``cos theta - m * sin(m)`` is used instead and the positive logit
    stays monotonic in ``theta``. With ``easy_margin`` the margin applies only
    where ``cos theta > 0`` and other positives keep ``cos theta``.

    Args:
        num_classes: As :class:`MarginHead`.
        in_channels: As :class:`MarginHead`.
        margin: Angular margin ``m`` in radians, in [0, pi). Defaults to 0.5.
        easy_margin: Apply the margin only where ``cos theta > 0``.
        **kwargs: ``scale``, ``label_smoothing``, ``loss_weight`` and ``init_cfg`` of
            :class:`MarginHead`.

    Examples:
        >>> head = dict(type='ArcFaceHead', num_classes=85742, in_channels=512, margin=0.5)
    """

    hparam_ranges = {'margin': 'in [0, pi)'}

    def __init__(self, num_classes: int, in_channels: int, margin: float = 0.5,
                 easy_margin: bool = False, **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.set_hparams(margin=margin)
        self.easy_margin = bool(easy_margin)
        # insightface's names: `th` where theta + m reaches pi, `mm` the fallback margin.
        self.th = math.cos(math.pi - self.margin)
        self.mm = math.sin(math.pi - self.margin) * self.margin

    def _apply_margin(self, cos: Tensor, labels: Tensor,
                      norms: Optional[Tensor]) -> Tensor:
        target = self.positive_cosine(cos, labels)
        theta = torch.acos(target.clamp(-1.0 + self.eps, 1.0 - self.eps))
        phi = torch.cos(theta + self.margin)
        if self.easy_margin:
            phi = torch.where(target > 0, phi, target)
        else:
            phi = torch.where(target > self.th, phi, target - self.mm)
        return self.replace_positive(cos, labels, phi)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, margin={self.margin}, easy_margin={self.easy_margin}'
