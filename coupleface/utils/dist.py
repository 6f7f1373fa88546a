"""Distributed helpers: CPU (gloo) process-group setup, all_reduce, all_gather with gradient.

Every collective of the package goes through this module: :func:`all_reduce` (in place)
and :func:`all_reduce_sum` (a detached, summed copy) for reductions,
:func:`all_gather_with_grad`/:func:`all_gather_no_grad` for gathers. Each is a no-op with
one process or without a process group, so the same code runs in tests and single-process
training. :func:`mark_rank_local_params_for_ddp` keeps DDP off parameters that differ by
rank (PartialFC's class-center shards), which modules declare with a
``rank_local_params`` attribute.

Relations (RAD), PartialFC and metrics see the global batch: each rank gathers the
embeddings of all ranks with :func:`all_gather_with_grad`, and gradients flow back
to the local shard. The backward pass all-reduces (sums) the gradient of the
gathered tensor and returns this rank's slice, so the gradient each rank gets is
that of the sum of all ranks' losses (DDP then averages parameter gradients, i.e.
the objective is the mean of the ranks' losses), the same as the single-process
computation on the global batch.

MMEngine's ``pytorch`` launcher calls ``torch.cuda.set_device`` before
``init_process_group``, which fails on CPU-only machines; :func:`init_cpu_distributed`
initialises gloo first when launched by ``torchrun`` without CUDA, and MMEngine
then skips its own initialisation.

**Timeouts**: a rank that dies or hangs must end the job with an error, not leave the
others waiting forever in a collective. ``env_cfg.dist_cfg.timeout`` (seconds, default
:data:`DEFAULT_DIST_TIMEOUT_S`) is the process-group timeout; :func:`apply_dist_timeout`
fills in the default and checks the value, :func:`init_cpu_distributed` passes it to
gloo, and MMEngine's ``init_dist`` (GPU) converts the same key to a ``timedelta`` for
nccl. Gloo applies it to every collective; nccl's watchdog aborts the process when a
collective exceeds it.
"""
from __future__ import annotations

import datetime
import os
from numbers import Real
from typing import Any, List, Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.dist import get_comm_device, get_dist_info
from torch import nn

__all__ = [
    'DEFAULT_DIST_TIMEOUT_S', 'all_gather_no_grad', 'all_gather_with_grad', 'all_reduce',
    'all_reduce_sum', 'apply_dist_timeout', 'check_dist_timeout', 'get_dist_info',
    'init_cpu_distributed', 'mark_rank_local_params_for_ddp'
]

_LAUNCHER_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')

#: Process-group timeout (seconds) when the config gives none: long enough for a slow
#: checkpoint write or relation mining on one rank, short enough not to hang for days.
DEFAULT_DIST_TIMEOUT_S = 1800


def check_dist_timeout(timeout_s: Any, where: str = 'env_cfg.dist_cfg.timeout') -> float:
    """Return ``timeout_s`` as seconds, or raise a one-line ``ValueError``.

    Args:
        timeout_s: The configured value: a positive number of seconds.
        where: The config key named in the error.

    Returns:
        float: The timeout in seconds.
    """
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, Real) \
            or not 0 < float(timeout_s) < float('inf'):
        raise ValueError(f'config error: {where} must be a positive number of seconds, '
                         f'got {timeout_s!r}')
    return float(timeout_s)


def apply_dist_timeout(cfg: Any, timeout_s: Optional[float] = None) -> float:
    """Set ``cfg.env_cfg.dist_cfg.timeout`` (seconds) for every launcher and backend.

    MMEngine's ``init_dist`` (GPU, nccl) and :func:`init_cpu_distributed` (via
    ``coupleface.engine.launch.setup_cpu_distributed``) both read this key.

    Args:
        cfg: The MMEngine ``Config`` (or a dict) of the run; modified in place.
        timeout_s: Override (e.g. ``tools/train.py --dist-timeout``); ``None`` keeps the
            config's value, or :data:`DEFAULT_DIST_TIMEOUT_S` when it has none.

    Returns:
        float: The timeout in seconds now in the config.
    """
    # assign, then read back: a Config stores a converted copy of an assigned dict
    if cfg.get('env_cfg') is None:
        cfg['env_cfg'] = {}
    env_cfg = cfg['env_cfg']
    if env_cfg.get('dist_cfg') is None:
        env_cfg['dist_cfg'] = {}
    dist_cfg = env_cfg['dist_cfg']
    if timeout_s is not None:
        dist_cfg['timeout'] = timeout_s
    dist_cfg.setdefault('timeout', DEFAULT_DIST_TIMEOUT_S)
    return check_dist_timeout(dist_cfg['timeout'])


def init_cpu_distributed(backend: str = 'gloo',
                         timeout_s: float = DEFAULT_DIST_TIMEOUT_S) -> bool:
    """Initialise the default process group on CPU when launched by ``torchrun``.

    Call before building the ``Runner``. Does nothing when not launched by
    torchrun (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` unset), when CUDA is
    available (MMEngine's launcher sets the device and uses nccl) or when a
    process group already exists.

    Args:
        backend: The CPU backend. Defaults to ``'gloo'``.
        timeout_s: Process-group timeout in seconds: a collective (or the
            rendezvous) waiting longer for another rank raises instead of hanging.
            Defaults to :data:`DEFAULT_DIST_TIMEOUT_S`.

    Returns:
        bool: Whether this call initialised the process group.
    """
    timeout_s = check_dist_timeout(timeout_s, 'timeout_s')
    if not dist.is_available() or dist.is_initialized():
        return False
    if any(name not in os.environ for name in _LAUNCHER_ENV):
        return False
    if torch.cuda.is_available():
        return False
    dist.init_process_group(
        backend=backend,
        init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        timeout=datetime.timedelta(seconds=timeout_s))
    return True


