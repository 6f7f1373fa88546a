"""CosFace head: additive cosine margin, cos(theta) - m.

Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition",
CVPR 2018 (https://arxiv.org/abs/1801.09414); the LMCL of that paper.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from coupleface.registry import MODELS

from .margin_head import MarginHead


@MODELS.register_module()
class CosFaceHead(MarginHead):
    """Margin head with the additive cosine margin of CosFace.

    The positive logit is ``s * (cos theta - m)``; the others ``s * cos theta``.

    Args:
        num_classes: As :class:`MarginHead`.
        in_channels: As :class:`MarginHead`.
        margin: Cosine margin ``m``, >= 0. Defaults to 0.35.
        **kwargs: ``scale``, ``label_smoothing``, ``loss_weight`` and ``init_cfg`` of
            :class:`MarginHead`.

    Examples:
        >>> head = dict(type='CosFaceHead', num_classes=85742, in_channels=512, margin=0.35)
    """

    hparam_ranges = {'margin': '>= 0'}

    def __init__(self, num_classes: int, in_channels: int, margin: float = 0.35,
                 **kwargs) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.set_hparams(margin=margin)

    def _apply_margin(self, cos: Tensor, labels: Tensor,
                      norms: Optional[Tensor]) -> Tensor:
        target = self.positive_cosine(cos, labels)
        return self.replace_positive(cos, labels, target - self.margin)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, margin={self.margin}'
