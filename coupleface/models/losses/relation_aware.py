"""Relation-aware distillation (RAD): the relation term of CoupleFace.

Liu et al., "CoupleFace: Relation Matters for Face Recognition Distillation", ECCV 2022.
The paper's equations were not available to us; this module is our documented reading
(docs/architecture.md §4 RAD, docs/method.md), every choice being a constructor argument:

- relations are cosine similarities of L2-normalised embeddings:
  ``r_t(i, j) = <t_i, t_j>`` and ``r_s(i, j) = <s_i, s_j>`` (``relation='student'``,
  default: the student's own relations, which FCD does not constrain) or
  ``<s_i, t_j>`` (``relation='cross'``: the student anchor against the teacher's partners;
  then ``r_s - r_t = <s_i - t_i, t_j>``, the FCD residual projected on the partners, so it
  is kept as a documented ablation only, docs/method.md);
- anchors ``i`` are this rank's samples; partners ``j`` are the samples of the global
  batch (all ranks; the student partners keep their gradient) and, optionally, extra
  teacher embeddings drawn from the TeacherBank (cross relation only);
- the informative set ``Ω_i`` holds every positive pair (same label, ``j != i``) and the
  anchor's ``num_negatives`` hardest negatives by *teacher* similarity;
- ``L = Σ w_ij d(r_s(i,j), r_t(i,j)) / Σ w_ij`` over ``Ω`` with ``d`` in
  {l2, l1, smooth_l1}; weights are uniform or relation-aware (positives 1, an anchor's
  ``k`` informative negatives ``k · softmax_j(r_t(i,j) / τ_w)``, detached);
- or ``d = 'kl'``: per anchor, ``T² · KL(softmax(r_t(i,Ω_i)/T) ‖ softmax(r_s(i,Ω_i)/T))``,
  averaged over the anchors with a non-empty ``Ω_i`` (the weighting does not apply).

Memory is O(B_local × B_global) per rank: only anchor-by-partner matrices are built.
Under DDP the normaliser (``Σ w`` or the anchor count) is summed over ranks and the
rank's loss multiplied by the world size, so the mean of the per-rank losses equals the
single-process loss on the global batch and DDP's gradient average reproduces its
gradient exactly.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coupleface.registry import MODELS
from coupleface.utils.amp import autocast_off
from coupleface.utils.dist import (
    all_gather_no_grad,
    all_gather_with_grad,
    all_reduce_sum,
    get_dist_info,
)

from .normalized_pair import normalized_pair

_RELATIONS = ('cross', 'student')
_DISTANCES = ('l2', 'l1', 'smooth_l1', 'kl')
_WEIGHTINGS = ('uniform', 'relation_aware')


def hardest_negatives(r_t: Tensor, negatives: Tensor, num: Optional[int]) -> Tensor:
    """Select each row's ``num`` negatives of highest teacher similarity.

    Args:
        r_t: Teacher relations, ``B x N``.
        negatives: Boolean mask of the negative partners, ``B x N``.
        num: How many per row; ``None`` keeps every negative.

    Returns:
        Tensor: Boolean mask ``B x N`` of the selected negatives (fewer where a row has
        fewer than ``num`` negatives).
    """
    if num is None or num >= r_t.shape[1]:
        return negatives
    if num == 0:
        return torch.zeros_like(negatives)
    masked = r_t.masked_fill(~negatives, float('-inf'))
    values, index = masked.topk(num, dim=1)
    return torch.zeros_like(negatives).scatter(1, index, torch.isfinite(values))


@MODELS.register_module()
class RelationAwareDistillationLoss(nn.Module):
    """Relation-aware distillation loss of CoupleFace, over the global batch.

    See the module docstring for the definition. Anchors are the local samples, the
    partners every sample of the global batch (gathered from all ranks; the local
    batch size must be the same on every rank) plus optional TeacherBank partners,
    which are partners of this rank's anchors only (pass the same bank rows on every
    rank for results independent of the world size).

    Args:
        relation: ``'student'`` (``r_s(i,j) = <s_i, s_j>``, default) or ``'cross'``
            (``<s_i, t_j>``: FCD projected on the partners, an ablation).
        distance: ``'kl'`` (per-anchor KL divergence of temperature-softmaxed relation
            rows restricted to ``Ω_i``, times ``T²``; ``weighting`` does not apply;
            default), ``'l2'`` (squared difference), ``'l1'`` or ``'smooth_l1'``.
        weighting: ``'relation_aware'`` (default; positives 1, informative negatives
            ``k · softmax(r_t / weight_temperature)`` over each anchor's ``k`` informative
            negatives, so harder negatives weigh more) or ``'uniform'`` (all 1).
        num_negatives: Hardest negatives (by teacher similarity) kept per anchor;
            ``None`` keeps all negatives. Defaults to 16.
        temperature: ``T`` of the KL form. Defaults to 0.1.
        weight_temperature: ``τ_w`` of the relation-aware weights. Defaults to 0.1.
        beta: Transition point of ``smooth_l1`` (relation differences are mostly below
            0.5, so PyTorch's 1.0 would make it half the l2 form). Defaults to 0.1.
        exclude_self: Leave the pair ``(i, i)`` out of ``Ω`` (otherwise it is a
            positive; with ``relation='cross'`` it then pulls ``s_i`` toward ``t_i``).
            Defaults to True.
        loss_weight: Multiplier of the loss. Defaults to 1.0.

    Examples:
        >>> # In a CoupleFaceDistiller config (the SynthFaces default, weight on val):
        >>> loss_rad = dict(type='RelationAwareDistillationLoss', relation='student',
        ...                 distance='kl', temperature=0.1, num_negatives=16,
        ...                 loss_weight=250.0)
        >>> # The cross / l2 ablation with relation-aware weights:
        >>> loss_rad = dict(type='RelationAwareDistillationLoss', relation='cross',
        ...                 distance='l2', weighting='relation_aware', num_negatives=16)
    """

    #: The distiller passes identity labels to ``forward`` (explicit, not guessed).
    needs_labels = True

    def __init__(self, relation: str = 'student', distance: str = 'kl',
                 weighting: str = 'relation_aware', num_negatives: Optional[int] = 16,
                 temperature: float = 0.1, weight_temperature: float = 0.1,
                 beta: float = 0.1, exclude_self: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if relation not in _RELATIONS:
            raise ValueError(f'relation must be one of {_RELATIONS}, got {relation!r}')
        if distance not in _DISTANCES:
            raise ValueError(f'distance must be one of {_DISTANCES}, got {distance!r}')
        if weighting not in _WEIGHTINGS:
            raise ValueError(f'weighting must be one of {_WEIGHTINGS}, got {weighting!r}')
        if num_negatives is not None and (int(num_negatives) != num_negatives
                                          or num_negatives < 0):
            raise ValueError(f'num_negatives must be None or an integer >= 0, '
                             f'got {num_negatives}')
        for name, value in (('temperature', temperature),
                            ('weight_temperature', weight_temperature), ('beta', beta)):
            if not value > 0:
                raise ValueError(f'{name} must be > 0, got {value}')
        self.relation = relation
        self.distance = distance
        self.weighting = weighting
        self.num_negatives = None if num_negatives is None else int(num_negatives)
        self.temperature = float(temperature)
        self.weight_temperature = float(weight_temperature)
        self.beta = float(beta)
        self.exclude_self = bool(exclude_self)
        self.loss_weight = float(loss_weight)

    def extra_repr(self) -> str:
        return (f'relation={self.relation!r}, distance={self.distance!r}, '
                f'weighting={self.weighting!r}, num_negatives={self.num_negatives}, '
                f'temperature={self.temperature}, weight_temperature={self.weight_temperature}, '
                f'beta={self.beta}, exclude_self={self.exclude_self}, '
                f'loss_weight={self.loss_weight}')

    def forward(self, student: Tensor, teacher: Tensor, labels: Tensor,
                bank_teacher: Optional[Tensor] = None,
                bank_labels: Optional[Tensor] = None) -> Tensor:
        """Compute this rank's share of the global RAD loss.

        Args:
            student: Local student embeddings, ``B x D`` (already projected to the
                teacher's size).
            teacher: Local teacher embeddings of the same images, ``B x D`` (detached).
            labels: Identity labels, ``B`` (integer).
            bank_teacher: Optional extra teacher partners, ``M x D`` (detached).
            bank_labels: Their labels, ``M``; required with ``bank_teacher``.

        Returns:
            Tensor: The scalar loss (times ``loss_weight``); the mean over ranks is the
            loss of the global batch.
        """
        self._check_inputs(student, teacher, labels, bank_teacher, bank_labels)
        with autocast_off(student.device):
            s, t = normalized_pair(student, teacher)
            dtype = s.dtype
            rank, world_size = get_dist_info()
            batch = s.shape[0]

            partners_t = all_gather_no_grad(t)  # B_global x D
            partner_labels = all_gather_no_grad(labels)
            if self.relation == 'student':
                # Gradient flows to every rank's shard through the partners too.
                partners_s = all_gather_with_grad(s)
            if bank_teacher is not None:
                bank_t = F.normalize(bank_teacher.detach().to(device=t.device, dtype=dtype),
                                     dim=1)
                partners_t = torch.cat([partners_t, bank_t])
                partner_labels = torch.cat([partner_labels, bank_labels.to(labels.device)])
            if self.relation == 'cross':
                partners_s = partners_t

            # Every matrix below is B_local x N (N = B_global + M): never B_global^2.
            r_t = t @ partners_t.t()
            r_s = s @ partners_s.t()
            same = labels[:, None] == partner_labels[None, :]
            is_self = torch.zeros_like(same)
            self_index = torch.arange(batch, device=s.device) + rank * batch
            is_self[torch.arange(batch, device=s.device), self_index] = True
            positives = same & ~is_self if self.exclude_self else same
            negatives = hardest_negatives(r_t, ~same, self.num_negatives)

            if self.distance == 'kl':
                loss = self._kl(r_s, r_t, positives | negatives, world_size)
            else:
                loss = self._weighted(r_s, r_t, positives, negatives, world_size)
            return loss * self.loss_weight

    def _check_inputs(self, student: Tensor, teacher: Tensor, labels: Tensor,
                      bank_teacher: Optional[Tensor], bank_labels: Optional[Tensor]) -> None:
        if student.dim() != 2 or student.shape != teacher.shape:
            raise ValueError('student and teacher must both be B x D with the same shape, got '
                             f'{tuple(student.shape)} and {tuple(teacher.shape)} (project the '
                             'student to the teacher size first)')
        if labels.shape != student.shape[:1]:
            raise ValueError(f'labels must have shape ({student.shape[0]},), '
                             f'got {tuple(labels.shape)}')
        if (bank_teacher is None) != (bank_labels is None):
            raise ValueError('bank_teacher and bank_labels must be given together')
        if bank_teacher is None:
            return
        if self.relation == 'student':
            raise ValueError("TeacherBank partners have no student embedding: use "
                             "relation='cross' with bank_teacher")
        if bank_teacher.dim() != 2 or bank_teacher.shape[1] != teacher.shape[1]:
            raise ValueError(f'bank_teacher must be M x {teacher.shape[1]}, '
                             f'got {tuple(bank_teacher.shape)}')
        if bank_labels.shape != bank_teacher.shape[:1]:
            raise ValueError(f'bank_labels must have shape ({bank_teacher.shape[0]},), '
                             f'got {tuple(bank_labels.shape)}')

    def _weighted(self, r_s: Tensor, r_t: Tensor, positives: Tensor, negatives: Tensor,
                  world_size: int) -> Tensor:
        """``world · Σ_local w d / Σ_global w`` for the l2/l1/smooth_l1 distances."""
        diff = r_s - r_t
        if self.distance == 'l2':
            dist = diff.pow(2)
        elif self.distance == 'l1':
            dist = diff.abs()
        else:
            dist = F.smooth_l1_loss(r_s, r_t, reduction='none', beta=self.beta)
        with torch.no_grad():
            if self.weighting == 'uniform':
                neg_weight = negatives.to(r_t.dtype)
            else:
                logits = (r_t / self.weight_temperature).masked_fill(~negatives, float('-inf'))
                count = negatives.sum(dim=1, keepdim=True).to(r_t.dtype)
                # Rows without negatives give NaN softmax rows: zeroed by the mask.
                neg_weight = torch.where(negatives, count * logits.softmax(dim=1),
                                         torch.zeros_like(r_t))
            weight = positives.to(r_t.dtype) + neg_weight
            # No informative pair on any rank: every weight is 0 and so is the loss.
            total = all_reduce_sum(weight.sum()).clamp(min=torch.finfo(r_t.dtype).tiny)
        return (weight * dist).sum() * world_size / total

    def _kl(self, r_s: Tensor, r_t: Tensor, informative: Tensor, world_size: int) -> Tensor:
        """``world · Σ_local KL_i / (number of anchors with Ω_i non-empty, global)``."""
        # A finite fill (not -inf) keeps every intermediate finite: exp() of it is 0.
        fill = torch.finfo(r_s.dtype).min
        log_p_s = (r_s / self.temperature).masked_fill(~informative, fill).log_softmax(dim=1)
        with torch.no_grad():
            log_p_t = (r_t / self.temperature).masked_fill(~informative, fill).log_softmax(dim=1)
            p_t = log_p_t.exp() * informative
        anchors = informative.any(dim=1)
        kl = (p_t * (log_p_t - log_p_s)).sum(dim=1) * self.temperature ** 2
        count = all_reduce_sum(anchors.sum().to(r_s.dtype)).clamp(min=1)
        return (kl * anchors).sum() * world_size / count
