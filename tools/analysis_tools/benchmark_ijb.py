"""Benchmark IJB-C-sized template pair scoring: pairs/s and peak memory.

Scores ``--pairs`` template pairs (IJB-C 1:1: 15,658,489) over ``--templates`` templates
(23,124) of ``--dim``-d random unit features with
:func:`coupleface.evaluation.functional.score_template_pairs`. Two pair layouts:

* ``ijbc`` (default): as IJB-C's list, every pair is (one of 3,531 gallery templates, one of the
  19,593 probe templates), listed grouped by gallery template;
* ``random``: both templates uniform over all templates, unsorted (harder: the pairs are
  sorted first and the blocks are sparser).

Peak memory is the process's peak resident set size during scoring (``VmHWM`` after resetting
it through ``/proc/self/clear_refs``; the inputs, i.e. features, pair ids and the interpreter,
are included) and the ``tracemalloc`` peak of the allocations made by the scoring call itself.
``--fraction`` scores only that share of the pairs and extrapolates the time linearly (said so
in the output). ``--with-roc`` also times TAR@FAR on the scores (random labels, IJB-C's 19,557
positives at full size).

Examples:
    python tools/analysis_tools/benchmark_ijb.py
    python tools/analysis_tools/benchmark_ijb.py --layout random --method gather --fraction 0.1
    python tools/analysis_tools/benchmark_ijb.py --threads 1 --with-roc
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc

from coupleface.utils.benchmarking import MiB, peak_rss_bytes, reset_peak_rss, rss_bytes

IJBC_PAIRS, IJBC_TEMPLATES, IJBC_GALLERY, IJBC_POSITIVES = 15_658_489, 23_124, 3_531, 19_557
LIMIT_GIB = 2.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark IJB template pair scoring')
    parser.add_argument('--pairs', type=int, default=IJBC_PAIRS, help='number of pairs')
    parser.add_argument('--templates', type=int, default=IJBC_TEMPLATES,
                        help='number of templates')
    parser.add_argument('--gallery', type=int, default=IJBC_GALLERY,
                        help='gallery templates of the ijbc layout')
    parser.add_argument('--dim', type=int, default=512, help='feature size')
    parser.add_argument('--layout', choices=['ijbc', 'random'], default='ijbc')
    parser.add_argument('--method', choices=['auto', 'matmul', 'gather'], default='auto')
    parser.add_argument('--chunk-size', type=int, default=100_000, help='pairs per gather chunk')
    parser.add_argument('--fraction', type=float, default=1.0,
                        help='score this share of the pairs and extrapolate the time')
    parser.add_argument('--threads', type=int, default=None, help='BLAS threads (default: '
                        "the library's)")
    parser.add_argument('--with-roc', action='store_true', help='also time TAR@FAR')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the figures to this JSON file')
    return parser.parse_args(argv)


def make_inputs(args: argparse.Namespace, num_pairs: int):
    import numpy as np

    rng = np.random.default_rng(args.seed)
    feats = rng.standard_normal((args.templates, args.dim), dtype=np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    ids = np.arange(args.templates, dtype=np.int64) * 7 + 1  # sparse ids, as IJB
    if args.layout == 'ijbc':
        gallery = min(args.gallery, args.templates - 1)
        t1 = ids[np.sort(rng.integers(0, gallery, num_pairs))]
        t2 = ids[rng.integers(gallery, args.templates, num_pairs)]
    else:
        t1 = ids[rng.integers(0, args.templates, num_pairs)]
        t2 = ids[rng.integers(0, args.templates, num_pairs)]
    return feats, ids, t1, t2


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not 0 < args.fraction <= 1:
        raise SystemExit('error: --fraction must be in (0, 1]')
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    from coupleface.evaluation.functional import score_template_pairs, tar_at_far

    rss_imports = rss_bytes() / MiB  # interpreter, numpy, torch (via coupleface)
    num_pairs = max(1, int(round(args.pairs * args.fraction)))
    feats, ids, t1, t2 = make_inputs(args, num_pairs)
    input_mib = (feats.nbytes + ids.nbytes + t1.nbytes + t2.nbytes) / 2**20
    limits = threadpool_limits(args.threads) if args.threads else None
    threads = max((p.get('num_threads', 1) for p in threadpool_info()), default=1)

    rss_before = rss_bytes() / MiB
    reset = reset_peak_rss()
    tracemalloc.start()
    start = time.perf_counter()
    cpu_start = time.process_time()
    scores = score_template_pairs(feats, ids, t1, t2, chunk_size=args.chunk_size,
                                  method=args.method)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    peak_rss = peak_rss_bytes() / MiB if reset else float('nan')

    out = dict(pairs=num_pairs, full_pairs=args.pairs, templates=args.templates, dim=args.dim,
               layout=args.layout, method=args.method, chunk_size=args.chunk_size,
               blas_threads=threads, seconds=round(seconds, 3),
               cpu_seconds=round(cpu_seconds, 3), pairs_per_s=round(num_pairs / seconds),
               input_mib=round(input_mib, 1), rss_imports_mib=round(rss_imports, 1),
               rss_before_mib=round(rss_before, 1),
               peak_rss_mib=round(peak_rss, 1), scoring_alloc_peak_mib=round(traced_peak, 1),
               load_avg_1min=round(os.getloadavg()[0], 2))
    extrapolated = args.fraction < 1
    if extrapolated:
        out['extrapolated_full_seconds'] = round(seconds * args.pairs / num_pairs, 1)
    print(f'{num_pairs:,} pairs ({args.layout} layout) over {args.templates:,} templates of '
          f'{args.dim}-d features, method {args.method}, {threads} BLAS thread(s):')
    print(f'  {seconds:.2f} s ({cpu_seconds:.2f} s CPU) = {num_pairs / seconds:,.0f} pairs/s'
          + (f'; full {args.pairs:,} pairs extrapolated: {out["extrapolated_full_seconds"]} s'
             f' (a {args.fraction:.0%} run, linear extrapolation)' if extrapolated else ''))
    print(f'  peak RSS during scoring {peak_rss:,.0f} MiB = {rss_imports:,.0f} MiB interpreter '
          f'and imports (torch) + {peak_rss - rss_imports:,.0f} MiB inputs and scoring (inputs '
          f'{input_mib:,.0f} MiB; the scoring call allocates at most {traced_peak:,.0f} MiB); '
          f'load average {out["load_avg_1min"]}')
    within = peak_rss / 1024 < LIMIT_GIB if reset else traced_peak / 1024 < LIMIT_GIB
    print(f'  under the {LIMIT_GIB:.0f} GiB bound: {"yes" if within else "NO"}')
    out['under_limit'] = bool(within)

    if args.with_roc:
        rng = np.random.default_rng(args.seed + 1)
        positives = max(1, int(round(IJBC_POSITIVES * num_pairs / IJBC_PAIRS)))
        labels = np.zeros(num_pairs, bool)
        labels[rng.choice(num_pairs, positives, replace=False)] = True
        reset_peak_rss()
        start = time.perf_counter()
        tar_at_far(scores, labels)
        out['roc_seconds'] = round(time.perf_counter() - start, 3)
        out['roc_peak_rss_mib'] = round(peak_rss_bytes() / MiB, 1)
        print(f'  TAR@FAR (6 targets) on the scores: {out["roc_seconds"]:.2f} s, peak RSS '
              f'{out["roc_peak_rss_mib"]:,.0f} MiB')
    if limits is not None:
        limits.restore_original_limits()
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == '__main__':
    main()
    sys.exit(0)
