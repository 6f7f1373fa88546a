"""Feature consistency distillation (FCD): pull each student embedding onto the teacher's.

The per-sample term of CoupleFace (Liu et al., "CoupleFace: Relation Matters for Face
Recognition Distillation", ECCV 2022) and of most FR distillation baselines: a distance
between the student embedding (projected to the teacher's size by the distiller's
connector) and the frozen teacher embedding of the same image.

Under DDP the loss is the mean over the *global* batch: each rank divides its sum by
the global sample count (an ``all_reduce``) and multiplies by the world size, so the
mean of the per-rank losses, and DDP's averaged gradient, equal those of one process
on the whole batch, also when ranks hold different numbers of samples.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coupleface.registry import MODELS
from coupleface.utils.amp import autocast_off
from coupleface.utils.dist import all_reduce_sum, get_dist_info

_MODES = ('l2', 'cosine', 'mse')


@MODELS.register_module()
class FeatureConsistencyLoss(nn.Module):
    """Per-sample consistency between student and teacher embeddings.

    ``mode``:

    - ``'l2'``: ``||s/|s| - t/|t|||^2`` summed over dimensions (equals
      ``2 - 2 cos``), mean over samples.
    - ``'cosine'``: ``1 - cos(s, t)``, mean over samples.
    - ``'mse'``: ``mean((s - t)^2)`` over dimensions of the raw embeddings, mean over
      samples (``F.mse_loss``), for students trained to the teacher's scale.

    The teacher is detached. Half-precision inputs are computed in fp32.

    Args:
        mode: ``'l2'``, ``'cosine'`` or ``'mse'``. Defaults to ``'l2'``.
        loss_weight: Multiplier of the loss. Defaults to 1.0.

    Examples:
        >>> loss_fcd = dict(type='FeatureConsistencyLoss', mode='l2', loss_weight=1.0)
    """

    #: The distiller passes identity labels to ``forward`` (explicit, not guessed).
    needs_labels = False

    def __init__(self, mode: str = 'l2', loss_weight: float = 1.0) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f'mode must be one of {_MODES}, got {mode!r}')
        self.mode = mode
        self.loss_weight = float(loss_weight)

    def extra_repr(self) -> str:
        return f'mode={self.mode!r}, loss_weight={self.loss_weight}'

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Compute the loss on this rank's samples, normalised over the global batch.

        Args:
            student: Student embeddings, ``B x D``.
            teacher: Teacher embeddings of the same images, ``B x D`` (detached here).

        Returns:
            Tensor: The scalar loss (times ``loss_weight``).
        """
        if student.dim() != 2 or student.shape != teacher.shape:
            raise ValueError('student and teacher must both be B x D with the same shape, got '
                             f'{tuple(student.shape)} and {tuple(teacher.shape)}')
        with autocast_off(student.device):
            dtype = torch.promote_types(student.dtype, torch.float32)
            s = student.to(dtype)
            t = teacher.detach().to(dtype)
            if self.mode == 'l2':
                per_sample = (F.normalize(s, dim=1) - F.normalize(t, dim=1)).pow(2).sum(dim=1)
            elif self.mode == 'cosine':
                per_sample = 1.0 - F.cosine_similarity(s, t, dim=1)
            else:
                per_sample = (s - t).pow(2).mean(dim=1)
            _, world_size = get_dist_info()
            count = all_reduce_sum(per_sample.new_tensor(float(per_sample.numel()))).clamp(min=1)
            return per_sample.sum() * (world_size * self.loss_weight) / count
