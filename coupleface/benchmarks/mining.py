"""Section ``mining``: ``mine_neighbour_identities`` time and peak memory vs number of
identities, on the random centers ``tools/analysis_tools/benchmark_mining.py`` draws, a
fresh child process per size on CPU."""
from __future__ import annotations

import argparse
import os
import time

from coupleface.utils.benchmarking import PeakMemory, emit, md_table, mib, plural, sync

from .common import EMBED_DIM, run_memory_jobs


def mining_job(device: str, size: int, dtype: str, dim: int = EMBED_DIM, k: int = 8,
               chunk_size: int = 4096, seed: int = 0) -> dict:
    """Mine ``k`` neighbours of ``size`` random unit centers: time, CPU time, peak memory.

    The centers are drawn as ``benchmark_mining.py`` draws them (same seed, same values).
    """
    import torch

    from coupleface.mining import mine_neighbour_identities

    gen = torch.Generator().manual_seed(seed)
    centers = torch.nn.functional.normalize(torch.randn(size, dim, generator=gen), dim=1)
    centers = centers.to(device)
    with PeakMemory(device) as mem:
        cpu_start = time.process_time()
        sync(device)
        start = time.perf_counter()
        mine_neighbour_identities(centers, k, chunk_size=chunk_size, progress=False,
                                  matmul_dtype=None if dtype == 'float32' else dtype)
        sync(device)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    return dict(seconds=seconds, cpu_seconds=cpu_seconds, peak_bytes=mem.bytes,
                exact=mem.exact, load=os.getloadavg()[0])


def bench_mining(args: argparse.Namespace) -> dict:
    """Mining time and peak memory per number of identities and matmul precision.

    Args:
        args: The options of ``tools/analysis_tools/benchmark.py``.

    Returns:
        dict: ``runs`` (seconds, CPU seconds, peak bytes, load per size and precision).
    """
    jobs = [dict(size=size, dtype=dtype, seed=args.seed)
            for size in args.mining_sizes for dtype in args.mining_dtypes]
    if args.device == 'cuda':
        runs = [dict(job, kind='mining', **mining_job('cuda', job['size'], job['dtype'],
                                                       seed=args.seed)) for job in jobs]
    else:
        runs = run_memory_jobs('mining', f'{__name__}:mining_job', jobs, dict(size=64),
                               args.isolate, args.threads)
    rows, result = [], dict(dim=EMBED_DIM, k=8, chunk_size=4096, runs=runs)
    for res in runs:
        size = res['size']
        rows.append([f'{size:,}', res['dtype'], f'{res["seconds"]:.2f}',
                     f'{res["cpu_seconds"]:.2f}', f'{size * size / res["seconds"] / 1e6:,.0f}',
                     mib(res['peak_bytes']), f'{res["load"]:.1f}'])
    where = ('each size in a fresh worker process' if args.isolate and args.device == 'cpu'
             else 'one process')
    mem = ('torch.cuda.max_memory_allocated above the centers' if args.device == 'cuda' else
           'peak RSS above the RSS with the centers allocated (as in "rad")')
    notes = [f'`mine_neighbour_identities` (k = 8, chunk 4096, D = {EMBED_DIM}) on random '
             'unit-norm centers (drawn as tools/analysis_tools/benchmark_mining.py draws them), '
             f'{where}, {plural(args.threads)}, {args.device}. "CPU s" is the process\'s CPU '
             'time (on CPU, wall > CPU / threads means other jobs held the cores); "load" the '
             '1-minute load average after the run; Msim/s = identities^2 / wall s (constant '
             f'when time grows as C^2). Peak memory: {mem}.']
    emit('Relation mining', notes, md_table(
        ['identities', 'matmul', 'wall s', 'CPU s', 'Msim/s', 'peak MiB', 'load'], rows,
        'rl' + 'r' * 5))
    return result
