"""The unit-norm student and teacher embeddings that the relation losses compare."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def normalized_pair(student: Tensor, teacher: Tensor) -> Tuple[Tensor, Tensor]:
    """L2-normalise the student embeddings and the detached teacher embeddings.

    Both are cast to the student's dtype promoted to at least fp32 (fp64 stays fp64), so
    the cosines of half-precision embeddings are computed in fp32; call it with autocast
    disabled, as RAD and the EKD-style rank loss do.

    Args:
        student: ``B x D`` student embeddings (the gradient is kept).
        teacher: ``B x D`` teacher embeddings (detached here).

    Returns:
        tuple[Tensor, Tensor]: ``(s, t)``, unit rows of one dtype.
    """
    dtype = torch.promote_types(student.dtype, torch.float32)
    return (F.normalize(student.to(dtype), dim=1),
            F.normalize(teacher.detach().to(dtype), dim=1))
