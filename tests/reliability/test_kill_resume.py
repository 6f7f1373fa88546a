"""Exact resume: a run killed at any point and resumed ends with the weights of a run never
stopped (``ExactResumeHook`` + ``ResumableSampler``, iteration checkpoints).

In-process tests resume a toy run (dropout + numpy + Python randomness in the step, a
validation loop between epochs) from each of its checkpoints; the slow test SIGKILLs
``tools/train.py`` at random iterations and inside a checkpoint write, resumes with
``--resume`` and compares the final weights and optimizer state bit for bit.
"""
import os
import os.path as osp
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _e2e_helpers import REPO, run_tool, write_tiny_config
from _toy_runner import BATCH, NUM_SAMPLES, make_runner
from mmengine.dataset import DefaultSampler
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

import coupleface.engine.hooks.exact_resume_hook as hook_mod
from coupleface.datasets.samplers import RelationSampler, ResumableSampler
from coupleface.engine.hooks import ExactResumeHook
from coupleface.engine.hooks.exact_resume_hook import remove_stale_checkpoint_temps, resume_skip
from coupleface.utils.checkpoint_load import safe_torch_load

HERE = osp.dirname(osp.abspath(__file__))
ITERS = 3 * NUM_SAMPLES // BATCH  # 3 epochs x 3 iterations; checkpoints at 2, 4, 6, 8, 9


@pytest.fixture(autouse=True)
def restore_default_scope():
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)


def _train_state(path):
    ckpt = safe_torch_load(str(path))
    return ckpt['state_dict'], ckpt['optimizer']['state']


def _assert_same_training_state(a_path, b_path):
    (sa, oa), (sb, ob) = _train_state(a_path), _train_state(b_path)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert oa.keys() == ob.keys()
    for param in oa:
        for name in oa[param]:
            assert torch.equal(oa[param][name], ob[param][name]), (param, name)


def _differs(a_path, b_path):
    sa, sb = _train_state(a_path)[0], _train_state(b_path)[0]
    return any(not torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """An uninterrupted toy run: checkpoints iter_2/4/6/8/9.pth."""
    work = tmp_path_factory.mktemp('reference')
    before = set(DefaultScope._instance_dict)
    make_runner(work).train()
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)
    return work


def _resume(reference, tmp_path, ckpt, **kwargs):
    work = tmp_path / f'resumed_{ckpt}'
    work.mkdir()
    shutil.copy(reference / ckpt, work / ckpt)
    make_runner(work, load_from=work / ckpt, resume=True, **kwargs).train()
    return work


@pytest.mark.parametrize('ckpt', ['iter_2.pth', 'iter_4.pth', 'iter_6.pth', 'iter_8.pth'])
def test_resume_from_any_iteration_checkpoint_is_exact(reference, tmp_path, ckpt):
    # iter_2 and iter_8 are inside an epoch, iter_6 ends one (before its validation), iter_4
    # is one iteration into an epoch
    work = _resume(reference, tmp_path, ckpt)
    _assert_same_training_state(reference / f'iter_{ITERS}.pth', work / f'iter_{ITERS}.pth')
    assert not osp.exists(work / f'iter_{ITERS + 1}.pth')  # no epoch ran longer


def test_checkpoint_records_the_position_in_the_epoch(reference):
    positions = {n: safe_torch_load(str(reference / f'iter_{n}.pth'))['exact_resume']
                 for n in (2, 4, 6, 8)}
    assert [(p['epoch'], p['epoch_iters']) for p in positions.values()] == \
        [(0, 2), (1, 1), (1, 3), (2, 2)]
    assert positions[2]['world_size'] == 1 and positions[2]['batch_size'] == BATCH
    assert positions[2]['sampler_seed'] == 0 and positions[2]['epoch_length'] == 3


def test_each_part_is_needed(reference, tmp_path):
    # without the hook MMEngine restarts the epoch: more iterations, other weights
    plain = _resume(reference, tmp_path, 'iter_4.pth', hooks=())
    assert osp.exists(plain / f'iter_{ITERS + 1}.pth')
    # skipping the right samples but not re-seeding: dropout/jitter draws differ
    (tmp_path / 'b').mkdir()
    no_seed = _resume(reference, tmp_path / 'b', 'iter_4.pth',
                      hooks=(dict(type='ExactResumeHook', reseed=False),))
    assert _differs(reference / f'iter_{ITERS}.pth', no_seed / f'iter_{ITERS}.pth')
    # the reference with reseed=False differs from one with it: the step really draws
    (tmp_path / 'c').mkdir()
    other = tmp_path / 'c'
    make_runner(other, hooks=(dict(type='ExactResumeHook', reseed=False),)).train()
    assert _differs(reference / f'iter_{ITERS}.pth', other / f'iter_{ITERS}.pth')


