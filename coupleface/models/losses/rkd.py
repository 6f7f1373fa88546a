"""Relational knowledge distillation (RKD) baselines: distance-wise and angle-wise.

Park et al., "Relational Knowledge Distillation", CVPR 2019
(https://arxiv.org/abs/1904.05068), following the authors' reference code
(github.com/lenscloth/RKD, ``metric/loss.py``): ``RkdDistance`` and ``RKdAngle`` on raw
embeddings, Huber (smooth L1, beta 1) loss averaged over every entry of the ``B x B``
distance matrix and of the ``B x B x B`` angle tensor (degenerate entries, equal on both
sides, contribute zero). The paper weights them 25 (distance) and 50 (angle).

Both work on the *local* batch: relations among this rank's samples only, not gathered
across ranks; under DDP the objective is the mean of the per-rank losses. Student and
teacher may have different embedding sizes (relations are dimension-free).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coupleface.registry import MODELS
from coupleface.utils.amp import autocast_off
from coupleface.utils.amp import upcast as _upcast


def _check_pair(student: Tensor, teacher: Tensor) -> None:
    if student.dim() != 2 or teacher.dim() != 2 or student.shape[0] != teacher.shape[0]:
        raise ValueError('student and teacher must be B x d and B x D with the same B, got '
                         f'{tuple(student.shape)} and {tuple(teacher.shape)}')


def pairwise_distances(emb: Tensor, eps: float = 1e-12) -> Tensor:
    """Euclidean distance matrix ``B x B`` with an exact zero diagonal.

    Args:
        emb: Embeddings, ``B x D``.
        eps: Lower clamp of the squared distance before the square root.

    Returns:
        Tensor: ``B x B`` distances.
    """
    sq = emb.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * emb @ emb.t()).clamp(min=eps)
    off_diag = ~torch.eye(emb.shape[0], dtype=torch.bool, device=emb.device)
    return d2.sqrt() * off_diag


class RKDLoss(nn.Module):
    """What both RKD losses share: arguments, input checks, fp32 and the loss weight.

    :meth:`forward` checks the pair, returns a zero (with gradient) for a batch smaller
    than ``min_batch`` (no relation to match), and otherwise calls :meth:`relation_loss`
    with autocast off on the embeddings in at least fp32, the teacher detached.

    Args:
        beta: Smooth L1 transition point. Defaults to 1.0 (Park et al.).
        loss_weight: Multiplier of the loss. Defaults to 1.0.
    """

    #: The distiller passes identity labels to ``forward`` (explicit, not guessed).
    needs_labels = False
    #: The smallest batch with a relation to match.
    min_batch: int = 2

    def __init__(self, beta: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.beta = float(beta)
        self.loss_weight = float(loss_weight)

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Args:
            student: ``B x d`` student embeddings.
            teacher: ``B x D`` teacher embeddings.

        Returns:
            Tensor: The scalar loss (times ``loss_weight``).
        """
        _check_pair(student, teacher)
        if student.shape[0] < self.min_batch:
            return student.sum() * 0.0
        with autocast_off(student.device):
            loss = self.relation_loss(_upcast(student), _upcast(teacher.detach()))
        return loss * self.loss_weight

    def relation_loss(self, s: Tensor, t: Tensor) -> Tensor:
        """The unweighted loss of fp32 (or fp64) embeddings; ``t`` is detached."""
        raise NotImplementedError


@MODELS.register_module()
class DistanceWiseRKD(RKDLoss):
    """Distance-wise RKD: match mean-normalised pairwise distances (local batch).

    ``ψ_D(i, j) = ||e_i - e_j|| / μ`` with ``μ`` the mean off-diagonal distance of the
    batch; the loss is the smooth L1 between the student's and the teacher's ``ψ_D``
    averaged over the ``B x B`` matrix. The teacher is detached. Arguments as
    :class:`RKDLoss` (the paper's ``loss_weight`` is 25).

    Examples:
        >>> loss_rkd_d = dict(type='DistanceWiseRKD', loss_weight=25.0)
    """

    def relation_loss(self, s: Tensor, t: Tensor) -> Tensor:
        with torch.no_grad():
            d_t = pairwise_distances(t)
            d_t = d_t / self._off_diagonal_mean(d_t)
        d_s = pairwise_distances(s)
        d_s = d_s / self._off_diagonal_mean(d_s)
        return F.smooth_l1_loss(d_s, d_t.to(d_s.dtype), beta=self.beta)

    @staticmethod
    def _off_diagonal_mean(d: Tensor) -> Tensor:
        n = d.shape[0]
        return (d.sum() / (n * (n - 1))).clamp(min=1e-12)


@MODELS.register_module()
class AngleWiseRKD(RKDLoss):
    """Angle-wise RKD: match the cosines of the angles of all triplets (local batch).

    ``ψ_A(i, j, k) = <(e_j - e_i)/||e_j - e_i||, (e_k - e_i)/||e_k - e_i||>`` (the angle at
    ``e_i``); the loss is the smooth L1 between student and teacher ``ψ_A`` averaged
    over the ``B^3`` triplets. Computed in chunks of ``chunk_size`` vertices so memory is
    ``O(chunk_size × B × max(B, D))`` rather than ``O(B^2 × D)``. The teacher is detached.

    Args:
        beta: As :class:`RKDLoss`.
        chunk_size: Vertices processed at once. Defaults to 32.
        loss_weight: As :class:`RKDLoss` (the paper uses 50).

    Examples:
        >>> loss_rkd_a = dict(type='AngleWiseRKD', loss_weight=50.0)
    """

    min_batch = 3

    def __init__(self, beta: float = 1.0, chunk_size: int = 32,
                 loss_weight: float = 1.0) -> None:
        super().__init__(beta=beta, loss_weight=loss_weight)
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        self.chunk_size = int(chunk_size)

    @staticmethod
    def angles(emb: Tensor, vertices: slice) -> Tensor:
        """Cosines of the angles at ``emb[vertices]``: ``V x B x B``.

        Args:
            emb: Embeddings, ``B x D``.
            vertices: The vertices ``i`` to compute.

        Returns:
            Tensor: ``out[v, j, k] = ψ_A(vertices.start + v, j, k)`` (0 where ``j`` or
            ``k`` is the vertex).
        """
        diff = F.normalize(emb[None, :, :] - emb[vertices, None, :], p=2, dim=2)
        return diff @ diff.transpose(1, 2)

    def relation_loss(self, s: Tensor, t: Tensor) -> Tensor:
        n = s.shape[0]
        total = s.new_zeros(())
        for start in range(0, n, self.chunk_size):
            vertices = slice(start, min(start + self.chunk_size, n))
            with torch.no_grad():
                a_t = self.angles(t, vertices).to(s.dtype)
            a_s = self.angles(s, vertices)
            total = total + F.smooth_l1_loss(a_s, a_t, reduction='sum', beta=self.beta)
        return total / n ** 3
