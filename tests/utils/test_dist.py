"""Distributed helpers: CPU process-group setup, all_reduce, all_gather with gradient,
DDP marking (2 gloo ranks)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from torch import nn

import coupleface.utils.dist as dist_mod
from coupleface.utils.dist import (
    all_gather_no_grad,
    all_gather_with_grad,
    all_reduce,
    all_reduce_sum,
    get_dist_info,
    init_cpu_distributed,
    mark_rank_local_params_for_ddp,
)

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
_spec = importlib.util.spec_from_file_location('_dist_worker', osp.join(HERE, '_dist_worker.py'))
_dist_worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dist_worker)

LAUNCHER_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK')


def test_single_process_is_identity():
    assert not dist.is_initialized()
    x = torch.randn(4, 3, requires_grad=True)
    assert all_gather_with_grad(x) is x
    gathered = all_gather_no_grad(x)
    assert torch.equal(gathered, x) and not gathered.requires_grad
    assert get_dist_info() == (0, 1)


@pytest.mark.parametrize('op', ['sum', 'max', 'min', 'product'])
def test_all_reduce_single_process_is_identity_in_place(op):
    assert not dist.is_initialized()
    x = torch.tensor([1.5, -2.0])
    assert all_reduce(x, op) is x
    torch.testing.assert_close(x, torch.tensor([1.5, -2.0]))
    with pytest.raises(ValueError, match="op must be one of"):
        all_reduce(x, 'mean')


def test_all_reduce_sum_is_a_detached_copy():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    total = all_reduce_sum(x * 3)
    assert not total.requires_grad
    torch.testing.assert_close(total, torch.tensor([3.0, 6.0]))
    y = torch.tensor([4.0], dtype=torch.float64)
    out = all_reduce_sum(y)
    assert out is not y and out.dtype == torch.float64


def test_all_reduce_moves_cpu_tensors_to_the_backend_device(monkeypatch):
    """Under nccl a CPU tensor is reduced on the backend's device and copied back."""
    calls = []

    def fake_all_reduce(tensor, op):
        calls.append((tensor.device.type, op))
        tensor.mul_(2)  # what 2 ranks holding the same value would sum to

    monkeypatch.setattr(dist_mod, '_world', lambda: (0, 2))
    monkeypatch.setattr(dist_mod.dist, 'get_backend', lambda: 'nccl')
    monkeypatch.setattr(dist_mod, 'get_comm_device', lambda: torch.device('cpu'))
    monkeypatch.setattr(dist_mod.dist, 'all_reduce', fake_all_reduce)
    x = torch.tensor([1.0, 3.0])
    assert all_reduce(x, 'max') is x
    torch.testing.assert_close(x, torch.tensor([2.0, 6.0]))
    assert calls == [('cpu', dist.ReduceOp.MAX)]
    monkeypatch.setattr(dist_mod.dist, 'get_backend', lambda: 'gloo')
    all_reduce(x)
    assert calls[-1] == ('cpu', dist.ReduceOp.SUM)


class _Sharded(nn.Module):
    rank_local_params = ('weight',)

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2, 2))
        self.bias = nn.Parameter(torch.zeros(2))


def test_mark_rank_local_params_for_ddp_reads_the_module_attribute():
    model = nn.Module()
    model.body = nn.Linear(2, 2)
    model.head = _Sharded()
    model.inner = nn.Sequential(_Sharded())
    model._ddp_params_and_buffers_to_ignore = ['teacher.x']
    expected = ['teacher.x', 'head.weight', 'inner.0.weight']
    assert mark_rank_local_params_for_ddp(model) == expected
    assert mark_rank_local_params_for_ddp(model) == expected  # idempotent
    assert model._ddp_params_and_buffers_to_ignore == expected
    assert model.head.weight._ddp_ignored and not hasattr(model.head.bias, '_ddp_ignored')
    assert mark_rank_local_params_for_ddp(_Sharded()) == ['weight']
    assert mark_rank_local_params_for_ddp(nn.Linear(2, 2)) == []


def test_init_cpu_distributed_only_under_torchrun_without_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(dist, 'init_process_group', lambda *a, **kw: calls.append(kw))
    for name in LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    assert init_cpu_distributed() is False  # not launched by torchrun

    for name, value in zip(LAUNCHER_ENV, ('1', '2', '1')):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(dist_mod.torch.cuda, 'is_available', lambda: True)
    assert init_cpu_distributed() is False  # CUDA: MMEngine's launcher does it (nccl)
    assert calls == []

    monkeypatch.setattr(dist_mod.torch.cuda, 'is_available', lambda: False)
    assert init_cpu_distributed(timeout_s=60) is True
    assert len(calls) == 1
    assert calls[0]['backend'] == 'gloo' and calls[0]['rank'] == 1
    assert calls[0]['world_size'] == 2 and calls[0]['timeout'].total_seconds() == 60


@pytest.mark.dist
def test_all_gather_with_grad_two_gloo_ranks(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    for name in LAUNCHER_ENV:
        env.pop(name, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nnodes', '1',
           '--nproc_per_node', '2', osp.join(HERE, '_dist_worker.py'), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    world_size = 2
    results = [torch.load(str(tmp_path / f'rank{r}.pt'), weights_only=True)
               for r in range(world_size)]
    # The same global batch and losses, in one process.
    x_global = _dist_worker.global_batch(world_size).requires_grad_()
    total = sum(((x_global * _dist_worker.rank_weights(r, world_size)) ** 2).sum()
                for r in range(world_size))
    total.backward()
    # Sanity: the cross-rank sum matters (a local-only backward would give this instead).
    local_only = 2 * _dist_worker.rank_weights(0, world_size) ** 2 * x_global.detach()
    assert not torch.allclose(local_only, x_global.grad, atol=1e-3)

    b = _dist_worker.LOCAL_BATCH
    for rank, res in enumerate(results):
        assert res['rank'] == rank and res['world_size'] == world_size
        assert res['initialised'] is (not torch.cuda.is_available())
        torch.testing.assert_close(res['gathered'], x_global.detach(), rtol=0, atol=0)
        assert res['gathered_requires_grad']
        torch.testing.assert_close(res['grad'], x_global.grad[rank * b:(rank + 1) * b],
                                   rtol=0, atol=1e-6)
        torch.testing.assert_close(res['no_grad'], x_global.detach(), rtol=0, atol=0)
        assert not res['no_grad_requires_grad']
        assert 'same shape on every rank' in res['unequal_error']
        assert '(1, 2)' in res['unequal_error'] and '(2, 2)' in res['unequal_error']
        # rank r holds [r + 1, -(r + 1)]: 2 ranks give sum [3, -3], max [2, -1], ...
        torch.testing.assert_close(res['reduced_sum'], torch.tensor([3.0, -3.0]))
        torch.testing.assert_close(res['reduced_max'], torch.tensor([2.0, -1.0]))
        torch.testing.assert_close(res['reduced_min'], torch.tensor([1.0, -2.0]))
        torch.testing.assert_close(res['reduced_product'], torch.tensor([2.0, 2.0]))
        torch.testing.assert_close(res['summed_copy'], torch.tensor([3.0, -3.0]))
        torch.testing.assert_close(res['summed_source'], torch.tensor([rank + 1.0, -rank - 1.0]))
        assert not res['summed_copy_requires_grad']
