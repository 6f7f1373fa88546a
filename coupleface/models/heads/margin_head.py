"""Base class of the margin-softmax heads (ArcFace, CosFace, CurricularFace, ...).

A margin head holds one class center per identity (``weight``, ``[num_classes,
in_channels]``, normal init with std 0.01 as insightface arcface_torch), takes the
cosine between the normalised embedding and every normalised center, changes
the logits with its margin (mostly the positive one) and scales them. The margin
maths are in :meth:`MarginHead.margin_logits`, which works on any subset of
columns so that PartialFC can pass only its sampled class centers.

All margin maths run in fp32 (fp64 stays fp64, for gradient checks) with
autocast disabled (:mod:`coupleface.utils.amp`), so AMP/bf16 training cannot push
``acos`` out of its domain.
Gradients flow through the margin: nothing is changed in place under
``no_grad``, unlike insightface's ``logits.arccos_()`` trick.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from coupleface.utils.amp import autocast_off, upcast

#: The ranges :meth:`MarginHead.check_range` knows, by the words of its error message.
_RANGES: Dict[str, Callable[[float], bool]] = {
    '> 0': lambda v: v > 0.0,
    '>= 0': lambda v: v >= 0.0,
    'in [0, 1]': lambda v: 0.0 <= v <= 1.0,
    'in [0, 1)': lambda v: 0.0 <= v < 1.0,
    'in [0, pi)': lambda v: 0.0 <= v < math.pi,
}


class MarginHead(BaseModule):
    """Base class of margin-softmax heads.

    Subclasses implement :meth:`_apply_margin` on an fp32 cosine matrix; this
    class does the cosine, the scale, the loss and the argument checks
    (a subclass declares its own in :attr:`hparam_ranges`). The arguments below are
    every margin head's: a subclass takes ``num_classes`` and ``in_channels`` first,
    then its margin arguments, and passes the others on as keyword arguments; its
    docstring lists only its own.

    Args:
        num_classes: Number of identities (class centers), at least 2.
        in_channels: Embedding size.
        scale: Logit scale ``s``. Defaults to 64.0.
        label_smoothing: Label smoothing of the cross entropy, in [0, 1).
        loss_weight: Weight of ``loss_cls``.
        init_cfg: Initialisation config. The default draws the class centers
            from N(0, 0.01^2) as insightface does (they are drawn so at
            construction too).
    """

    #: Cosines are clamped to ``[-1 + eps, 1 - eps]`` before ``acos``.
    eps: float = 1e-7
    #: A subclass's own float arguments and their ranges (see :meth:`set_hparams`).
    hparam_ranges: Dict[str, str] = {}

    def __init__(self, num_classes: int, in_channels: int, scale: float = 64.0,
                 label_smoothing: float = 0.0, loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='MarginHead', std=0.01)
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f'num_classes must be an integer >= 2, got {num_classes}')
        if int(in_channels) != in_channels or in_channels < 1:
            raise ValueError(f'in_channels must be a positive integer, got {in_channels}')
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.scale = self.check_range('scale', scale, '> 0')
        self.label_smoothing = self.check_range('label_smoothing', label_smoothing, 'in [0, 1)')
        self.loss_weight = float(loss_weight)
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.in_channels))
        nn.init.normal_(self.weight, mean=0.0, std=0.01)

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, in_channels={self.in_channels}, '
                f'scale={self.scale}')

    @staticmethod
    def check_range(name: str, value: float, valid: str) -> float:
        """Return ``float(value)``, or raise if it is outside a hyper-parameter range.

        Args:
            name: The argument's name, for the message.
            value: Its value.
            valid: The range, one of ``'> 0'``, ``'>= 0'``, ``'in [0, 1]'``,
                ``'in [0, 1)'``, ``'in [0, pi)'`` (NaN is outside all of them).

        Raises:
            ValueError: ``"{name} must be {valid}, got {value}"``.
        """
        if not _RANGES[valid](value):
            raise ValueError(f'{name} must be {valid}, got {value}')
        return float(value)

    def set_hparams(self, **values: float) -> None:
        """Check each value against its range in :attr:`hparam_ranges` (in the order
        given) and store it as a float attribute of the same name."""
        for name, value in values.items():
            setattr(self, name, self.check_range(name, value, self.hparam_ranges[name]))

    # ------------------------------------------------------------------ maths
    def cosine(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """Cosine between each embedding and each class center, in fp32.

        Args:
            feats: Raw embeddings ``[B, in_channels]``.

        Returns:
            ``(cos [B, num_classes], norms [B])``: the cosine matrix and the raw
            embedding norms.
        """
        if feats.dim() != 2 or feats.shape[1] != self.in_channels:
            raise ValueError(f'feats must have shape [B, {self.in_channels}], '
                             f'got {tuple(feats.shape)}')
        with autocast_off(feats.device):
            dtype = torch.promote_types(upcast(feats).dtype, upcast(self.weight).dtype)
            feats, weight = feats.to(dtype), self.weight.to(dtype)
            norms = feats.norm(p=2, dim=1)
            cos = F.linear(F.normalize(feats, dim=1), F.normalize(weight, dim=1))
        return cos, norms

    def margin_logits(self, cos: Tensor, labels: Tensor,
                      norms: Optional[Tensor] = None) -> Tensor:
        """Apply the margin to a cosine matrix and scale it.

        Args:
            cos: Cosines ``[B, K]``; the ``K`` columns may be any subset of the
                classes (PartialFC).
            labels: ``[B]`` column index of each row's positive class, or -1
                when the positive class is not among these columns.
            norms: ``[B]`` raw embedding norms (used by norm-aware margins).

        Returns:
            Scaled logits ``[B, K]`` in fp32 (fp64 for fp64 input).
        """
        self._check_shapes(cos, labels, norms)
        self._check_labels(labels, -1, cos.shape[1])
        return self._margin_logits(cos, labels, norms)

    def _margin_logits(self, cos: Tensor, labels: Tensor,
                       norms: Optional[Tensor]) -> Tensor:
        with autocast_off(cos.device):
            cos = upcast(cos)
            if norms is not None:
                norms = norms.to(cos.dtype)
            logits = self._apply_margin(cos, labels.long(), norms)
            return logits * self.scale

    def _apply_margin(self, cos: Tensor, labels: Tensor,
                      norms: Optional[Tensor]) -> Tensor:
        """Return the unscaled logits ``[B, K]`` (``cos`` with the margin).

        ``cos`` is fp32/fp64 and autocast is off; ``labels`` may hold -1.
        """
        raise NotImplementedError

    @staticmethod
    def positive_mask(cos: Tensor, labels: Tensor) -> Tensor:
        """Boolean ``[B, K]``, True at each row's positive column (none for -1)."""
        columns = torch.arange(cos.shape[1], device=cos.device)
        return columns.unsqueeze(0) == labels.unsqueeze(1)

    @staticmethod
    def positive_cosine(cos: Tensor, labels: Tensor) -> Tensor:
        """``[B]`` cosine of each row's positive column (column 0 for -1 rows,
        a placeholder that :meth:`replace_positive` never writes)."""
        return cos.gather(1, labels.clamp(min=0).unsqueeze(1)).squeeze(1)

    @staticmethod
    def replace_positive(cos: Tensor, labels: Tensor, target: Tensor) -> Tensor:
        """Return ``cos`` with each row's positive column set to ``target``."""
        return torch.where(MarginHead.positive_mask(cos, labels), target.unsqueeze(1), cos)

    # --------------------------------------------------------------- public
    def forward(self, feats: Tensor, labels: Tensor) -> Tensor:
        """Scaled logits with the margin applied to the positive classes.

        Args:
            feats: Raw embeddings ``[B, in_channels]``.
            labels: Class indices ``[B]`` in ``[0, num_classes)``.

        Returns:
            Logits ``[B, num_classes]`` in fp32.
        """
        cos, norms = self.cosine(feats)
        self._check_shapes(cos, labels, norms)
        self._check_labels(labels, 0, self.num_classes)
        return self._margin_logits(cos, labels, norms)

    def loss(self, feats: Tensor, labels: Tensor) -> Dict[str, Tensor]:
        """Margin-softmax cross entropy.

        Args:
            feats: Raw embeddings ``[B, in_channels]``.
            labels: Class indices ``[B]`` in ``[0, num_classes)``.

        Returns:
            ``loss_cls``: weighted cross entropy of the margin logits;
            ``acc_top1``: top-1 accuracy (percent, detached) of the plain cosine
            prediction, without margin.
        """
        cos, norms = self.cosine(feats)
        self._check_shapes(cos, labels, norms)
        self._check_labels(labels, 0, self.num_classes)
        labels = labels.long()
        logits = self._margin_logits(cos, labels, norms)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            acc = (cos.argmax(dim=1) == labels).float().mean() * 100.0
        return dict(loss_cls=loss * self.loss_weight, acc_top1=acc.detach())

    # --------------------------------------------------------------- checks
    @staticmethod
    def _check_shapes(cos: Tensor, labels: Tensor, norms: Optional[Tensor]) -> None:
        if cos.dim() != 2:
            raise ValueError(f'cos must be 2-D [B, K], got shape {tuple(cos.shape)}')
        if labels.shape != cos.shape[:1]:
            raise ValueError(f'labels must have shape [{cos.shape[0]}], '
                             f'got {tuple(labels.shape)}')
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f'labels must be an integer tensor, got {labels.dtype}')
        if norms is not None and norms.shape != cos.shape[:1]:
            raise ValueError(f'norms must have shape [{cos.shape[0]}], '
                             f'got {tuple(norms.shape)}')

    @staticmethod
    def _check_labels(labels: Tensor, low: int, high: int) -> None:
        if labels.numel() == 0:
            return
        # One device sync; labels outside the range would index garbage.
        bad = (labels < low) | (labels >= high)
        if bool(bad.any()):
            value = labels[bad][0].item()
            raise ValueError(f'labels must be in [{low}, {high}), got {value}')
