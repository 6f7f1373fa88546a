"""Speed and memory benchmark suite of coupleface, every figure a ratio measured in one run.

Sections (``--sections``, comma-separated; all by default):

* ``step``: train-step time (data preprocessor, forward, loss, backward, SGD step) of
  (a) the student alone, (b) student + online teacher with FCD, (c) CoupleFace online
  (FCD + RAD), (d) CoupleFace with a TeacherBank (written to a temporary folder first),
  as ratios to (a), with (a') a second copy of (a) whose ratio is the run's noise floor,
  plus the cost of the bank lookup, of FCD + RAD and of the data preprocessor alone.
  Defaults: IResNet-50 teacher -> MobileFaceNet student, batch 64, 112 px, ArcFace head
  over 1,000 classes. Variants are interleaved round-robin (each round in a new random
  order), warm-up rounds are excluded, medians are reported.
* ``loader``: images/s of the RecordIO data path (``MXFaceDataset`` + pipeline, built as
  ``benchmark_dataloader.py`` builds it) against a raw ``cv2.imdecode`` DataLoader,
  interleaved.
* ``rad``: FCD + RAD forward+backward time and peak memory at global batches 512 ... 8192
  (d = 512), single process (B_local = B_global), and B_local = 512 anchors against
  B_global partners (the other ranks' teacher embeddings passed as extra partners, the
  shape one rank of ``B_global / 512`` ranks computes), with fits showing memory
  proportional to B_local x B_global.
* ``mining``: ``mine_neighbour_identities`` time and peak memory vs number of identities,
  on the random centers ``benchmark_mining.py`` draws, a fresh worker process per size.
* ``head``: memory and step time vs number of identities for the dense ArcFace head and
  PartialFC (sample rate 1.0 / 0.3 / 0.1) on one rank, computed from shapes and measured,
  and the number of identities this allows on 8 ranks x 80 GB.
* ``students``: parameters, FLOPs (``mmengine.analysis``) and ONNX Runtime latency at
  batch 1 on CPU of MobileFaceNet and IResNet-18/50/100.

Memory on CPU: torch's CPU allocations are invisible to ``tracemalloc``, so peak memory
is the peak resident set size of a worker process (``VmHWM``, reset through
``/proc/self/clear_refs`` before each measurement) minus its resident size just before,
with glibc's ``MALLOC_MMAP_THRESHOLD_`` pinned to 64 KiB so that every tensor of 64 KiB
or more is its own mapping, returned to the system when freed (otherwise the heap keeps
freed memory and later allocations do not show). By default each configuration runs in a
fresh worker process (``--no-isolate``: one worker per section). On CUDA the figures are
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.

On a CPU shared with other jobs, use ``--threads 1``: with more threads than free cores,
every OpenMP barrier waits for a descheduled thread and the same step varies by 2-3x.

On CUDA (``--device cuda``) timings are bracketed by ``torch.cuda.synchronize()``; with
``--dtype bf16`` the forward passes run under ``torch.autocast(dtype=torch.bfloat16)``
(losses and margin maths stay fp32, as in training).

This script is the command line; each section is a module of :mod:`coupleface.benchmarks`
(``step.py``, ``loader.py``, ``rad.py``, ``mining.py``, ``head.py``, ``students.py``) and the
measuring (peak memory, child processes, interleaved rounds, tables) is
:mod:`coupleface.utils.benchmarking`.

Examples:
    python tools/analysis_tools/benchmark.py --quick --threads 1 --out work_dirs/bench.json
    python tools/analysis_tools/benchmark.py --sections step,rad --repeats 5
    python tools/analysis_tools/benchmark.py --sections step --device cuda --dtype bf16 \\
        --teacher iresnet100 --batch-size 512 --out gpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from coupleface.benchmarks import SECTIONS
from coupleface.utils.benchmarking import child_main, machine_info, plural


# ----------------------------------------------------------------------------- arguments
def _int_list(text: str, minimum: int = 1) -> List[int]:
    try:
        values = [int(float(v)) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {text!r}')
    if not values or min(values) < minimum:
        raise argparse.ArgumentTypeError(f'expected integers >= {minimum}, got {text!r}')
    return values


def _workers_list(text: str) -> List[int]:
    return _int_list(text, minimum=0)


def _str_list(text: str) -> List[str]:
    return [v.strip() for v in text.split(',') if v.strip()]


#: The options of each section, as ``(flag, add_argument keywords)``, one argument group each.
SECTION_OPTIONS: Dict[str, List[Tuple[str, Dict[str, Any]]]] = {
    'step': [
        ('--student', dict(default='mobilefacenet',
                           help='mobilefacenet or iresnet{18,34,50,100,200}')),
        ('--teacher', dict(default='iresnet50', help='as --student')),
        ('--batch-size', dict(type=int, default=64)),
        ('--img-size', dict(type=int, default=112, help='input side of "step" and "students"')),
        ('--num-classes', dict(type=int, default=1000, help='ArcFace classes')),
        ('--bank-samples', dict(type=int,
                                help='teacher bank rows (default 100000, 20000 with --quick)')),
        ('--partner-samples', dict(
            type=int, default=16, help='mined partner images appended to the batch in variant '
            '(e) (PartnerSampler + partner_samples; 0 leaves (e) out)')),
        ('--with-cp', dict(action='store_true', help='gradient-checkpoint the student backbone')),
    ],
    'loader': [
        ('--loader-samples', dict(type=int, help='records written and images timed (default '
                                  '3000 / 1500)')),
        ('--loader-workers', dict(type=_workers_list, default=None,
                                  help='DataLoader workers (default 0,<threads>)')),
    ],
    'rad': [
        ('--rad-sizes', dict(type=_int_list, default=[512, 1024, 2048, 4096, 8192],
                             help='global batch sizes')),
        ('--rad-local', dict(type=int, default=512,
                             help='B_local of the simulated multi-rank series')),
    ],
    'mining': [
        ('--mining-sizes', dict(type=_int_list, help='identities (default 1000,10000,50000,'
                                '100000; no 100000 with --quick)')),
        ('--mining-dtypes', dict(type=_str_list, default=['float32', 'bfloat16'],
                                 help='matmul precisions of the kNN blocks')),
    ],
    'head': [
        ('--head-classes', dict(type=_int_list, help='identities (default 1000,10000,100000; '
                                '+1000000 with --big)')),
        ('--head-batch', dict(type=int, default=128, help='batch of the head step')),
        ('--capacity-ranks', dict(type=int, default=8)),
        ('--capacity-gib', dict(type=float, default=80.0, help='memory per rank')),
        ('--capacity-reserve-gib', dict(type=float, default=16.0, help='per-rank memory kept '
                                        'for the backbone, activations, CUDA context')),
        ('--capacity-local-batch', dict(type=int, default=128, help='per-rank batch; PartialFC '
                                        'computes logits of the global batch')),
    ],
    'students': [
        ('--students', dict(type=_str_list,
                            default=['mobilefacenet', 'iresnet18', 'iresnet50', 'iresnet100'])),
        ('--latency-runs', dict(type=int, help='timed onnxruntime runs per model per round '
                                '(default 20 / 10)')),
    ],
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='coupleface speed and memory benchmarks (ratios measured in one run)',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--sections', type=_str_list, default=list(SECTIONS),
                        help=f'comma-separated subset of {",".join(SECTIONS)}')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--dtype', choices=['fp32', 'bf16'], default='fp32',
                        help='bf16: forward passes under torch.autocast(bfloat16)')
    parser.add_argument('--quick', action='store_true',
                        help='fewer repeats, no 100k-identity mining, smaller teacher bank')
    parser.add_argument('--big', action='store_true', help='also 1M identities in "head"')
    parser.add_argument('--out', help='write all results to this JSON file')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1,
                        help='torch / onnxruntime / mining threads')
    parser.add_argument('--repeats', type=int, help='timed rounds (default 5, 3 with --quick)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    parser.add_argument('--isolate', action=argparse.BooleanOptionalAction, default=True,
                        help='a fresh worker process per memory measurement (CPU)')
    parser.add_argument('--seed', type=int, default=0)
    for name, options in SECTION_OPTIONS.items():
        group = parser.add_argument_group(name)
        for flag, kwargs in options:
            group.add_argument(flag, **kwargs)
    parser.add_argument('--worker', help=argparse.SUPPRESS)  # internal: JSON job spec
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f'unknown sections {unknown}; choose from {",".join(SECTIONS)}')
    if args.device == 'cuda' and args.worker is None:
        import torch
        if not torch.cuda.is_available():
            parser.error('--device cuda but torch.cuda.is_available() is False')
    if args.batch_size < 4:
        parser.error('--batch-size must be >= 4 (4 images per identity)')
    quick = args.quick
    args.repeats = args.repeats or (3 if quick else 5)
    args.bank_samples = args.bank_samples or (20_000 if quick else 100_000)
    args.loader_samples = args.loader_samples or (1500 if quick else 3000)
    args.loader_workers = args.loader_workers or sorted({0, args.threads})
    args.mining_sizes = args.mining_sizes or (
        [1000, 10_000, 50_000] + ([] if quick else [100_000]))
    args.head_classes = args.head_classes or (
        [1000, 10_000, 100_000] + ([1_000_000] if args.big else []))
    args.latency_runs = args.latency_runs or (10 if quick else 20)
    return args


# ------------------------------------------------------------------------------- main
def section_runners(args: argparse.Namespace, tmp: str) -> Dict[str, Callable[[], dict]]:
    """``{section: a call that runs it}`` (each section module imported only when run)."""
    from coupleface.benchmarks import head, loader, mining, rad, step, students
    return {'step': lambda: step.bench_step(args, tmp),
            'loader': lambda: loader.bench_loader(args, tmp),
            'rad': lambda: rad.bench_rad(args), 'mining': lambda: mining.bench_mining(args),
            'head': lambda: head.bench_head(args),
            'students': lambda: students.bench_students(args, tmp)}


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the chosen sections, print them as Markdown, return (and save) their figures."""
    args = parse_args(argv)
    if args.worker:  # a job spec of coupleface.utils.benchmarking.run_jobs_in_children
        child_main(args.worker)
        return {}
    import torch
    torch.set_num_threads(args.threads)
    info = machine_info()
    print(f'# coupleface benchmark ({"quick" if args.quick else "full"}): {info["date"]}')
    print(f'CPU: {info["cpu"]} ({info["cpu_count"]} cores), torch {info["torch"]}, '
          f'{plural(args.threads)}, device {args.device}, {args.dtype}'
          + (f', GPU {info["gpu"]}' if args.device == 'cuda' else '')
          + f'; 1-min load average at start {info["load_start"]:.2f}')
    if info['load_start'] > (info['cpu_count'] or 1) and args.threads > 1:
        print('note: the machine is oversubscribed (load > cores): OpenMP threads wait for '
              'each other at every barrier; --threads 1 gives steadier ratios')
    results: Dict[str, Any] = dict(machine=info, args={k: v for k, v in vars(args).items()
                                                       if k != 'worker'})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix='coupleface_bench_') as tmp:
        runners = section_runners(args, tmp)
        for section in SECTIONS:
            if section not in args.sections:
                continue
            t0 = time.perf_counter()
            results[section] = runners[section]()
            results[section]['section_seconds'] = time.perf_counter() - t0
            results[section]['load_after'] = os.getloadavg()[0]
    info['load_end'] = os.getloadavg()[0]
    info['total_seconds'] = time.perf_counter() - started
    print(f'\nTotal {info["total_seconds"] / 60:.1f} min; 1-min load average at the end '
          f'{info["load_end"]:.2f}.')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2, default=str)
        print(f'results written to {args.out}')
    return results


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
