"""AdaDistill head: ArcFace whose class centers are distilled from the teacher (a baseline).

Boutros et al., "AdaDistill: Adaptive Knowledge Distillation for Deep Face Recognition",
ECCV 2024 (https://arxiv.org/abs/2407.01332). What we follow: distillation is embedded in
the margin-softmax loss: the student is trained with ArcFace against class centers that
are not learned by gradient descent but built from the teacher's embeddings by an
exponential moving average whose weight adapts to the student's progress, so the
distilled knowledge moves from simple (sample-to-sample) early in training to complex
(sample-to-center) later, with no extra loss term and no weight to tune. For each sample
``i`` of class ``y`` (``ŝ``, ``t̂`` L2-normalised):

    λ_i = clamp(cos(W_y, t̂_i), 1e-6, 1)          (the center's agreement with the teacher)
    α_i = clamp(cos(ŝ_i, t̂_i) · λ_i, 1e-6, 1)     (alpha='adaptive', default)
    W_y ← α_i · W_y + (1 - α_i) · t̂_i             (no gradient), then ArcFace on the new W.

Early on the student disagrees with the teacher (``cos(ŝ_i, t̂_i)`` small), so ``α`` is
small and ``W_y`` is essentially this sample's teacher embedding; as the student
catches up, ``α`` grows and ``W_y`` becomes a long average of the class's teacher
embeddings. ``alpha='student_teacher'`` drops ``λ`` (``α = clamp(cos(ŝ, t̂), 1e-6, 1)``),
``alpha='fixed'`` uses a constant ``momentum`` (a plain EMA of teacher embeddings, the
non-adaptive ablation).

**Our reading** where the paper leaves a choice (docs/method.md): when several samples of
one class are in the batch, each gives its update from the same old ``W_y`` and ``W_y``
becomes their mean (deterministic; the authors' indexed assignment keeps one of them);
the update uses the **global** batch (teacher embeddings, cosines and labels gathered from
every rank, no gradient), so the centers stay identical on all ranks; the centers
(``weight``) have ``requires_grad=False`` (the authors' optimizer holds the backbone only).
Centers are kept unnormalised as updated; the cosine normalises them.

The head works in the **teacher's embedding space**: ``in_channels`` is the teacher's
embedding size; the student embeds at that size (the paper's students and teachers are
both 512-d) or, narrower, reaches it through the distiller's connector (the 64-d SynthFaces
student, like-for-like with the FCD rows). ``CoupleFaceDistiller`` passes the teacher
embeddings of the batch to a student head whose ``uses_teacher_embeddings`` is True. Used
by a ``FaceRecognizer`` alone (no teacher), :meth:`AdaDistillHead.loss` raises a one-line
error.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from coupleface.registry import MODELS
from coupleface.utils.amp import autocast_off
from coupleface.utils.dist import all_gather_no_grad

from .arcface_head import ArcFaceHead

_ALPHAS = ('adaptive', 'student_teacher', 'fixed')


@MODELS.register_module()
class AdaDistillHead(ArcFaceHead):
    """ArcFace head with teacher-distilled, adaptively updated class centers.

    See the module docstring for the update rule and our reading of the paper.

    Args:
        num_classes: As :class:`MarginHead`.
        in_channels: Embedding size: the teacher's (the student must embed at it).
        margin: As :class:`ArcFaceHead`.
        easy_margin: As :class:`ArcFaceHead`.
        scale: As :class:`MarginHead`.
        alpha: ``'adaptive'`` (default, ``α = cos(ŝ, t̂) · cos(W_y, t̂)``),
            ``'student_teacher'`` (``α = cos(ŝ, t̂)``) or ``'fixed'`` (``α = momentum``).
        momentum: ``α`` of ``alpha='fixed'``, in [0, 1). Defaults to 0.9.
        label_smoothing: As :class:`MarginHead`.
        loss_weight: As :class:`MarginHead`.
        init_cfg: As :class:`MarginHead` (the first update all but replaces those
            centers by the teacher embedding).

    Examples:
        >>> # the student head of a CoupleFaceDistiller; student and teacher embed at 256
        >>> head = dict(type='AdaDistillHead', num_classes=500, in_channels=256, margin=0.5,
        ...             alpha='adaptive')
    """

    #: ``CoupleFaceDistiller`` calls ``loss(feats, labels, teacher=...)`` for such heads.
    uses_teacher_embeddings: bool = True
    #: Lower clamp of ``λ`` and ``α`` (as the authors).
    alpha_eps: float = 1e-6
    hparam_ranges = {**ArcFaceHead.hparam_ranges, 'momentum': 'in [0, 1)'}

    def __init__(self, num_classes: int, in_channels: int, margin: float = 0.5,
                 easy_margin: bool = False, scale: float = 64.0, alpha: str = 'adaptive',
                 momentum: float = 0.9, label_smoothing: float = 0.0,
                 loss_weight: float = 1.0,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='MarginHead', std=0.01)
                 ) -> None:
        super().__init__(num_classes, in_channels, margin=margin, easy_margin=easy_margin,
                         scale=scale, label_smoothing=label_smoothing,
                         loss_weight=loss_weight, init_cfg=init_cfg)
        if alpha not in _ALPHAS:
            raise ValueError(f'alpha must be one of {_ALPHAS}, got {alpha!r}')
        self.alpha = alpha
        self.set_hparams(momentum=momentum)
        # centers follow the teacher by the update rule only: no gradient, no optimizer step
        self.weight.requires_grad_(False)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, alpha={self.alpha!r}, momentum={self.momentum}'

    def adaptive_alpha(self, student: Tensor, teacher: Tensor, centers: Tensor) -> Tensor:
        """``α`` of each sample (no gradient).

        Args:
            student: Student embeddings ``[B, D]`` (any norm).
            teacher: Teacher embeddings ``[B, D]`` (any norm).
            centers: The current center of each sample's class, ``[B, D]``.

        Returns:
            ``[B]`` values in ``[1e-6, 1]`` (``momentum`` with ``alpha='fixed'``).
        """
        if self.alpha == 'fixed':
            return student.new_full(student.shape[:1], self.momentum)
        alpha = F.cosine_similarity(student, teacher, dim=1)
        if self.alpha == 'adaptive':
            lam = F.cosine_similarity(centers, teacher, dim=1).clamp(self.alpha_eps, 1.0)
            alpha = alpha * lam
        return alpha.clamp(self.alpha_eps, 1.0)

    @torch.no_grad()
    def update_centers(self, feats: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
        """Move the batch's class centers towards the teacher embeddings (global batch).

        Args:
            feats: Student embeddings ``[B, in_channels]``.
            teacher: Teacher embeddings of the same images ``[B, in_channels]``.
            labels: Class indices ``[B]``.

        Returns:
            ``[B_global]`` the ``α`` of every sample of the global batch.
        """
        with autocast_off(feats.device):
            dtype = self.weight.dtype if self.weight.dtype in (torch.float32, torch.float64) \
                else torch.float32
            # every rank applies the same update: the centers never diverge across ranks
            s = all_gather_no_grad(F.normalize(feats.detach().to(dtype), dim=1))
            t = all_gather_no_grad(F.normalize(teacher.detach().to(dtype), dim=1))
            labels = all_gather_no_grad(labels.long())
            centers = self.weight.detach()[labels].to(dtype)
            alpha = self.adaptive_alpha(s, t, centers)
            updated = alpha[:, None] * centers + (1.0 - alpha[:, None]) * t
            # a class seen several times takes the mean of its samples' updates
            classes, inverse = torch.unique(labels, return_inverse=True)
            total = updated.new_zeros(classes.numel(), updated.shape[1])
            total.index_add_(0, inverse, updated)
            count = torch.bincount(inverse, minlength=classes.numel()).to(total.dtype)
            self.weight.data[classes] = (total / count[:, None]).to(self.weight.dtype)
        return alpha

    def loss(self, feats: Tensor, labels: Tensor,
             teacher: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Update the centers from the teacher, then the ArcFace loss against them.

        Args:
            feats: Raw student embeddings ``[B, in_channels]`` (the teacher's size).
            labels: Class indices ``[B]`` in ``[0, num_classes)``.
            teacher: Teacher embeddings of the same images ``[B, in_channels]``; required.

        Returns:
            ``loss_cls`` and ``acc_top1`` as :meth:`MarginHead.loss`, and ``ada_alpha``
            (the mean ``α`` of the global batch, detached, for the log).
        """
        if teacher is None:
            raise ValueError('AdaDistillHead needs the teacher embeddings of the batch: use it '
                             'as the student head of a CoupleFaceDistiller, not in a '
                             'FaceRecognizer alone (use ArcFaceHead there)')
        if feats.dim() != 2 or teacher.shape != feats.shape \
                or feats.shape[1] != self.in_channels:
            raise ValueError(f'feats and teacher must both be [B, {self.in_channels}] (the '
                             f'teacher\'s embedding size), got {tuple(feats.shape)} and '
                             f'{tuple(teacher.shape)}')
        self._check_labels(labels, 0, self.num_classes)
        alpha = self.update_centers(feats, teacher, labels)
        losses = super().loss(feats, labels)
        losses['ada_alpha'] = alpha.mean().detach()
        return losses
