"""Exact resume: a killed run, resumed, ends with the weights of a run never stopped.

MMEngine 0.10.7's ``Runner.resume`` restores the model, optimizer, parameter
schedulers, message hub, epoch and iteration. Two things are missing for an *exact*
continuation; this hook adds them:

* **The position inside the epoch.** ``EpochBasedTrainLoop`` restarts the epoch's data
  iterator, so after an iteration-interval checkpoint
  (``default_hooks.checkpoint=dict(interval=N, by_epoch=False)``) the batches already
  trained on are trained again and the epoch runs past ``len(dataloader)``. Every
  checkpoint gets ``checkpoint['exact_resume']`` (epoch, iterations done in it, world
  size, per-rank batch size, sampler seed: plain ints, loaded by the safe loader), and on
  resume the sampler skips what was consumed: ``ResumableSampler`` (``DefaultSampler``'s
  order) or ``RelationSampler``, through ``load_state_dict``. Checkpoints written
  without the hook are resumed from ``iter - epoch * len(dataloader)``.
* **The random streams.** Python ``random``, numpy's global generator and torch's
  (CPU and CUDA) are re-seeded at the start of every training iteration from
  ``(seed, iteration, rank)``. Storing the generator states in the checkpoint would
  not be exact: only rank 0 writes checkpoints, and between a checkpoint and the next
  iteration the uninterrupted run draws from them (the validation loop, the next
  epoch's ``DataLoader`` iterator draws its base seed from torch's generator) while
  the resumed run does not. Per-iteration streams need nothing stored and are the
  same after a resume on any number of ranks. Data augmentation is exact when its
  randomness comes from coupleface's per-sample seeded transforms
  (``coupleface.utils.seeding``), not from the global generators.

The mined relations are reloaded from ``relations.npz`` by ``RelationMiningHook``.

**Another number of ranks.** With ``W`` ranks of batch ``B`` at save time, ``k``
iterations into epoch ``e`` mean the first ``k * B * W`` samples of the epoch's global
order are done (true for both samplers). On ``W'`` ranks of batch ``B'`` each rank skips
``floor(k*B*W / (B'*W'))`` batches: the rest of the epoch keeps the same global order,
split differently, and fewer than ``B' * W'`` samples are trained twice. The hook logs
this; iteration-based schedules keep counting iterations (so their epochs shift) and
mmengine's own world-size check only applies to configs that set ``gpu_ids``.

Also on resume (rank 0), temporary checkpoint files left by a process killed while
writing (``.<name>.pth.<pid>.<hex>.tmp`` of ``coupleface.utils.checkpoint_save.atomic_save``)
are removed from the work dir.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
import random
import re
from typing import Any, Mapping, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import get_dist_info, master_only
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop

from coupleface.registry import HOOKS
from coupleface.utils.random_streams import ITERATION_STREAM, seed_sequence

DATA_BATCH = Optional[Any]
_STATE_KEY = 'exact_resume'
_TMP_CHECKPOINT = re.compile(r'^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$')


def seed_iteration(seed: int, iteration: int, rank: int = 0) -> None:
    """Seed ``random``, numpy's global generator and torch (CPU and CUDA) for one iteration.

    The seeds are drawn from ``np.random.SeedSequence([seed, iteration, rank,
    ITERATION_STREAM])`` (``coupleface.utils.random_streams``): independent streams per
    iteration and rank, the same in any run.

    Args:
        seed: The run's seed (``runner.seed``).
        iteration: The global training iteration about to run (0-based).
        rank: This process's rank.
    """
    words = seed_sequence(seed, iteration, rank, ITERATION_STREAM).generate_state(4)
    random.seed(int(words[0]) << 32 | int(words[1]))
    np.random.seed(words)
    torch.manual_seed(int(words[2]) << 32 | int(words[3]))  # also every CUDA device


def resume_skip(saved: Mapping[str, Any], world_size: int, batch_size: int) -> Tuple[int, int]:
    """Batches each rank skips in the resumed epoch, and samples that are trained twice.

    Args:
        saved: ``checkpoint['exact_resume']``: ``epoch_iters``, ``world_size`` and
            ``batch_size`` (per rank) at save time.
        world_size: Ranks now.
        batch_size: Per-rank batch size now.

    Returns:
        tuple[int, int]: ``(skip_iters, repeated)``: the first ``skip_iters`` batches of
        the epoch are skipped on every rank; ``repeated`` of the samples done before the
        checkpoint (0 with the same ranks and batch size) are in the next global batch.
    """
    consumed = int(saved['epoch_iters']) * int(saved['batch_size']) * int(saved['world_size'])
    global_batch = int(batch_size) * int(world_size)
    skip_iters = consumed // global_batch
    return skip_iters, consumed - skip_iters * global_batch


@master_only
def remove_stale_checkpoint_temps(directory: str) -> list:
    """Delete ``atomic_save`` temp files in ``directory`` whose writer process is gone.

    Args:
        directory: A checkpoint directory.

    Returns:
        list: The removed paths.
    """
    removed = []
    if not osp.isdir(directory):
        return removed
    for name in os.listdir(directory):
        match = _TMP_CHECKPOINT.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
            continue  # the writer is still alive (another run in this directory)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        path = osp.join(directory, name)
        try:
            os.remove(path)
            removed.append(path)
        except OSError:
            pass
    return removed


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Resume inside an epoch with the same samples and random streams (see module doc).

    Needs a sampler with ``load_state_dict`` (``ResumableSampler`` or
    ``RelationSampler``) for the in-epoch position; with another sampler it logs that
    the resumed epoch restarts its data order (MMEngine's behaviour) and only the random
    streams are handled. ``IterBasedTrainLoop`` already skips consumed batches itself;
    there the hook only seeds the iterations.

    Args:
        reseed (bool): Re-seed the global random generators from ``(seed, iteration,
            rank)`` before every training iteration. Defaults to True.

    Examples:
        >>> default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=2000,
        ...                                      by_epoch=False, max_keep_ckpts=3))
        >>> train_dataloader = dict(sampler=dict(type='ResumableSampler', shuffle=True))
        >>> custom_hooks = [dict(type='ExactResumeHook')]
        >>> # python tools/train.py CONFIG --resume   (after a crash or a kill)
    """

    priority = 'VERY_HIGH'

    def __init__(self, reseed: bool = True) -> None:
        self.reseed = reseed
        self._loaded: Optional[dict] = None  # exact_resume state of the loaded checkpoint
        self._loaded_at: Optional[Tuple[int, int]] = None  # its (epoch, iter) meta
        self._epoch: Optional[int] = None  # position: epoch being trained ...
        self._epoch_iters = 0  # ... and iterations of it done
        self._resumed = False

    # ------------------------------------------------------------------ saving
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._epoch is None:  # not training
            return
        loader = runner.train_dataloader
        _, world_size = get_dist_info()
        sampler = getattr(loader, 'sampler', None)
        seed = getattr(sampler, 'seed', None)
        checkpoint[_STATE_KEY] = dict(
            epoch=int(self._epoch), epoch_iters=int(self._epoch_iters),
            world_size=int(world_size),
            batch_size=None if loader.batch_size is None else int(loader.batch_size),
            epoch_length=int(len(loader)),
            sampler_seed=None if seed is None else int(seed))

    # ------------------------------------------------------------------ loading
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta') or {}
        state = checkpoint.get(_STATE_KEY)
        self._loaded = dict(state) if isinstance(state, Mapping) else None
        self._loaded_at = (meta.get('epoch'), meta.get('iter'))

    def before_train(self, runner) -> None:
        self._epoch, self._epoch_iters = runner.epoch, 0
        resumed = runner.iter > 0 and self._loaded_at == (runner.epoch, runner.iter)
        if not resumed:
            return
        remove_stale_checkpoint_temps(runner.work_dir)
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return  # IterBasedTrainLoop advances its data iterator itself
        self._epoch_iters = self._restore_position(runner)
        self._resumed = True

    def _restore_position(self, runner) -> int:
        """Point the sampler at the resumed position; return the epoch's iterations done."""
        loader = runner.train_dataloader
        sampler = getattr(loader, 'sampler', None)
        _, world_size = get_dist_info()
        batch_size = loader.batch_size
        epoch, length = runner.epoch, len(loader)
        saved = self._loaded
        if saved is None:  # written without this hook: same ranks and epoch length assumed
            done = runner.iter - epoch * length
            if batch_size is None or not 0 <= done <= length:
                self._warn(f'checkpoint at iteration {runner.iter} has no "{_STATE_KEY}" '
                           'record and its position in the epoch cannot be inferred; epoch '
                           f'{epoch + 1} restarts its data order')
                return 0
            saved = dict(epoch=epoch, epoch_iters=done, world_size=world_size,
                         batch_size=batch_size, sampler_seed=None)
        if int(saved['epoch']) != epoch or saved.get('batch_size') is None \
                or batch_size is None:
            self._warn(f'cannot place the resume inside epoch {epoch + 1} '
                       f'(saved record {saved}); the epoch restarts its data order')
            return 0
        skip_iters, repeated = resume_skip(saved, world_size, batch_size)
        skip_iters = min(skip_iters, length)
        if (int(saved['world_size']), int(saved['batch_size'])) != (world_size, batch_size):
            self._warn(
                f'resuming on {world_size} rank(s) x batch {batch_size}, the checkpoint was '
                f"written by {saved['world_size']} rank(s) x batch {saved['batch_size']}: "
                f'epoch {epoch + 1} continues in the same global sample order from sample '
                f'{skip_iters * batch_size * world_size} ({repeated} samples trained twice), '
                'but batches are composed differently, the epoch has '
                f"{length} iterations instead of {saved.get('epoch_length', '?')}, and "
                'iteration-based schedules keep counting iterations: not bit-exact')
        if not hasattr(sampler, 'load_state_dict'):
            if saved['epoch_iters']:
                self._warn(f'{type(sampler).__name__} cannot skip samples: the first '
                           f"{saved['epoch_iters']} iterations of epoch {epoch + 1} are "
                           "trained again; use sampler=dict(type='ResumableSampler') for an "
                           'exact resume')
            return 0
        seed = saved.get('sampler_seed')
        sampler.load_state_dict(dict(seed=sampler.seed if seed is None else int(seed),
                                     epoch=epoch, samples_yielded=skip_iters * batch_size))
        print_log(f'exact resume: epoch {epoch + 1} continues after {skip_iters} of its '
                  f'{length} iterations ({skip_iters * batch_size} samples per rank skipped)',
                  logger='current')
        return skip_iters

    @staticmethod
    def _warn(message: str) -> None:
        print_log(f'exact resume: {message}', logger='current', level=logging.WARNING)

    # ------------------------------------------------------------------ position
    def before_train_epoch(self, runner) -> None:
        if self._resumed:  # the resumed epoch keeps the iterations restored above
            self._resumed = False
            return
        self._epoch, self._epoch_iters = runner.epoch, 0

    def before_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None) -> None:
        if self.reseed:
            rank, _ = get_dist_info()
            seed_iteration(runner.seed if runner.seed is not None else 0, runner.iter, rank)

    def after_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        self._epoch_iters += 1

    def after_train_epoch(self, runner) -> None:
        # by-epoch checkpoints (saved after this) and validation belong to the next epoch
        self._epoch, self._epoch_iters = runner.epoch + 1, 0
