"""Benchmark neighbour-identity mining: time and peak memory vs number of identities.

Each configuration runs in a fresh subprocess (so its peak RSS is its own) on random
unit-norm centers, with ``torch`` limited to ``--threads`` threads. Peak memory is the
process's peak resident set size (``VmHWM``, which restarts at exec, unlike ``ru_maxrss``;
torch's allocations are invisible to ``tracemalloc``), reported in total and above the RSS
before mining (Python, torch and the centers themselves). Low-precision runs also report
their agreement with the exact float32 neighbours of the same centers. ``CPU s`` (process
CPU time) and the 1-minute load average at the end of each run tell whether other
processes shared the cores: on a busy machine wall time is not the cost of mining.

Examples:
    python tools/analysis_tools/benchmark_mining.py
    python tools/analysis_tools/benchmark_mining.py --sizes 1000 10000 --chunk-size 2048
    python tools/analysis_tools/benchmark_mining.py --matmul-dtypes float32 bfloat16
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import tempfile
import time

from coupleface.utils.benchmarking import MiB, child_env, peak_rss_bytes, rss_bytes, run_json_child

TARGET_IDS, TARGET_GIB, TARGET_S = 100_000, 2.0, 60.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark mine_neighbour_identities')
    parser.add_argument('--sizes', type=int, nargs='+', default=[1000, 10_000, 100_000],
                        help='numbers of identities')
    parser.add_argument('--dim', type=int, default=512, help='embedding size')
    parser.add_argument('--k', type=int, default=8, help='neighbours per identity')
    parser.add_argument('--chunk-size', type=int, default=4096, help='block size')
    parser.add_argument('--matmul-dtypes', nargs='+', default=['float32', 'bfloat16'],
                        choices=['float32', 'bfloat16', 'float16'],
                        help='precisions of the block products')
    parser.add_argument('--threads', type=int, default=2, help='torch threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--worker', nargs=2, metavar=('SIZE', 'DTYPE'), help=argparse.SUPPRESS)
    parser.add_argument('--save-dir', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """Mine once and print one JSON line: seconds, peak and baseline RSS."""
    import numpy as np
    import torch

    from coupleface.mining import mine_neighbour_identities

    size, dtype = int(args.worker[0]), args.worker[1]
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    centers = torch.nn.functional.normalize(torch.randn(size, args.dim, generator=gen), dim=1)
    baseline = rss_bytes() / MiB
    cpu_start = time.process_time()
    start = time.perf_counter()
    neighbours, _ = mine_neighbour_identities(
        centers, args.k, chunk_size=args.chunk_size, progress=False,
        matmul_dtype=None if dtype == 'float32' else dtype)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    peak = peak_rss_bytes() / MiB
    np.save(osp.join(args.save_dir, f'{size}_{dtype}.npy'), neighbours.numpy())
    print(json.dumps(dict(size=size, dtype=dtype, seconds=seconds, cpu_seconds=cpu_seconds,
                          load=os.getloadavg()[0], peak_mib=peak,
                          baseline_mib=baseline)))


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    import numpy as np

    env = child_env(args.threads, mmap_threshold=None)
    print(f'mine_neighbour_identities: D={args.dim}, k={args.k}, chunk={args.chunk_size}, '
          f'{args.threads} threads, random unit centers')
    print(f'{"identities":>10} {"matmul":>8} {"time s":>8} {"CPU s":>8} {"Msim/s":>8} '
          f'{"peak MiB":>9} {"+mining MiB":>11} {"agree":>6} {"load":>5}')
    results = []
    with tempfile.TemporaryDirectory() as save_dir:
        for size in args.sizes:
            for dtype in args.matmul_dtypes:
                cmd = [osp.abspath(__file__), '--worker', str(size), dtype,
                       '--dim', str(args.dim), '--k', str(args.k), '--chunk-size',
                       str(args.chunk_size), '--threads', str(args.threads), '--seed',
                       str(args.seed), '--save-dir', save_dir]
                try:
                    res = run_json_child(cmd, env)
                except RuntimeError as e:
                    raise SystemExit(f'worker failed ({size}, {dtype}):\n{e}')
                exact = osp.join(save_dir, f'{size}_float32.npy')
                agree = ''
                if dtype != 'float32' and osp.exists(exact):
                    same = np.load(exact) == np.load(osp.join(save_dir, f'{size}_{dtype}.npy'))
                    agree = f'{same.mean():.4f}'
                results.append(res)
                print(f'{size:>10} {dtype:>8} {res["seconds"]:>8.2f} {res["cpu_seconds"]:>8.2f} '
                      f'{size * size / res["seconds"] / 1e6:>8.0f} {res["peak_mib"]:>9.0f} '
                      f'{res["peak_mib"] - res["baseline_mib"]:>11.0f} {agree:>6} '
                      f'{res["load"]:>5.1f}', flush=True)
    for res in results:
        if res['size'] == TARGET_IDS and args.dim == 512:
            ok = res['seconds'] <= TARGET_S and res['peak_mib'] / 1024 < TARGET_GIB
            print(f'target (100k x 512-d: < {TARGET_GIB:g} GiB, <= {TARGET_S:g} s on 2 '
                  f'cores) with {res["dtype"]} on {args.threads} thread(s): '
                  f'{"met" if ok else "missed"} ({res["seconds"]:.1f} s wall, '
                  f'{res["cpu_seconds"]:.1f} CPU-s, {res["peak_mib"] / 1024:.2f} GiB peak, '
                  f'load {res["load"]:.1f})')


if __name__ == '__main__':
    main()
