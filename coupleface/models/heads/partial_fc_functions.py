"""The maths of :class:`~coupleface.models.heads.partial_fc.PartialFCHead`.

Sharding (which classes a rank owns, the rank-count-independent initialisation) and its
two autograd functions: a gradient scale for the gathered embeddings and the softmax cross
entropy whose columns are split across ranks (docs/architecture.md §4 Distributed). The
head module holds the ``nn.Module``, sampling and checkpoint handling.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from coupleface.utils.dist import all_reduce

__all__ = [
    'INIT_BLOCK', 'DistributedSoftmaxCrossEntropy', 'ScaleGradient', 'draw_shard',
    'shard_range'
]

#: Rows per block of the shard initialisation; each block has its own seed, so the full
#: matrix drawn for a given global seed is the same for any number of ranks.
INIT_BLOCK = 1024
_GOLDEN = 0x9E3779B97F4A7C15


def shard_range(num_classes: int, world_size: int, rank: int) -> Tuple[int, int]:
    """The classes of rank ``rank``: ``(class_start, num_local)``, insightface's split.

    The first ``num_classes % world_size`` ranks own one class more than the others.

    Args:
        num_classes: Total number of classes ``C``.
        world_size: Number of ranks ``W``.
        rank: This rank, in ``[0, W)``.

    Returns:
        ``(class_start, num_local)``: rank ``rank`` owns classes
        ``[class_start, class_start + num_local)``.
    """
    base, extra = divmod(num_classes, world_size)
    return base * rank + min(rank, extra), base + int(rank < extra)


def draw_shard(num_classes: int, in_channels: int, class_start: int, num_local: int,
               std: float) -> Tensor:
    """Rows ``[class_start, class_start + num_local)`` of an ``N(0, std^2)`` center matrix.

    The full ``[num_classes, in_channels]`` matrix is drawn in blocks of
    :data:`INIT_BLOCK` rows, each from its own generator seeded from
    ``torch.initial_seed()`` and the block index, so the rows a rank draws do not depend
    on the number of ranks.

    Args:
        num_classes: Total number of classes ``C``.
        in_channels: Embedding size ``D``.
        class_start: First class of the shard.
        num_local: Number of classes in the shard.
        std: Standard deviation of the normal draw.

    Returns:
        Tensor: ``[num_local, in_channels]`` float32.
    """
    base_seed = torch.initial_seed()
    start, stop = class_start, class_start + num_local
    parts = []
    for block in range(start // INIT_BLOCK, (stop - 1) // INIT_BLOCK + 1):
        gen = torch.Generator().manual_seed((base_seed + block * _GOLDEN) % 2**64)
        first = block * INIT_BLOCK
        rows = min(INIT_BLOCK, num_classes - first)
        values = torch.randn(rows, in_channels, generator=gen) * std
        parts.append(values[max(start - first, 0):min(stop - first, rows)])
    return torch.cat(parts)


class ScaleGradient(torch.autograd.Function):
    """Identity forward; the gradient is multiplied by ``factor``."""

    @staticmethod
    def forward(ctx, tensor: Tensor, factor: float) -> Tensor:
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Tensor, None]:
        return grad * ctx.factor, None


class DistributedSoftmaxCrossEntropy(torch.autograd.Function):
    """Mean softmax cross entropy of logits whose columns are split across ranks.

    ``logits [N, K_r]`` are this rank's columns for the whole global batch; ``columns [N]``
    the column of each row's positive on this rank, -1 when another rank holds it. The
    backward needs no communication: ``d loss / d z = (p - (1 - eps) * onehot - eps / K) / N``
    on the local columns, ``K`` the number of columns of all ranks.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, columns: Tensor, smoothing: float,
                num_columns: int) -> Tensor:
        owned = columns >= 0
        row_max = logits.max(dim=1).values
        all_reduce(row_max, 'max')
        exp = torch.exp(logits - row_max.unsqueeze(1))
        positive = logits.gather(1, columns.clamp(min=0).unsqueeze(1)).squeeze(1)
        stats = [exp.sum(dim=1), torch.where(owned, positive, torch.zeros_like(positive))]
        if smoothing > 0:
            stats.append(logits.sum(dim=1))
        stats = all_reduce(torch.stack(stats, dim=1), 'sum')
        sum_exp, positive = stats[:, 0], stats[:, 1]
        per_row = torch.log(sum_exp) + row_max - (1.0 - smoothing) * positive
        if smoothing > 0:
            per_row = per_row - smoothing * stats[:, 2] / num_columns
        ctx.save_for_backward(exp / sum_exp.unsqueeze(1), columns)
        ctx.smoothing, ctx.num_columns = smoothing, num_columns
        return per_row.mean()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tuple[Optional[Tensor], None, None, None]:
        prob, columns = ctx.saved_tensors
        grad_logits = prob - ctx.smoothing / ctx.num_columns if ctx.smoothing > 0 else prob
        rows = torch.nonzero(columns >= 0).squeeze(1)
        grad_logits = grad_logits.index_put(
            (rows, columns[rows]), grad_logits.new_tensor(-(1.0 - ctx.smoothing)),
            accumulate=True)
        return grad_logits * (grad / prob.shape[0]), None, None, None
