"""Evaluation-oriented rank distillation: an EKD-style baseline.

Huang et al., "Evaluation-oriented Knowledge Distillation for Deep Face Recognition",
CVPR 2022 (https://arxiv.org/abs/2206.02325). What we follow, from the paper's abstract:
the performance indicator is the evaluation metric of face verification (TPR at given
FPRs); the *critical* pair relations are those that cause the TPR and FPR difference
between teacher and student, and a *rank-based* loss makes the student's critical
relations approximate the teacher's, which constrains the student less than matching
every similarity one-to-one. The paper's equations were not available to us; every
formula below is **our reading**, each choice a constructor argument (docs/method.md,
"Baselines: EKD-style and AdaDistill-style"):

- relations are cosine similarities of L2-normalised embeddings over all ordered pairs
  ``(i, j)``, ``i`` a local sample, ``j != i`` a sample of the global batch:
  ``r_s(i, j) = <ŝ_i, ŝ_j>`` (the student's own relation, as evaluation sees it) and
  ``r_t(i, j) = <t̂_i, t̂_j>``;
- each model has its own threshold per target FAR ``f_k``: ``τ_k`` is the
  ``⌈f_k · N⌉``-th largest of its ``N`` negative-pair similarities in the global batch (a
  pair is accepted when ``r >= τ_k``), smoothed over steps by an exponential moving
  average (a batch holds few negatives at a low FAR);
- the rank of a pair is the number of target FARs at which it is accepted:
  hard ``h = Σ_k [r >= τ_k]`` and soft ``ρ = Σ_k sigmoid((r - τ_k) / T)``;
- critical pairs (``selection='disagreement'``, default): pairs whose hard ranks differ
  between teacher and student, i.e. positives accepted by one model and rejected by the
  other (they make the TPR differ) and negatives likewise (FPR) at one or more target
  FARs; ``'teacher'``: positives the teacher rejects and negatives it accepts at one or
  more target FARs (the pairs around the teacher's operating points); ``'all'``: every pair;
- ``L = w_pos · mean_{critical positives} (ρ_s - ρ_t)² + w_neg · mean_{critical negatives}
  (ρ_s - ρ_t)²`` with ``ρ_t`` detached.

Global batch: the student partners are gathered with :func:`all_gather_with_grad` (the
gradient reaches every rank's shard), thresholds are exact over the global batch (each
rank contributes its top negatives, an ``all_gather`` of ``O(world × ⌈f·N⌉)`` values), and
the means' denominators are summed over ranks with the rank's loss multiplied by the world
size, as in RAD: the mean of the per-rank losses is the single-process loss on the global
batch. Memory is ``O(B_local × B_global × K)`` per rank. The local batch size must be the
same on every rank.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
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

_SELECTIONS = ('disagreement', 'teacher', 'all')


def far_thresholds(scores: Tensor, negatives: Tensor,
                   target_fars: Sequence[float]) -> Optional[Tensor]:
    """Thresholds at the target FARs from the negative pairs of the global batch.

    ``τ_k`` is the ``max(1, ⌈f_k · N⌉)``-th largest of the ``N`` negative scores of all
    ranks (exact: each rank contributes its largest local negatives). Every rank must call
    it (it runs collectives).

    Args:
        scores: Local pair scores, ``B x N_partners``.
        negatives: Boolean mask of the negative pairs, same shape.
        target_fars: FARs in ``(0, 1]``.

    Returns:
        Tensor: ``[K]`` thresholds in the order of ``target_fars``, or ``None`` when the
        global batch has no negative pair.
    """
    values = scores.detach()[negatives]
    total = int(all_reduce_sum(torch.tensor(float(values.numel()), dtype=torch.float64,
                                             device=scores.device)).item())
    if total == 0:
        return None
    # the tolerance keeps e.g. 0.1 * 30 = 3.0000000000000004 at 3
    ks = [min(total, max(1, math.ceil(f * total - 1e-6))) for f in target_fars]
    k_max = max(ks)
    top = values.topk(min(k_max, values.numel())).values
    # pad to the same length on every rank (all_gather needs it); -inf never ranks
    top = torch.cat([top, top.new_full((k_max - top.numel(),), float('-inf'))])
    ranked = all_gather_no_grad(top).topk(k_max).values
    return ranked[torch.tensor(ks, device=ranked.device) - 1]


@MODELS.register_module()
class EvaluationRankLoss(nn.Module):
    """EKD-style evaluation-oriented rank loss over the critical pairs of the global batch.

    See the module docstring for the definition and for what is the paper's and what is
    our reading. ``forward(student, teacher, labels)``; student and teacher are raw
    embeddings of the same size (normalised here). The thresholds' moving averages are
    fp64 buffers (saved in checkpoints, identical on every rank).

    Args:
        target_fars: FARs whose thresholds define the ranks (``K`` values in ``(0, 1)``).
            Defaults to ``(1e-2, 1e-3, 1e-4)``.
        selection: ``'disagreement'`` (default), ``'teacher'`` or ``'all'``: which pairs
            are critical (module docstring).
        temperature: ``T`` of the soft ranks' sigmoids (similarity units). Defaults to
            0.05.
        threshold_momentum: ``m`` of the thresholds' moving average,
            ``τ ← m · τ + (1 - m) · τ_batch`` (the first call takes ``τ_batch``); 0 uses the
            current batch only. Defaults to 0.9.
        pos_weight: Weight of the critical positives' mean. Defaults to 1.0.
        neg_weight: Weight of the critical negatives' mean. Defaults to 1.0.
        loss_weight: Multiplier of the loss. Defaults to 1.0.

    Examples:
        >>> # In a CoupleFaceDistiller config, as an extra loss (logged as loss_ekd):
        >>> model = dict(
        ...     extra_losses=dict(ekd=dict(
        ...         type='EvaluationRankLoss',
        ...         target_fars=(1e-2, 1e-3, 1e-4),
        ...         selection='disagreement',
        ...         temperature=0.05,
        ...         loss_weight=10.0)))
    """

    #: The distiller passes identity labels to ``forward`` (explicit, not guessed).
    needs_labels = True

    def __init__(self, target_fars: Sequence[float] = (1e-2, 1e-3, 1e-4),
                 selection: str = 'disagreement', temperature: float = 0.05,
                 threshold_momentum: float = 0.9, pos_weight: float = 1.0,
                 neg_weight: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        fars = tuple(float(f) for f in target_fars)
        if not fars or not all(0.0 < f < 1.0 for f in fars):
            raise ValueError(f'target_fars must be non-empty, each in (0, 1), got {target_fars}')
        if selection not in _SELECTIONS:
            raise ValueError(f'selection must be one of {_SELECTIONS}, got {selection!r}')
        if not temperature > 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if not 0.0 <= threshold_momentum < 1.0:
            raise ValueError(f'threshold_momentum must be in [0, 1), got {threshold_momentum}')
        for name, value in (('pos_weight', pos_weight), ('neg_weight', neg_weight)):
            if not value >= 0:
                raise ValueError(f'{name} must be >= 0, got {value}')
        self.target_fars = fars
        self.selection = selection
        self.temperature = float(temperature)
        self.threshold_momentum = float(threshold_momentum)
        self.pos_weight = float(pos_weight)
        self.neg_weight = float(neg_weight)
        self.loss_weight = float(loss_weight)
        # fp64: a threshold copied from a pair's score must not round above that score
        self.register_buffer('student_thresholds', torch.zeros(len(fars), dtype=torch.float64))
        self.register_buffer('teacher_thresholds', torch.zeros(len(fars), dtype=torch.float64))
        self.register_buffer('num_updates', torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return (f'target_fars={self.target_fars}, selection={self.selection!r}, '
                f'temperature={self.temperature}, '
                f'threshold_momentum={self.threshold_momentum}, pos_weight={self.pos_weight}, '
                f'neg_weight={self.neg_weight}, loss_weight={self.loss_weight}')

    # ------------------------------------------------------------------ pieces
    def soft_rank(self, scores: Tensor, thresholds: Tensor) -> Tensor:
        """``ρ = Σ_k sigmoid((r - τ_k) / T)``: soft count of target FARs accepting a pair."""
        return torch.sigmoid((scores.unsqueeze(-1) - thresholds) / self.temperature).sum(-1)

    @staticmethod
    def hard_rank(scores: Tensor, thresholds: Tensor) -> Tensor:
        """``h = Σ_k [r >= τ_k]``: the number of target FARs accepting a pair."""
        return (scores.unsqueeze(-1) >= thresholds).sum(-1)

    def critical_pairs(self, r_s: Tensor, r_t: Tensor, positives: Tensor,
                       negatives: Tensor, tau_s: Tensor, tau_t: Tensor
                       ) -> Tuple[Tensor, Tensor]:
        """Boolean masks ``(critical positives, critical negatives)``, ``B x N`` each."""
        h_t = self.hard_rank(r_t, tau_t)
        if self.selection == 'all':
            critical = torch.ones_like(positives)
            return critical & positives, critical & negatives
        if self.selection == 'teacher':
            # rejected by the teacher at >= 1 target FAR / accepted at >= 1 target FAR
            return positives & (h_t < len(self.target_fars)), negatives & (h_t > 0)
        critical = self.hard_rank(r_s, tau_s) != h_t
        return critical & positives, critical & negatives

    @torch.no_grad()
    def update_thresholds(self, tau_s: Tensor, tau_t: Tensor) -> None:
        """Moving average of the thresholds (the first update copies the batch's)."""
        m = self.threshold_momentum if int(self.num_updates) > 0 else 0.0
        self.student_thresholds.mul_(m).add_((1.0 - m) * tau_s.to(self.student_thresholds))
        self.teacher_thresholds.mul_(m).add_((1.0 - m) * tau_t.to(self.teacher_thresholds))
        self.num_updates += 1

    # ------------------------------------------------------------------ forward
    def forward(self, student: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
        """Compute this rank's share of the global loss.

        Args:
            student: Local student embeddings, ``B x D``.
            teacher: Local teacher embeddings of the same images, ``B x D`` (detached).
            labels: Identity labels, ``B`` (integer).

        Returns:
            Tensor: The scalar loss (times ``loss_weight``); the mean over ranks is the loss
            of the global batch.
        """
        if student.dim() != 2 or student.shape != teacher.shape:
            raise ValueError('student and teacher must both be B x D with the same shape, got '
                             f'{tuple(student.shape)} and {tuple(teacher.shape)}')
        if labels.shape != student.shape[:1]:
            raise ValueError(f'labels must have shape ({student.shape[0]},), '
                             f'got {tuple(labels.shape)}')
        with autocast_off(student.device):
            s, t = normalized_pair(student, teacher)
            dtype = s.dtype
            rank, world_size = get_dist_info()
            batch = s.shape[0]
            partners_s = all_gather_with_grad(s)  # B_global x D, gradient to every shard
            partners_t = all_gather_no_grad(t)
            partner_labels = all_gather_no_grad(labels)

            r_s = s @ partners_s.t()  # B_local x B_global: never B_global^2
            with torch.no_grad():
                r_t = t @ partners_t.t()
                same = labels[:, None] == partner_labels[None, :]
                not_self = torch.ones_like(same)
                rows = torch.arange(batch, device=s.device)
                not_self[rows, rows + rank * batch] = False
                positives, negatives = same & not_self, ~same
                tau_s = far_thresholds(r_s, negatives, self.target_fars)
                tau_t = far_thresholds(r_t, negatives, self.target_fars)
                if tau_s is not None:
                    self.update_thresholds(tau_s, tau_t)
            # r_s.sum() * 0 keeps the gathered partners in the graph: every rank then
            # takes part in all_gather_with_grad's backward all_reduce.
            zero = r_s.sum() * 0.0
            if int(self.num_updates) == 0:
                return zero
            tau_s = self.student_thresholds.to(dtype)
            tau_t = self.teacher_thresholds.to(dtype)
            rho_s = self.soft_rank(r_s, tau_s)
            with torch.no_grad():
                rho_t = self.soft_rank(r_t, tau_t)
                crit_pos, crit_neg = self.critical_pairs(r_s.detach(), r_t, positives,
                                                         negatives, tau_s, tau_t)
                n_pos = all_reduce_sum(crit_pos.sum().to(dtype)).clamp(min=1.0)
                n_neg = all_reduce_sum(crit_neg.sum().to(dtype)).clamp(min=1.0)
            dist = (rho_s - rho_t).pow(2)
            loss = (self.pos_weight * (dist * crit_pos).sum() / n_pos
                    + self.neg_weight * (dist * crit_neg).sum() / n_neg)
            return (zero + loss * world_size) * self.loss_weight