def test_plain_default_sampler_is_logged_not_exact(reference, tmp_path, capsys):
    work = _resume(reference, tmp_path, 'iter_4.pth', sampler='DefaultSampler')
    out = capsys.readouterr()
    assert 'DefaultSampler cannot skip samples' in out.out + out.err
    assert osp.exists(work / f'iter_{ITERS + 1}.pth')


# ---------------------------------------------------------------------------
# Samplers and the world-size arithmetic
# ---------------------------------------------------------------------------

def _with_world(monkeypatch, rank, world):
    import mmengine.dataset.sampler as mm_sampler
    monkeypatch.setattr(mm_sampler, 'get_dist_info', lambda: (rank, world))


@pytest.mark.parametrize('world', [1, 2, 3])
def test_resumable_sampler_order_and_skip(monkeypatch, world):
    data = list(range(10))
    per_rank = []
    for rank in range(world):
        _with_world(monkeypatch, rank, world)
        ours, theirs = ResumableSampler(data, seed=7), DefaultSampler(data, seed=7)
        for s in (ours, theirs):
            s.set_epoch(2)
        order = list(theirs)
        assert list(ours) == order and len(ours) == len(theirs)
        ours.load_state_dict(dict(seed=7, epoch=2, samples_yielded=2))
        ours.set_epoch(2)  # DistSamplerSeedHook: same epoch keeps the position
        assert list(ours) == order[2:]
        assert list(ours) == order  # the skip applies once
        ours.load_state_dict(dict(seed=7, epoch=2, samples_yielded=2))
        ours.set_epoch(3)  # another epoch drops it
        assert len(list(ours)) == len(order)
        per_rank.append(order)
    # the first m samples of every rank are the first m * world of the global order
    _with_world(monkeypatch, 0, 1)
    single = DefaultSampler(data, seed=7)
    single.set_epoch(2)
    global_order = list(single)
    for m in range(1, len(per_rank[0]) + 1):
        done = sorted(i for order in per_rank for i in order[:m])
        if m * world <= len(data):
            assert done == sorted(global_order[:m * world])
    with pytest.raises(ValueError, match='samples_yielded=99'):
        ResumableSampler(data, seed=7).load_state_dict(dict(seed=7, epoch=0,
                                                            samples_yielded=99))


class _Identities:
    """A dataset stand-in with ``class_to_indices`` (6 identities x 4 images)."""

    def __init__(self):
        self.class_to_indices = [np.arange(4 * c, 4 * c + 4) for c in range(6)]

    def __len__(self):
        return 24


def test_relation_sampler_global_order_does_not_depend_on_world_size():
    kw = dict(group_size=2, images_per_identity=2, seed=3)
    single = list(RelationSampler(_Identities(), batch_size=8, rank=0, world_size=1, **kw))
    ranks = [list(RelationSampler(_Identities(), batch_size=4, rank=r, world_size=2, **kw))
             for r in range(2)]
    # k batches of 8 on one rank == k batches of 4 on each of two ranks
    for k in range(1, len(ranks[0]) // 4 + 1):
        assert sorted(single[:8 * k]) == sorted(ranks[0][:4 * k] + ranks[1][:4 * k])


@pytest.mark.parametrize('saved_world,saved_batch,world,batch,k', [
    (1, 8, 1, 8, 3), (2, 4, 1, 8, 3), (1, 8, 2, 4, 3), (1, 8, 2, 8, 3), (4, 2, 3, 2, 5)])
def test_resume_skip_arithmetic(saved_world, saved_batch, world, batch, k):
    saved = dict(epoch_iters=k, world_size=saved_world, batch_size=saved_batch)
    skip, repeated = resume_skip(saved, world, batch)
    consumed = k * saved_world * saved_batch
    assert skip * batch * world + repeated == consumed
    assert 0 <= repeated < batch * world
    if (world, batch) == (saved_world, saved_batch):
        assert (skip, repeated) == (k, 0)


def _fake_runner(sampler, *, epoch, iteration, length=6, batch=4):
    loader = type('Loader', (), dict(sampler=sampler, batch_size=batch,
                                     __len__=lambda self: length))()
    from mmengine.runner import EpochBasedTrainLoop
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)
    return SimpleNamespace(train_dataloader=loader, epoch=epoch, iter=iteration,
                           train_loop=loop, work_dir='/nonexistent', seed=0)


