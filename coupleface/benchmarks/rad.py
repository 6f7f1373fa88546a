"""Section ``rad``: FCD + RAD forward+backward time and peak memory vs batch size.

Global batches single process (B_local = B_global), and B_local anchors against B_global
partners (the other ranks' teacher embeddings passed as extra partners, the shape one rank
of ``B_global / B_local`` ranks computes), with a fit showing memory proportional to
B_local x B_global.
"""
from __future__ import annotations

import argparse
from typing import List, Sequence, Tuple

from coupleface.utils.benchmarking import (
    MMAP_THRESHOLD,
    PeakMemory,
    emit,
    md_table,
    median,
    mib,
    round_robin,
)

from .common import EMBED_DIM, group_labels, run_memory_jobs


def _rad_inputs(local: int, partners: int, dim: int, device: str, seed: int = 0):
    """Rank 0 of ``partners / local`` ranks: its anchors and the other ranks' teachers."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    labels = group_labels(partners, max(partners, 4), gen)  # groups of 4 images
    teacher = torch.randn(partners, dim, generator=gen)
    student = (teacher[:local] + 0.5 * torch.randn(local, dim, generator=gen))
    student = student.to(device).requires_grad_(True)
    extra = (teacher[local:].to(device), labels[local:].to(device)) if partners > local \
        else (None, None)
    return student, teacher[:local].to(device), labels[:local].to(device), extra


def _rad_losses(device: str):
    from coupleface.models.losses import FeatureConsistencyLoss, RelationAwareDistillationLoss
    # cross / l2: the other ranks' partners are passed as teacher rows (bank_teacher), the
    # simulated rank's shape; the student relation builds the same B_local x B_global matrices
    rad = RelationAwareDistillationLoss(relation='cross', distance='l2', num_negatives=16)
    return FeatureConsistencyLoss(mode='l2').to(device), rad.to(device)


def _rad_step(fcd, rad, student, teacher, labels, extra) -> None:
    bank_t, bank_labels = extra
    loss = fcd(student, teacher) + rad(student, teacher, labels, bank_t, bank_labels)
    loss.backward()
    student.grad = None


def rad_memory_job(device: str, local: int, partners: int, dim: int) -> dict:
    """Peak memory of one FCD + RAD forward+backward above its inputs."""
    fcd, rad = _rad_losses(device)
    inputs = _rad_inputs(local, partners, dim, device)
    with PeakMemory(device) as mem:
        _rad_step(fcd, rad, *inputs)
    return dict(peak_bytes=mem.bytes, exact=mem.exact)


def fit_pairs(points: List[Tuple[int, int, float]]) -> Tuple[float, float, float]:
    """Fit ``mem = alpha * B_local * B_global + beta * (B_local + B_global)``.

    ``alpha``: bytes per anchor-partner pair (the relation matrices); ``beta``: bytes per
    embedding row (normalised copies, gathered partners, gradients: O(B x D)). Least squares
    on relative errors, so small batches count as much as large ones.

    Returns:
        ``(alpha, beta, largest relative residual)``.
    """
    import numpy as np
    bl = np.array([p[0] for p in points], dtype=np.float64)
    bg = np.array([p[1] for p in points], dtype=np.float64)
    y = np.array([p[2] for p in points], dtype=np.float64)
    A = np.stack([bl * bg, bl + bg], axis=1)
    w = 1.0 / np.maximum(y, 1.0)
    (alpha, beta), *_ = np.linalg.lstsq(A * w[:, None], y * w, rcond=None)
    pred = A @ np.array([alpha, beta])
    return float(alpha), float(beta), float(np.max(np.abs(pred - y) * w))


def _loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    import numpy as np
    if len(x) < 2:
        return float('nan')
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def bench_rad(args: argparse.Namespace) -> dict:
    """FCD + RAD time and peak memory per (B_local, B_global), and the memory fit.

    Args:
        args: The options of ``tools/analysis_tools/benchmark.py``.

    Returns:
        dict: ``points`` (peak bytes, median time, fitted bytes per configuration) and
        ``fit`` (bytes per pair and per row, log-log slopes).
    """
    import torch

    device, dim = args.device, EMBED_DIM
    sizes = sorted(set(args.rad_sizes))
    local = args.rad_local
    configs = [(b, b) for b in sizes] + [(local, b) for b in sizes if b > local]
    # memory
    if device == 'cuda':
        mem = [rad_memory_job('cuda', bl, bg, dim)['peak_bytes'] for bl, bg in configs]
    else:
        jobs = [dict(local=bl, partners=bg, dim=dim) for bl, bg in configs]
        res = run_memory_jobs('rad', f'{__name__}:rad_memory_job', jobs,
                              dict(local=8, partners=16), args.isolate, args.threads)
        mem = [r['peak_bytes'] for r in res]
    # time, interleaved over every configuration
    fcd, rad = _rad_losses(device)
    fns = {}
    for bl, bg in configs:
        inputs = _rad_inputs(bl, bg, dim, device)
        fns[(bl, bg)] = (lambda inputs=inputs: _rad_step(fcd, rad, *inputs))
    times = round_robin(fns, args.repeats, args.warmup, device)
    del fns
    if device == 'cuda':
        torch.cuda.empty_cache()

    pts = [(bl, bg, m) for (bl, bg), m in zip(configs, mem)]
    alpha, beta, resid = fit_pairs(pts)
    full = [(bg, m) for bl, bg, m in pts if bl == bg]
    sim = [(bg, m) for bl, bg, m in pts if bl == local and bg > local]
    slope_full = _loglog_slope([b for b, _ in full], [m for _, m in full])
    slope_sim = _loglog_slope([b for b, _ in sim], [m for _, m in sim])
    t0 = median(times[configs[0]])
    rows, result = [], dict(dim=dim, device=device, points=[], fit=dict(
        bytes_per_pair=alpha, bytes_per_row=beta, max_rel_residual=resid,
        loglog_slope_single_process=slope_full, loglog_slope_fixed_local=slope_sim))
    for (bl, bg), m in zip(configs, mem):
        med = median(times[(bl, bg)])
        fit = alpha * bl * bg + beta * (bl + bg)
        result['points'].append({'local': bl, 'global': bg, 'peak_bytes': m, 'median_s': med,
                                 'times_s': times[(bl, bg)], 'fit_bytes': fit})
        rows.append([f'{bl:,}', f'{bg:,}', f'{med * 1e3:,.1f}', f'{med / t0:.2f}',
                     mib(m), mib(fit), f'{m / (bl * bg):.1f}'])
    method = ('torch.cuda.max_memory_allocated above the inputs' if device == 'cuda' else
              'peak RSS (VmHWM, reset via /proc/self/clear_refs) above the RSS with the inputs '
              f'allocated, in {"a fresh worker process per row" if args.isolate else "one worker"}'
              f' with MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}')
    notes = [
        f'`FeatureConsistencyLoss(l2)` + `RelationAwareDistillationLoss(cross, l2, '
        f'relation_aware, num_negatives=16)`, d = {dim}, groups of 4 images per identity, '
        f'forward + backward, {device}. Rows with B_local = B_global are one process on the '
        f'whole batch; rows with B_local = {local} are one rank\'s share: {local} anchors '
        f'against B_global partners (the other ranks\' teacher embeddings passed as '
        '`bank_teacher` partners, the same matrices `all_gather` would give).',
        f'Memory: {method}. Time: median of {args.repeats} interleaved rounds, ratio to the '
        'first row.']
    after = [
        f'Fit over all rows: memory = {alpha:.1f} B x B_local x B_global + {beta:,.0f} B x '
        f'(B_local + B_global) (relation matrices + O(B x D) embedding copies; largest '
        f'relative residual {resid:.1%}). Log-log slope of memory vs B_global: '
        f'{slope_full:.2f} with B_local = B_global (B_local x B_global = B^2), '
        f'{slope_sim:.2f} with B_local = {local} fixed: memory grows with B_local x '
        'B_global, linearly in B_global for a fixed local batch (a B_global^2 term would give '
        'a slope of 2 there).']
    emit('RAD + FCD memory and time', notes, md_table(
        ['B_local', 'B_global', 'fwd+bwd ms', 'time ratio', 'peak MiB', 'fit MiB',
         'bytes / (B_local x B_global)'], rows), after)
    return result
