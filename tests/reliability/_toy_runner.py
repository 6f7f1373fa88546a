"""A tiny in-process MMEngine training setup for the reliability tests.

The model draws from all three global random streams in its training step (dropout
from torch, a loss weight jitter from numpy and from Python ``random``), so a resume
that does not restore them ends with different weights. ``Runner``s use the
``coupleface`` scope (``ResumableSampler``, ``ExactResumeHook``, ``NanGuardHook``).
"""
import random
import uuid

import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import coupleface  # noqa: F401  (safe loading, atomic saving)
from coupleface.setup_env import register_all_modules

NUM_SAMPLES = 12
BATCH = 4  # 3 iterations per epoch
NUM_CLASSES = 3


class ToyFaces(Dataset):
    """Fixed random features with labels ``idx % 3``."""

    def __init__(self, n: int = NUM_SAMPLES):
        self.n = n
        self.metainfo = dict(num_classes=NUM_CLASSES)

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        gen = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(8, generator=gen), label=torch.tensor(idx % NUM_CLASSES))


class RandomToyModel(BaseModel):
    """Linear-dropout-linear classifier whose loss uses torch, numpy and Python randomness.

    ``nan_at``: ``{iteration (1-based): loss term}`` makes that term NaN there.
    """

    def __init__(self, nan_at=None, inf_grad_at=None):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(16, NUM_CLASSES)
        self.nan_at = dict(nan_at or {})
        self.inf_grad_at = set(inf_grad_at or ())
        self.calls = 0

    def forward(self, inputs, label=None, mode='tensor'):
        logits = self.fc2(self.drop(torch.relu(self.fc1(inputs))))
        if mode == 'loss':
            self.calls += 1
            jitter = 1.0 + 0.1 * float(np.random.rand()) + 0.1 * random.random()
            losses = dict(loss_cls=jitter * nn.functional.cross_entropy(logits, label),
                          loss_rad=0.1 * logits.pow(2).mean(), acc=torch.tensor(50.0))
            term = self.nan_at.get(self.calls)
            if term is not None:
                losses[term] = losses[term] * float('nan')
            if self.calls in self.inf_grad_at:
                losses['loss_cls'] = _InfGrad.apply(losses['loss_cls'])
            return losses
        if mode == 'predict':
            return [dict(score=logits.detach().sum())]
        return logits


class _InfGrad(torch.autograd.Function):
    """Identity forward, infinite gradient backward: a finite loss with overflowing grads."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float('inf')


class ToyMetric(BaseMetric):
    """Mean predicted score (the validation loop only has to run)."""

    def process(self, data_batch, data_samples):
        self.results.extend(float(s['score']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(score=float(np.mean(results)))


def make_runner(work_dir, *, max_epochs=3, hooks=('ExactResumeHook',), sampler='ResumableSampler',
                ckpt_interval=2, load_from=None, resume=False, validate=True, model=None,
                clip_grad=None, seed=0):
    """A Runner on ``ToyFaces``: iteration checkpoints every ``ckpt_interval`` iterations."""
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)  # the model is built before the Runner seeds anything
    optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
    if clip_grad is not None:
        optim_wrapper['clip_grad'] = clip_grad
    val = dict(val_dataloader=dict(dataset=ToyFaces(6), batch_size=3, num_workers=0,
                                   sampler=dict(type='DefaultSampler', shuffle=False),
                                   collate_fn=dict(type='default_collate')),
               val_cfg=dict(), val_evaluator=[ToyMetric()]) if validate else {}
    return Runner(
        model=model if model is not None else RandomToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'reliability_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=ToyFaces(), batch_size=BATCH, num_workers=0,
            sampler=dict(type=sampler, shuffle=True),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=optim_wrapper,
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4),
            dict(type='MultiStepLR', milestones=[2], gamma=0.5, by_epoch=True),
        ],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=ckpt_interval,
                                           by_epoch=False, max_keep_ckpts=-1),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type=h) if isinstance(h, str) else h for h in hooks],
        randomness=dict(seed=seed),
        load_from=None if load_from is None else str(load_from),
        resume=resume,
        default_scope='coupleface',
        **val,
    )