def _world() -> Tuple[int, int]:
    """(rank, world size) of the default group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _check_equal_shapes(tensor: torch.Tensor, world_size: int) -> None:
    """All ranks must gather the same shape (all_gather needs it); every rank raises."""
    shape = torch.tensor(list(tensor.shape), dtype=torch.long, device=tensor.device)
    shapes = [torch.empty_like(shape) for _ in range(world_size)]
    dist.all_gather(shapes, shape)
    if any(not torch.equal(s, shape) for s in shapes):
        raise ValueError('all_gather needs the same shape on every rank, got '
                         f'{[tuple(s.tolist()) for s in shapes]}')


def _gather(tensor: torch.Tensor, world_size: int) -> torch.Tensor:
    tensor = tensor.contiguous()
    _check_equal_shapes(tensor, world_size)
    parts = [torch.empty_like(tensor) for _ in range(world_size)]
    dist.all_gather(parts, tensor)
    return torch.cat(parts, dim=0)


_REDUCE_OPS = {
    'sum': dist.ReduceOp.SUM,
    'max': dist.ReduceOp.MAX,
    'min': dist.ReduceOp.MIN,
    'product': dist.ReduceOp.PRODUCT,
}
# Backends that reduce CPU tensors; others (nccl) need the tensor on their device.
_CPU_BACKENDS = ('gloo', 'mpi')


def all_reduce(tensor: torch.Tensor, op: str = 'sum') -> torch.Tensor:
    """Reduce ``tensor`` over all ranks, in place.

    A no-op with one process or without a process group. A CPU tensor under a backend
    that cannot reduce CPU tensors (nccl) is reduced on the backend's device and copied
    back.

    Args:
        tensor: The local value; every rank passes the same shape and dtype.
        op: ``'sum'``, ``'max'``, ``'min'`` or ``'product'``. Defaults to ``'sum'``.

    Returns:
        Tensor: ``tensor`` itself, now holding the reduced value.
    """
    if op not in _REDUCE_OPS:
        raise ValueError(f'op must be one of {tuple(_REDUCE_OPS)}, got {op!r}')
    _, world_size = _world()
    if world_size == 1:
        return tensor
    if tensor.device.type == 'cpu' and dist.get_backend() not in _CPU_BACKENDS:
        on_device = tensor.to(get_comm_device())
        dist.all_reduce(on_device, op=_REDUCE_OPS[op])
        return tensor.copy_(on_device)
    dist.all_reduce(tensor, op=_REDUCE_OPS[op])
    return tensor


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over all ranks, as a new detached tensor.

    For normalisers (sample counts, weight totals) that must be global but carry no
    gradient.

    Args:
        value: The local value (not modified).

    Returns:
        Tensor: A detached copy of ``value`` summed over ranks (the copy itself with one
        process or without a process group).
    """
    return all_reduce(value.detach().clone(), 'sum')


def mark_rank_local_params_for_ddp(model: nn.Module) -> List[str]:
    """Make DDP leave rank-local parameters alone (no broadcast, no gradient averaging).

    A module whose parameters differ by rank (e.g. PartialFC's class-center shard, which
    may even differ in shape) declares their names in a ``rank_local_params`` class
    attribute. Call this on the module that DDP wraps (the recognizer or the distiller),
    at the end of its ``__init__``: MMEngine wraps the model right after building it.
    The names are added to ``model._ddp_params_and_buffers_to_ignore``, which
    ``DistributedDataParallel`` (and so MMEngine's ``MMDistributedDataParallel``) reads
    when it is constructed.

    Args:
        model: The module to be wrapped by DDP.

    Returns:
        All names DDP will ignore, the existing ones first.
    """
    names = list(getattr(model, '_ddp_params_and_buffers_to_ignore', []))
    for name, module in model.named_modules():
        for param in getattr(module, 'rank_local_params', ()):
            full = f'{name}.{param}' if name else param
            if full not in names:
                names.append(full)
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        model, names)
    return names


class _AllGatherWithGrad(torch.autograd.Function):
    """Forward: concatenate every rank's tensor; backward: summed gradient, own slice."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        rank, world_size = _world()
        ctx.rank, ctx.local_size = rank, tensor.shape[0]
        return _gather(tensor, world_size)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        grad = all_reduce(grad_output.contiguous().clone(), 'sum')
        start = ctx.rank * ctx.local_size
        return grad[start:start + ctx.local_size]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, keeping the gradient path.

    Every rank must pass the same shape. Row block ``r`` of the result is rank
    ``r``'s tensor. In the backward pass the gradients of the gathered tensor are
    summed over ranks and each rank receives the block of its own input.

    Args:
        tensor: The local shard, ``B x ...``.

    Returns:
        Tensor: ``(world_size * B) x ...``; ``tensor`` itself with one process
        or no process group.
    """
    _, world_size = _world()
    if world_size == 1:
        return tensor
    return _AllGatherWithGrad.apply(tensor)


@torch.no_grad()
def all_gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, without gradient.

    Args:
        tensor: The local shard, ``B x ...`` (same shape on every rank).

    Returns:
        Tensor: ``(world_size * B) x ...``, detached, on ``tensor``'s device (a CPU tensor
        under nccl is gathered on the backend's device and copied back, as in
        :func:`all_reduce`); ``tensor.detach()`` with one process or no process group.
    """
    _, world_size = _world()
    if world_size == 1:
        return tensor.detach()
    if tensor.device.type == 'cpu' and dist.get_backend() not in _CPU_BACKENDS:
        return _gather(tensor.detach().to(get_comm_device()), world_size).cpu()
    return _gather(tensor.detach(), world_size)
