"""Shared pieces of the benchmark sections: models at a size, BN calibration, batch labels,
and CPU memory jobs in fresh child processes (docs/benchmarks.md).

``tools/analysis_tools/benchmark.py`` is the command line; each section is a module of
this package (:mod:`.step`, :mod:`.loader`, :mod:`.rad`, :mod:`.mining`, :mod:`.head`,
:mod:`.students`); the measuring itself is :mod:`coupleface.utils.benchmarking`.
"""
from __future__ import annotations

import math
import re
from typing import Dict, List

from coupleface.utils.benchmarking import run_jobs_in_children

#: Embedding size of every benchmarked model.
EMBED_DIM = 512


def backbone_config(name: str, size: int, embedding_size: int = EMBED_DIM,
                    with_cp: bool = False) -> dict:
    """``mobilefacenet`` / ``iresnet50`` ... -> a backbone config at ``size`` px."""
    name = name.lower()
    depth = re.fullmatch(r'(?:iresnet|r)(\d+)', name)
    if name in ('mobilefacenet', 'mbf'):
        cfg = dict(type='MobileFaceNet', input_size=size, embedding_size=embedding_size)
    elif depth:
        cfg = dict(type='IResNet', arch=int(depth.group(1)), input_size=size,
                   embedding_size=embedding_size)
    else:
        raise ValueError(f'unknown model {name!r}: use mobilefacenet or iresnet18/34/50/100/200')
    if with_cp:
        cfg['with_cp'] = True
    return cfg


def pretty_name(name: str) -> str:
    """``mobilefacenet`` -> ``MobileFaceNet``, ``iresnet50`` -> ``IResNet-50``."""
    name = name.lower()
    if name in ('mobilefacenet', 'mbf'):
        return 'MobileFaceNet'
    return 'IResNet-' + re.sub(r'^(iresnet|r)', '', name)


def calibrate_bn(model, size: int, batches: int = 2, batch_size: int = 8, seed: int = 0):
    """BatchNorm statistics of random inputs, so a random-weight model in eval mode keeps
    finite, well-scaled activations (inf/NaN or denormals would distort timings)."""
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model.extract_feat(torch.rand(batch_size, 3, size, size, generator=gen) * 2 - 1)
    return model.eval()


def group_labels(batch: int, num_classes: int, gen, per_identity: int = 4):
    """Labels of a RelationSampler-like batch: identities with ``per_identity`` images."""
    import torch
    ids = torch.randperm(num_classes, generator=gen)[:math.ceil(batch / per_identity)]
    return ids.repeat_interleave(per_identity)[:batch]


def run_memory_jobs(kind: str, target: str, jobs: List[dict], warm: Dict[str, int],
                    isolate: bool, threads: int) -> List[dict]:
    """Run CPU memory jobs ``target(device='cpu', **job)`` in fresh child processes.

    Args:
        kind: Name stored with each result (``'rad'``, ``'head'``, ``'mining'``).
        target: ``'module:function'`` of the job.
        jobs: Keyword arguments of each call.
        warm: Overrides that make a job tiny (same code path, negligible memory); each child
            runs the tiny job once before the measured ones, so first-call costs (kernels,
            thread pools) stay out of the peak.
        isolate: A fresh child per job (True) or one for all.
        threads: torch threads of the children.

    Returns:
        list: ``dict(job, kind=kind, **result)`` per job.
    """
    specs = [dict(target=target, kwargs=dict(job, device='cpu'),
                  warmup=dict(job, device='cpu', **warm)) for job in jobs]
    results = run_jobs_in_children(specs, isolate, threads)
    return [dict(job, kind=kind, **res) for job, res in zip(jobs, results)]
