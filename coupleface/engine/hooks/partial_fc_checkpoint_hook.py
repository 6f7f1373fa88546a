"""Save full PartialFC class-center matrices with MMEngine; resume on any world size.

The engine side of :mod:`coupleface.models.heads.partial_fc`: the head shards its class
centers over the ranks, this hook gathers them before every checkpoint and drops the
optimizer state of shards that cannot be this rank's after a resume.
"""
from __future__ import annotations

import functools

from mmengine.hooks import Hook
from torch import Tensor

from coupleface.models.heads.partial_fc import gather_partial_fc_weights, partial_fc_heads
from coupleface.registry import HOOKS


@HOOKS.register_module()
class PartialFCCheckpointHook(Hook):
    """Save full PartialFC class-center matrices with MMEngine; resume on any world size.

    MMEngine's ``Runner.save_checkpoint`` is rank-0-only, but every rank calls it (from
    ``CheckpointHook``): this hook wraps it so that every rank first runs
    :func:`gather_partial_fc_weights`, then rank 0 saves. After a resume it drops the
    optimizer state (momentum, ...) of the shards when it cannot be this rank's: more than
    one rank (the checkpoint holds rank 0's shard state) or a shape that differs from the
    shard.

    Examples:
        >>> custom_hooks = [dict(type='PartialFCCheckpointHook')]
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        original = runner.save_checkpoint
        if getattr(original, '_gathers_partial_fc', False):
            return

        @functools.wraps(original)
        def save_checkpoint(*args, **kwargs):
            gather_partial_fc_weights(runner.model, dst=0)
            return original(*args, **kwargs)

        save_checkpoint._gathers_partial_fc = True
        runner.save_checkpoint = save_checkpoint

    def before_train(self, runner) -> None:
        from mmengine.optim import OptimWrapperDict

        wrapper = runner.optim_wrapper
        wrappers = wrapper.values() if isinstance(wrapper, OptimWrapperDict) else [wrapper]
        for _, head in partial_fc_heads(runner.model):
            for optim_wrapper in wrappers:
                state = optim_wrapper.optimizer.state
                entry = state.get(head.weight)
                if not entry:
                    continue
                stale = head.world_size > 1 or any(
                    isinstance(v, Tensor) and v.dim() > 0 and v.shape != head.weight.shape
                    for v in entry.values())
                if stale:
                    del state[head.weight]