def test_resume_on_another_world_size_logs_what_changes(monkeypatch, capsys):
    MMLogger.get_instance('reliability_world_size')
    _with_world(monkeypatch, 0, 2)
    sampler = ResumableSampler(list(range(48)), seed=5)  # 24 per rank = 6 batches of 4
    monkeypatch.setattr(hook_mod, 'get_dist_info', lambda: (0, 2))
    hook = ExactResumeHook()
    # written by 1 rank x batch 4, 3 iterations into epoch 1 (12 samples done);
    # now 2 ranks x batch 4: skip 1 batch each (8 samples), 4 samples trained twice
    hook.after_load_checkpoint(None, dict(meta=dict(epoch=1, iter=15), exact_resume=dict(
        epoch=1, epoch_iters=3, world_size=1, batch_size=4, epoch_length=12, sampler_seed=9)))
    runner = _fake_runner(sampler, epoch=1, iteration=15)
    hook.before_train(runner)
    out = capsys.readouterr()
    text = out.out + out.err
    assert 'resuming on 2 rank(s) x batch 4' in text and '4 samples trained twice' in text
    assert 'not bit-exact' in text
    assert sampler.state_dict() == dict(seed=9, epoch=1, samples_yielded=4)
    assert hook._epoch_iters == 1


def test_checkpoint_without_record_is_inferred(monkeypatch):
    _with_world(monkeypatch, 0, 1)
    sampler = ResumableSampler(list(range(24)), seed=5)
    hook = ExactResumeHook()
    hook.after_load_checkpoint(None, dict(meta=dict(epoch=2, iter=14)))
    hook.before_train(_fake_runner(sampler, epoch=2, iteration=14))  # 6 per epoch -> 2 done
    assert sampler.state_dict()['samples_yielded'] == 8
    # load_from (fine-tuning from a checkpoint) is not a resume: nothing is skipped
    fresh = ResumableSampler(list(range(24)), seed=5)
    hook = ExactResumeHook()
    hook.after_load_checkpoint(None, dict(meta=dict(epoch=2, iter=14)))
    hook.before_train(_fake_runner(fresh, epoch=0, iteration=0))
    assert fresh.state_dict()['samples_yielded'] == 0


def test_stale_checkpoint_temps_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = tmp_path / f'.iter_4.pth.{dead.pid}.0123abcd.tmp'
    live = tmp_path / f'.iter_6.pth.{os.getpid()}.0123abcd.tmp'
    other = tmp_path / 'notes.tmp'
    for p in (stale, live, other):
        p.write_bytes(b'x')
    assert remove_stale_checkpoint_temps(str(tmp_path)) == [str(stale)]
    assert not stale.exists() and live.exists() and other.exists()


# ---------------------------------------------------------------------------
# SIGKILL a real tools/train.py run and resume it
# ---------------------------------------------------------------------------

INTERVAL = 2
TOTAL_ITERS = 12  # 3 epochs x (32 images / batch 8)
TINY_EXTRA = f'''
randomness = dict(seed=0, deterministic=True)
model['backbone']['dropout'] = 0.2
train_dataloader['sampler'] = dict(type='ResumableSampler', shuffle=True)
default_hooks['checkpoint'] = dict(type='CheckpointHook', interval={INTERVAL}, by_epoch=False,
                                   max_keep_ckpts=-1, save_best=None)
'''


