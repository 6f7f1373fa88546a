"""The rank and world size a sampler shards its stream by (shared by the samplers)."""
from __future__ import annotations

from typing import Optional, Tuple

from mmengine.dist import get_dist_info


def resolve_rank(owner: str, rank: Optional[int], world_size: Optional[int]) -> Tuple[int, int]:
    """``(rank, world_size)``: the given values, MMEngine's ``get_dist_info`` for ``None``.

    Args:
        owner: The sampler's name, for the error message.
        rank: This process's rank, or ``None``.
        world_size: The number of ranks, or ``None``.

    Raises:
        ValueError: ``rank`` is not in ``[0, world_size)``.
    """
    if rank is None or world_size is None:
        dist_rank, dist_world = get_dist_info()
        rank = dist_rank if rank is None else rank
        world_size = dist_world if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f'{owner}: rank={rank} is not in [0, world_size={world_size})')
    return int(rank), int(world_size)
