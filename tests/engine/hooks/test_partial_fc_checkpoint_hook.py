"""PartialFCCheckpointHook in one process (2 ranks: tests/models/heads/_partial_fc_worker.py)."""
import torch
from torch import nn

from coupleface.engine.hooks import PartialFCCheckpointHook
from coupleface.engine.hooks import partial_fc_checkpoint_hook as hook_module
from coupleface.models.heads import PartialFCHead

C, D = 13, 6


class _Runner:
    def __init__(self, model, optimizer):
        from mmengine.optim import OptimWrapper

        self.model, self.optim_wrapper, self.calls = model, OptimWrapper(optimizer), []

    def save_checkpoint(self, *args, **kwargs):
        self.calls.append((args, kwargs))


def test_checkpoint_hook_one_rank(monkeypatch):
    model = nn.ModuleDict(dict(head=PartialFCHead(dict(type='ArcFaceHead', num_classes=C,
                                                       in_channels=D))))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model['head'].weight.grad = torch.ones(C, D)
    optimizer.step()
    runner = _Runner(model, optimizer)
    gathered = []
    monkeypatch.setattr(hook_module, 'gather_partial_fc_weights',
                        lambda m, dst=0: gathered.append((m, dst)))
    hook = PartialFCCheckpointHook()
    hook.before_run(runner)
    hook.before_run(runner)
    runner.save_checkpoint('dir', 'epoch_1.pth', save_optimizer=True)
    assert runner.calls == [(('dir', 'epoch_1.pth'), dict(save_optimizer=True))]
    assert gathered == [(model, 0)]  # once: the wrapper is not stacked

    weight = model['head'].weight
    hook.before_train(runner)  # one rank, matching shapes: the state is this rank's
    assert weight in optimizer.state
    optimizer.state[weight]['momentum_buffer'] = torch.zeros(5, D)  # from a 2-rank run
    hook.before_train(runner)
    assert weight not in optimizer.state