def _read_progress(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _start_killable(cfg, work, progress, slow_checkpoint=None):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
               CF_PROGRESS_FILE=str(progress))
    if slow_checkpoint:
        env['CF_SLOW_CHECKPOINT'] = slow_checkpoint
    log = open(str(work) + '.log', 'w')
    proc = subprocess.Popen([sys.executable, osp.join(HERE, '_train_killable.py'), cfg,
                             '--work-dir', str(work)], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    return proc, log


def _wait_for(predicate, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f'the run ended (rc {proc.returncode}) before the kill point')
        time.sleep(0.01)
    raise AssertionError('timed out waiting for the kill point')


@pytest.fixture(scope='module')
def tiny_reference(tiny_synthfaces, tmp_path_factory):
    """The tiny config trained without interruption (with validation every epoch)."""
    root = tmp_path_factory.mktemp('tiny_reference')
    cfg = write_tiny_config(str(root / 'tiny.py'), tiny_synthfaces, max_epochs=3,
                            extra=TINY_EXTRA)
    run_tool('train.py', cfg, '--work-dir', str(root / 'reference'))
    assert osp.isfile(root / 'reference' / f'iter_{TOTAL_ITERS}.pth')
    return cfg, root / 'reference'


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_identical_weights(tiny_reference, tmp_path):
    cfg, reference = tiny_reference
    final = f'iter_{TOTAL_ITERS}.pth'

    rng = random.Random(2024)
    trials = [('iteration', n) for n in sorted(rng.sample(range(1, TOTAL_ITERS), 3))]
    trials.append(('checkpoint write', 6))
    for i, (kind, point) in enumerate(trials):
        work = tmp_path / f'trial{i}'
        progress = tmp_path / f'trial{i}.progress'
        in_write = str(progress) + '.in_checkpoint_write'
        proc, log = _start_killable(cfg, work, progress,
                                    slow_checkpoint=f'iter_{point}.pth'
                                    if kind == 'checkpoint write' else None)
        try:
            if kind == 'iteration':
                _wait_for(lambda: _read_progress(progress) >= point, proc)
                time.sleep(rng.uniform(0.0, 0.15))  # land anywhere in the next iteration
            else:
                _wait_for(lambda: osp.exists(in_write), proc)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            log.close()
        done = _read_progress(progress)  # iterations completed before the kill
        if kind == 'checkpoint write':
            temps = [n for n in os.listdir(work) if n.endswith('.tmp')]
            assert temps and not osp.exists(work / f'iter_{point}.pth'), os.listdir(work)

        proc = run_tool('train.py', cfg, '--work-dir', str(work), '--resume')
        text = proc.stdout + proc.stderr
        resumed = re.search(r'resumed epoch: (\d+), iter: (\d+)', text)
        assert resumed, text[-3000:]
        resumed_iter = int(resumed.group(2))
        assert 0 <= done - resumed_iter <= INTERVAL, (kind, point, done, resumed_iter)
        if resumed_iter % (TOTAL_ITERS // 3):
            assert 'exact resume: epoch' in text
        _assert_same_training_state(reference / final, work / final)
        assert not osp.exists(work / f'iter_{TOTAL_ITERS + INTERVAL}.pth')
        if kind == 'checkpoint write':
            assert not [n for n in os.listdir(work) if n.endswith('.tmp')]
        print(f'trial {i}: SIGKILL at {kind} {point}: {done} iterations done, resumed at '
              f'{resumed_iter}; final weights and optimizer state identical')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.dist
def test_resume_on_two_ranks_continues_the_epoch_and_logs_the_change(tiny_reference,
                                                                     tmp_path):
    """A 1-rank checkpoint (batch 8) 2 iterations into epoch 2, resumed on 2 ranks of 4."""
    cfg, reference = tiny_reference
    work = tmp_path / 'two_ranks'
    work.mkdir()
    shutil.copy(reference / 'iter_6.pth', work / 'iter_6.pth')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_addr', '127.0.0.1', '--master_port', str(_free_port()),
           osp.join(REPO, 'tools', 'train.py'), cfg, '--launcher', 'pytorch',
           '--work-dir', str(work), '--resume', str(work / 'iter_6.pth'),
           '--cfg-options', 'train_dataloader.batch_size=4']
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    assert 'resuming on 2 rank(s) x batch 4, the checkpoint was written by 1 rank(s) x batch 8' \
        in text
    assert '0 samples trained twice' in text  # same global batch: the same 16 samples skipped
    assert 'exact resume: epoch 2 continues after 2 of its 4 iterations' in text
    assert osp.isfile(work / f'iter_{TOTAL_ITERS}.pth')
    assert not osp.exists(work / f'iter_{TOTAL_ITERS + INTERVAL}.pth')
    state = safe_torch_load(str(work / f'iter_{TOTAL_ITERS}.pth'))['exact_resume']
    assert state['world_size'] == 2 and state['batch_size'] == 4
