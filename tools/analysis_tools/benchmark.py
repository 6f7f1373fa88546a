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
* ``loader``: images/s of the RecordIO data path (``benchmark_dataloader.py``'s
  ``MXFaceDataset`` + pipeline) against a raw ``cv2.imdecode`` DataLoader, interleaved.
* ``rad``: FCD + RAD forward+backward time and peak memory at global batches 512 ... 8192
  (d = 512), single process (B_local = B_global), and B_local = 512 anchors against
  B_global partners (the other ranks' teacher embeddings passed as extra partners, the
  shape one rank of ``B_global / 512`` ranks computes), with fits showing memory
  proportional to B_local x B_global.
* ``mining``: ``mine_neighbour_identities`` time and peak memory vs number of identities,
  on the random centers ``benchmark_mining.py`` draws, a fresh worker process per size
  (its own worker reports ``ru_maxrss``, which a child inherits from a large parent).
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

Examples:
    python tools/analysis_tools/benchmark.py --quick --threads 1 --out work_dirs/bench.json
    python tools/analysis_tools/benchmark.py --sections step,rad --repeats 5
    python tools/analysis_tools/benchmark.py --sections step --device cuda --dtype bf16 \\
        --teacher iresnet100 --batch-size 512 --out gpu.json
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import importlib.util
import json
import math
import os
import os.path as osp
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

HERE = osp.dirname(osp.abspath(__file__))
SECTIONS = ('step', 'loader', 'rad', 'mining', 'head', 'students')
#: glibc: allocations of at least this size are mmap'ed and unmapped on free.
MMAP_THRESHOLD = 65536
EMBED_DIM = 512
BANK_TARGET = 1.15  # bank variant <= 1.15x the student alone
CAPACITY_TARGET = 10_000_000  # PartialFC 0.1 on 8 x 80 GB
MiB = 2.0**20
GiB = 2.0**30


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
    step = parser.add_argument_group('step')
    step.add_argument('--student', default='mobilefacenet',
                      help='mobilefacenet or iresnet{18,34,50,100,200}')
    step.add_argument('--teacher', default='iresnet50', help='as --student')
    step.add_argument('--batch-size', type=int, default=64)
    step.add_argument('--img-size', type=int, default=112,
                      help='input side of "step" and "students"')
    step.add_argument('--num-classes', type=int, default=1000, help='ArcFace classes')
    step.add_argument('--bank-samples', type=int,
                      help='teacher bank rows (default 100000, 20000 with --quick)')
    step.add_argument('--partner-samples', type=int, default=16,
                      help='mined partner images appended to the batch in variant (e) '
                      '(PartnerSampler + partner_samples; 0 leaves (e) out)')
    step.add_argument('--with-cp', action='store_true',
                      help='gradient-checkpoint the student backbone')
    loader = parser.add_argument_group('loader')
    loader.add_argument('--loader-samples', type=int,
                        help='records written and images timed (default 3000 / 1500)')
    loader.add_argument('--loader-workers', type=_workers_list, default=None,
                        help='DataLoader workers (default 0,<threads>)')
    rad = parser.add_argument_group('rad')
    rad.add_argument('--rad-sizes', type=_int_list, default=[512, 1024, 2048, 4096, 8192],
                     help='global batch sizes')
    rad.add_argument('--rad-local', type=int, default=512,
                     help='B_local of the simulated multi-rank series')
    mining = parser.add_argument_group('mining')
    mining.add_argument('--mining-sizes', type=_int_list,
                        help='identities (default 1000,10000,50000,100000; no 100000 with '
                        '--quick)')
    mining.add_argument('--mining-dtypes', type=_str_list, default=['float32', 'bfloat16'],
                        help='matmul precisions of the kNN blocks')
    head = parser.add_argument_group('head')
    head.add_argument('--head-classes', type=_int_list,
                      help='identities (default 1000,10000,100000; +1000000 with --big)')
    head.add_argument('--head-batch', type=int, default=128, help='batch of the head step')
    head.add_argument('--capacity-ranks', type=int, default=8)
    head.add_argument('--capacity-gib', type=float, default=80.0, help='memory per rank')
    head.add_argument('--capacity-reserve-gib', type=float, default=16.0,
                      help='per-rank memory kept for the backbone, activations, CUDA context')
    head.add_argument('--capacity-local-batch', type=int, default=128,
                      help='per-rank batch; PartialFC computes logits of the global batch')
    students = parser.add_argument_group('students')
    students.add_argument('--students', type=_str_list,
                          default=['mobilefacenet', 'iresnet18', 'iresnet50', 'iresnet100'])
    students.add_argument('--latency-runs', type=int,
                          help='timed onnxruntime runs per model per round (default 20 / 10)')
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


# ------------------------------------------------------------------------- measurement
def _sync(device: str) -> None:
    if device == 'cuda':
        import torch
        torch.cuda.synchronize()


def _autocast(device: str, dtype: str):
    import torch
    if dtype == 'bf16':
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def round_robin(fns: Dict[str, Callable[[], Any]], repeats: int, warmup: int,
                device: str = 'cpu', seed: int = 0,
                cpu: Optional[Dict[str, List[float]]] = None) -> Dict[str, List[float]]:
    """Time each function once per round, in a new random order each round.

    Interleaving puts every variant under the same background load; shuffling the order
    keeps any one variant from always following the same (e.g. a memory-hungry) other one.
    Warm-up rounds run in the same way and are dropped. ``cpu``, when given, receives the
    process CPU time (all threads, user + system) of each timed call.

    Returns:
        dict: ``{name: [seconds per timed round]}``.
    """
    rng = random.Random(seed)
    names = list(fns)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(warmup + repeats):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            _sync(device)
            cpu_start, start = time.process_time(), time.perf_counter()
            fns[name]()
            _sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
                if cpu is not None:
                    cpu.setdefault(name, []).append(time.process_time() - cpu_start)
    return times


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float('nan')


def _spread(values: Sequence[float]) -> float:
    """(max - min) / median: how much the rounds disagreed."""
    med = _median(values)
    return (max(values) - min(values)) / med if values and med > 0 else float('nan')


def _status_kib(key: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ``clear_refs`` 5); False if impossible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _rss_bytes() -> int:
    kib = _status_kib('VmRSS')
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


def _peak_rss_bytes() -> int:
    kib = _status_kib('VmHWM')
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


class PeakMemory:
    """Bytes allocated at the peak of a block above what was allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: peak RSS (``VmHWM`` reset first) minus
    the RSS before the block; only meaningful in a worker started by :func:`run_workers`
    (pinned mmap threshold), and ``exact`` is False where the peak could not be reset.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.bytes = 0
        self.exact = True

    def __enter__(self) -> 'PeakMemory':
        gc.collect()
        if self.device == 'cuda':
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = _rss_bytes()
            self.exact = _reset_peak_rss()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == 'cuda':
            import torch
            torch.cuda.synchronize()
            self.bytes = torch.cuda.max_memory_allocated() - self.base
        else:
            self.bytes = _peak_rss_bytes() - self.base


def run_workers(jobs: List[dict], isolate: bool, threads: int) -> List[dict]:
    """Run memory jobs in fresh worker processes (one per job, or one for all).

    Each job is ``dict(kind=..., **params)``; the worker prints one JSON list of results.
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD),
               OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1')
    batches = [[job] for job in jobs] if isolate else [jobs]
    results: List[dict] = []
    for batch in batches:
        spec = json.dumps(dict(jobs=batch, threads=threads))
        proc = subprocess.run([sys.executable, osp.abspath(__file__), '--worker', spec],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f'benchmark worker failed on {batch}:\n{proc.stderr[-3000:]}')
        results.extend(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def worker_main(spec_text: str) -> None:
    import torch

    spec = json.loads(spec_text)
    torch.set_num_threads(int(spec['threads']))
    out = []
    warmed = set()
    for job in spec['jobs']:
        kind = job.pop('kind')
        small = _warm_params(kind, job)
        key = (kind, json.dumps(small, sort_keys=True))
        if key not in warmed:  # first-call costs (kernels, thread pools) out of the peak
            _WORKER_JOBS[kind](device='cpu', **small)
            warmed.add(key)
        out.append(dict(job, kind=kind, **_WORKER_JOBS[kind](device='cpu', **job)))
    print(json.dumps(out))


def _warm_params(kind: str, job: dict) -> dict:
    """The job at a tiny size: same code path (head type, precision), negligible memory."""
    small = dict(job)
    if kind == 'rad':
        small.update(local=8, partners=16)
    elif kind == 'head':
        small.update(num_classes=64)
    elif kind == 'mining':
        small.update(size=64)
    return small


# --------------------------------------------------------------------------- helpers
def _load_tool(name: str):
    """Import a sibling script of tools/analysis_tools as a module."""
    path = osp.join(HERE, f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_bench_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_deployment_tool():
    path = osp.join(osp.dirname(HERE), 'deployment', 'pytorch2onnx.py')
    spec = importlib.util.spec_from_file_location('_bench_pytorch2onnx', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def _pretty(name: str) -> str:
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


def _group_labels(batch: int, num_classes: int, gen, per_identity: int = 4):
    """Labels of a RelationSampler-like batch: identities with ``per_identity`` images."""
    import torch
    ids = torch.randperm(num_classes, generator=gen)[:math.ceil(batch / per_identity)]
    return ids.repeat_interleave(per_identity)[:batch]


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
             align: Optional[str] = None) -> str:
    """A Markdown table; ``align`` one char per column (``l``/``r``), right by default."""
    align = align or 'l' + 'r' * (len(headers) - 1)
    sep = ['---' if a == 'l' else '---:' for a in align]
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '|'.join(sep) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(str(c) for c in row) + ' |')
    return '\n'.join(lines)


def _emit(title: str, notes: Sequence[str], table: str, after: Sequence[str] = ()) -> None:
    print(f'\n### {title}\n')
    for note in notes:
        print(note)
    if notes:
        print()
    print(table)
    if after:
        print()
        for line in after:
            print(line)
    sys.stdout.flush()


def _threads(n: int, word: str = 'thread') -> str:
    return f'{n} {word}' + ('' if n == 1 else 's')


def _mib(nbytes: float) -> str:
    return f'{nbytes / MiB:,.1f}'


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith('Model name:'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    info = dict(cpu=cpu, cpu_count=os.cpu_count(), date=datetime.datetime.now(
        datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), python=platform.python_version(),
        torch=torch.__version__, load_start=os.getloadavg()[0])
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


# ------------------------------------------------------------------------------- step
def _make_batches(num: int, batch: int, size: int, num_classes: int, bank_samples: int,
                  seed: int) -> List[dict]:
    """Batches as the data loader gives them: uint8 BGR CHW images and data samples."""
    import torch
    from mmpretrain.structures import DataSample

    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(num):
        labels = _group_labels(batch, num_classes, gen)
        idx = torch.randint(0, bank_samples, (batch, ), generator=gen)
        flip = torch.rand(batch, generator=gen) < 0.5
        images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
        samples = []
        for i in range(batch):
            ds = DataSample().set_gt_label(int(labels[i]))
            ds.set_metainfo(dict(sample_idx=int(idx[i]), flip=bool(flip[i]), masked=False))
            samples.append(ds)
        batches.append(dict(inputs=list(images), data_samples=samples))
    return batches


def _train_step_fn(model, batches: List[dict], device: str, dtype: str):
    import torch

    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01,
                                momentum=0.9, weight_decay=5e-4)
    state = dict(i=0)

    def step() -> None:
        batch = batches[state['i'] % len(batches)]
        state['i'] += 1
        with _autocast(device, dtype):
            data = model.data_preprocessor(batch, True)
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def bench_step(args: argparse.Namespace, tmp: str) -> dict:
    import numpy as np
    import torch

    from coupleface.models.distillers.teacher_bank import TeacherBank, write_teacher_bank
    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules

    register_all_modules(init_default_scope=False)
    size, batch, device = args.img_size, args.batch_size, args.device
    student = dict(type='FaceRecognizer',
                   backbone=backbone_config(args.student, size, with_cp=args.with_cp),
                   head=dict(type='ArcFaceHead', num_classes=args.num_classes,
                             in_channels=EMBED_DIM, scale=64.0, margin=0.5))
    teacher_model = dict(type='FaceRecognizer', backbone=backbone_config(args.teacher, size))

    # A random-weight teacher checkpoint (BN calibrated) and a random teacher bank.
    torch.manual_seed(args.seed)
    teacher = calibrate_bn(MODELS.build(teacher_model), size)
    teacher_ckpt = osp.join(tmp, 'teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), teacher_ckpt)
    del teacher
    bank_prefix = osp.join(tmp, 'bank', 'train')
    rng = np.random.default_rng(args.seed)
    chunk = 8192
    write_teacher_bank(
        bank_prefix, (rng.standard_normal((min(chunk, args.bank_samples - a), 2, EMBED_DIM),
                                          dtype=np.float32)
                      for a in range(0, args.bank_samples, chunk)),
        meta=dict(dataset='benchmark'), num_samples=args.bank_samples)

    fcd = dict(type='FeatureConsistencyLoss', mode='l2', loss_weight=1.0)
    # the default RAD: the student's own relations, KL form (the cross form costs the same)
    rad = dict(type='RelationAwareDistillationLoss', num_negatives=16, loss_weight=1.0)
    online = dict(model=teacher_model, checkpoint=teacher_ckpt)
    partners = args.partner_samples
    variants = {
        '(a) student alone': dict(student),
        "(a') student alone, second copy (noise floor)": dict(student),
        '(b) + online teacher, FCD': dict(type='CoupleFaceDistiller', student=student,
                                          teacher=online, fcd_loss=fcd),
        '(c) CoupleFace online (FCD + RAD)': dict(type='CoupleFaceDistiller',
                                                  student=student, teacher=online,
                                                  fcd_loss=fcd, rad_loss=rad),
        '(d) CoupleFace, teacher bank': dict(type='CoupleFaceDistiller', student=student,
                                             teacher_bank=dict(path=bank_prefix),
                                             fcd_loss=fcd, rad_loss=rad),
    }
    partner_name = f'(e) CoupleFace, teacher bank, + {partners} partner images'
    if partners:  # the MS1M configs' variant: ArcFace on the batch, FCD + RAD on all
        variants[partner_name] = dict(type='CoupleFaceDistiller', student=student,
                                      teacher_bank=dict(path=bank_prefix), fcd_loss=fcd,
                                      rad_loss=rad, partner_samples=partners)
    batches = _make_batches(4, batch, size, args.num_classes, args.bank_samples, args.seed)
    with_partners = _make_batches(4, batch + partners, size, args.num_classes,
                                  args.bank_samples, args.seed) if partners else batches
    fns, models = {}, {}
    for name, cfg in variants.items():
        torch.manual_seed(args.seed)  # the same student initialisation in every variant
        model = MODELS.build(cfg).to(device).train()
        models[name] = model
        fns[name] = _train_step_fn(model, with_partners if name == partner_name else batches,
                                   device, args.dtype)

    # Components of the bank variant's extra work, timed in the same rounds.
    bank = TeacherBank(bank_prefix)
    idx = torch.tensor([int(ds.sample_idx) for ds in batches[0]['data_samples']])
    flip = torch.tensor([bool(ds.flip) for ds in batches[0]['data_samples']])
    labels = torch.cat([ds.gt_label for ds in batches[0]['data_samples']]).to(device)
    fcd_loss, rad_loss = MODELS.build(fcd).to(device), MODELS.build(rad).to(device)
    emb = torch.randn(batch, EMBED_DIM, device=device, requires_grad=True)
    pre = models['(a) student alone'].data_preprocessor

    def lookup() -> None:
        bank.lookup(idx, flip).to(device)

    t = bank.lookup(idx, flip).to(device)

    def losses() -> None:
        (fcd_loss(emb, t) + rad_loss(emb, t, labels)).backward()
        emb.grad = None

    def preprocess() -> None:
        pre(batches[0], True)

    comps = {'bank lookup (memmap -> tensor)': lookup, 'FCD + RAD fwd+bwd': losses,
             'data preprocessor': preprocess}
    peak = {}
    if device == 'cuda':
        for name, fn in fns.items():  # peak memory of one step per variant
            with PeakMemory('cuda') as mem:
                fn()
            peak[name] = mem.bytes
    cpu: Dict[str, List[float]] = {}
    times = round_robin({**fns, **comps}, args.repeats, args.warmup, device, args.seed, cpu)
    base = _median(times['(a) student alone'])
    base_min = min(times['(a) student alone'])
    base_cpu = _median(cpu['(a) student alone'])
    rows, result = [], dict(config=dict(
        student=args.student, teacher=args.teacher, batch=batch, img_size=size,
        num_classes=args.num_classes, dtype=args.dtype, device=device,
        bank_samples=args.bank_samples, repeats=args.repeats, warmup=args.warmup),
        variants={}, components={})
    for name in fns:
        med = _median(times[name])
        entry = dict(median_s=med, times_s=times[name], ratio=med / base,
                     ratio_min=min(times[name]) / base_min,
                     cpu_s=_median(cpu[name]), cpu_ratio=_median(cpu[name]) / base_cpu,
                     images_per_s=batch / med, spread=_spread(times[name]))
        if name in peak:
            entry['peak_mib'] = peak[name] / MiB
        result['variants'][name] = entry
        row = [name, f'{med:.3f}', f'{batch / med:,.1f}', f'{med / base:.3f}',
               f'{entry["ratio_min"]:.3f}', f'{entry["cpu_ratio"]:.3f}',
               f'{entry["spread"]:.0%}']
        if device == 'cuda':
            row.append(_mib(peak[name]))
        rows.append(row)
    headers = ['variant', 's/step (median)', 'images/s', 'ratio to (a)', 'ratio of minima',
               'CPU-time ratio', 'spread']
    if device == 'cuda':
        headers.append('peak MiB')
    bank_ratio = result['variants']['(d) CoupleFace, teacher bank']['ratio']
    result['bank_ratio'] = bank_ratio
    result['noise_floor_ratio'] = result['variants'][
        "(a') student alone, second copy (noise floor)"]['ratio']
    result['bank_target'] = BANK_TARGET
    result['bank_target_met'] = bank_ratio <= BANK_TARGET
    if partners:
        result['partner_ratio'] = result['variants'][partner_name]['ratio']
        result['partner_target_met'] = result['partner_ratio'] <= BANK_TARGET
    comp_rows = []
    for name in comps:
        med = _median(times[name])
        result['components'][name] = dict(median_s=med, times_s=times[name],
                                          fraction_of_a=med / base)
        comp_rows.append([name, f'{med * 1e3:.2f}', f'{100 * med / base:.2f} %'])
    notes = [
        f'{_pretty(args.teacher)} teacher -> {_pretty(args.student)} student, batch {batch}, '
        f'{size} px, ArcFace head over {args.num_classes:,} classes (a 1,000-class head, not '
        f'MS1M\'s 85,742), SGD (momentum 0.9) step included, {args.dtype} on {device}, '
        f'{_threads(args.threads)}. {args.warmup} warm-up round(s) excluded, '
        f'{args.repeats} timed rounds, variants interleaved, in a new random order each round; '
        'medians. "ratio of minima": fastest round over fastest round of (a) (least '
        'disturbed by other jobs); "CPU-time ratio": process CPU time (user + system, all '
        'threads) per step, median, over that of (a); "spread" = (max - min) / median over '
        "the rounds. (a') is (a) again: its ratio is the noise floor of this run.",
        f'Teacher bank: {args.bank_samples:,} rows x 2 views x {EMBED_DIM}-d float16 '
        '(memory-mapped .npy, page cache warm after the warm-up).'
    ]
    verdict = 'met' if result['bank_target_met'] else 'MISSED'
    after = [f'Target: bank variant <= {BANK_TARGET:.2f}x the student alone: {verdict} '
             f'({bank_ratio:.3f}x; noise floor {result["noise_floor_ratio"]:.3f}x).']
    if partners:
        after[-1] += (f' With {partners} partner images per batch of {batch} (the ArcFace '
                      f'head on the {batch}): '
                      f'{"met" if result["partner_target_met"] else "MISSED"} '
                      f'({result["partner_ratio"]:.3f}x).')
    after += ['', 'Where the bank variant\'s extra time goes (same rounds, medians):', '',
              md_table(['component (batch ' + str(batch) + ')', 'ms', 'of (a)'], comp_rows)]
    _emit('Train step', notes, md_table(headers, rows), after)
    del models, fns
    gc.collect()
    return result


# ----------------------------------------------------------------------------- loader
def bench_loader(args: argparse.Namespace, tmp: str) -> dict:
    bd = _load_tool('benchmark_dataloader')
    import cv2

    cv2.setNumThreads(1)
    prefix = osp.join(tmp, 'loader', 'train')
    os.makedirs(osp.dirname(prefix), exist_ok=True)
    bd.make_synthetic(prefix, args.loader_samples)
    dataset = bd._build_dataset(prefix)
    reader = dataset.reader
    from coupleface.datasets.mx_record import unpack
    payloads = [unpack(reader.read_idx(k))[1] for k in dataset.get_rec_keys().tolist()]
    raw = bd._RawDecode(payloads)
    batch, num = 64, args.loader_samples
    fns, out = {}, {}
    for w in args.loader_workers:
        fns[f'pipeline w{w}'] = (lambda w=w: out.setdefault(f'pipeline w{w}', []).append(
            bd._images_per_s(bd._loader(dataset, w, batch), num)))
        fns[f'raw w{w}'] = (lambda w=w: out.setdefault(f'raw w{w}', []).append(
            bd._images_per_s(bd._loader(raw, w, batch), num)))
    round_robin(fns, args.repeats, 0)
    rows, result = [], dict(records=len(dataset), batch=batch, workers={})
    for w in args.loader_workers:
        ours, base = _median(out[f'pipeline w{w}']), _median(out[f'raw w{w}'])
        result['workers'][w] = dict(pipeline_images_per_s=ours, raw_images_per_s=base,
                                    ratio=ours / base, pipeline_runs=out[f'pipeline w{w}'],
                                    raw_runs=out[f'raw w{w}'])
        rows.append([w, f'{ours:,.0f}', f'{base:,.0f}', f'{ours / base:.2f}'])
    notes = [f'`MXFaceDataset` + `LoadFaceImage(112)` + `RandomFlip` + `PackFaceInputs` '
             f'(tools/analysis_tools/benchmark_dataloader.py) on {len(dataset):,} synthetic '
             f'112 px JPEG records, batch {batch}, shuffled, `pseudo_collate`, against a '
             'DataLoader that only `cv2.imdecode`s the same payloads from memory; images/s '
             f'after the first batch, median of {args.repeats} interleaved runs.']
    _emit('Data loader', notes, md_table(
        ['workers', 'pipeline images/s', 'raw decode images/s', 'pipeline / raw'], rows))
    return result


# -------------------------------------------------------------------------------- rad
def _rad_inputs(local: int, partners: int, dim: int, device: str, seed: int = 0):
    """Rank 0 of ``partners / local`` ranks: its anchors and the other ranks' teachers."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    labels = _group_labels(partners, max(partners, 4), gen)  # groups of 4 images
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


def _fit_pairs(points: List[Tuple[int, int, float]]) -> Tuple[float, float, float]:
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
    import torch

    device, dim = args.device, EMBED_DIM
    sizes = sorted(set(args.rad_sizes))
    local = args.rad_local
    configs = [(b, b) for b in sizes] + [(local, b) for b in sizes if b > local]
    # memory
    if device == 'cuda':
        mem = [rad_memory_job('cuda', bl, bg, dim)['peak_bytes'] for bl, bg in configs]
    else:
        jobs = [dict(kind='rad', local=bl, partners=bg, dim=dim) for bl, bg in configs]
        res = run_workers(jobs, args.isolate, args.threads)
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
    alpha, beta, resid = _fit_pairs(pts)
    full = [(bg, m) for bl, bg, m in pts if bl == bg]
    sim = [(bg, m) for bl, bg, m in pts if bl == local and bg > local]
    slope_full = _loglog_slope([b for b, _ in full], [m for _, m in full])
    slope_sim = _loglog_slope([b for b, _ in sim], [m for _, m in sim])
    t0 = _median(times[configs[0]])
    rows, result = [], dict(dim=dim, device=device, points=[], fit=dict(
        bytes_per_pair=alpha, bytes_per_row=beta, max_rel_residual=resid,
        loglog_slope_single_process=slope_full, loglog_slope_fixed_local=slope_sim))
    for (bl, bg), m in zip(configs, mem):
        med = _median(times[(bl, bg)])
        fit = alpha * bl * bg + beta * (bl + bg)
        result['points'].append({'local': bl, 'global': bg, 'peak_bytes': m, 'median_s': med,
                                 'times_s': times[(bl, bg)], 'fit_bytes': fit})
        rows.append([f'{bl:,}', f'{bg:,}', f'{med * 1e3:,.1f}', f'{med / t0:.2f}',
                     _mib(m), _mib(fit), f'{m / (bl * bg):.1f}'])
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
    _emit('RAD + FCD memory and time', notes, md_table(
        ['B_local', 'B_global', 'fwd+bwd ms', 'time ratio', 'peak MiB', 'fit MiB',
         'bytes / (B_local x B_global)'], rows), after)
    return result


# ----------------------------------------------------------------------------- mining
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
        _sync(device)
        start = time.perf_counter()
        mine_neighbour_identities(centers, k, chunk_size=chunk_size, progress=False,
                                  matmul_dtype=None if dtype == 'float32' else dtype)
        _sync(device)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    return dict(seconds=seconds, cpu_seconds=cpu_seconds, peak_bytes=mem.bytes,
                exact=mem.exact, load=os.getloadavg()[0])


def bench_mining(args: argparse.Namespace) -> dict:
    jobs = [dict(kind='mining', size=size, dtype=dtype, seed=args.seed)
            for size in args.mining_sizes for dtype in args.mining_dtypes]
    if args.device == 'cuda':
        runs = [dict(job, **mining_job('cuda', job['size'], job['dtype'], seed=args.seed))
                for job in jobs]
    else:
        runs = run_workers(jobs, args.isolate, args.threads)
    rows, result = [], dict(dim=EMBED_DIM, k=8, chunk_size=4096, runs=runs)
    for res in runs:
        size = res['size']
        rows.append([f'{size:,}', res['dtype'], f'{res["seconds"]:.2f}',
                     f'{res["cpu_seconds"]:.2f}', f'{size * size / res["seconds"] / 1e6:,.0f}',
                     _mib(res['peak_bytes']), f'{res["load"]:.1f}'])
    where = ('each size in a fresh worker process' if args.isolate and args.device == 'cpu'
             else 'one process')
    mem = ('torch.cuda.max_memory_allocated above the centers' if args.device == 'cuda' else
           'peak RSS above the RSS with the centers allocated (as in "rad")')
    notes = [f'`mine_neighbour_identities` (k = 8, chunk 4096, D = {EMBED_DIM}) on random '
             'unit-norm centers (drawn as tools/analysis_tools/benchmark_mining.py draws them), '
             f'{where}, {_threads(args.threads)}, {args.device}. "CPU s" is the process\'s CPU '
             'time (on CPU, wall > CPU / threads means other jobs held the cores); "load" the '
             '1-minute load average after the run; Msim/s = identities^2 / wall s (constant '
             f'when time grows as C^2). Peak memory: {mem}.']
    _emit('Relation mining', notes, md_table(
        ['identities', 'matmul', 'wall s', 'CPU s', 'Msim/s', 'peak MiB', 'load'], rows,
        'rl' + 'r' * 5))
    return result


# ------------------------------------------------------------------------------- head
_HEAD_VARIANTS = (('dense ArcFace', None), ('PartialFC r=1.0', 1.0), ('PartialFC r=0.3', 0.3),
                  ('PartialFC r=0.1', 0.1))
#: B x C_s fp32 matrices alive at the head's peak (cosines, the margin-replaced copy, scaled
#: logits, log-softmax saved for backward, their gradients, boolean masks): 8.2 measured for
#: the dense head at 100k classes on CPU (``k measured``), so 8 is used for the capacity.
LOGIT_COPIES = 8


def _build_head(num_classes: int, rate: Optional[float], device: str):
    from coupleface.models.heads import ArcFaceHead
    from coupleface.models.heads.partial_fc import PartialFCHead
    margin = dict(type='ArcFaceHead', num_classes=num_classes, in_channels=EMBED_DIM)
    if rate is None:
        return ArcFaceHead(num_classes, EMBED_DIM).to(device)
    return PartialFCHead(margin, sample_rate=rate).to(device)


def _head_step_fn(head, batch: int, num_classes: int, device: str, dtype: str, seed: int = 0):
    import torch
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(batch, EMBED_DIM, generator=gen).to(device).requires_grad_(True)
    labels = torch.randint(0, num_classes, (batch, ), generator=gen).to(device)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)

    def step() -> None:
        with _autocast(device, dtype):
            loss = head.loss(feats, labels)['loss_cls']
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        feats.grad = None

    return step


def head_memory_job(device: str, num_classes: int, rate: Optional[float], batch: int,
                    dtype: str = 'fp32') -> dict:
    """Bytes of the head: weight (resident after building) + the peak of two SGD steps."""
    import torch
    gc.collect()
    torch.manual_seed(0)
    with PeakMemory(device) as build:
        head = _build_head(num_classes, rate, device)
        gc.collect()
    weight = (torch.cuda.memory_allocated() - build.base if device == 'cuda'
              else _rss_bytes() - build.base)
    step = _head_step_fn(head, batch, num_classes, device, dtype)
    with PeakMemory(device) as mem:
        step()  # allocates gradient and momentum
        step()
    del head, step
    gc.collect()
    return dict(weight_bytes=weight, step_peak_bytes=mem.bytes,
                total_bytes=weight + mem.bytes, exact=mem.exact)


def head_bytes(num_classes: int, rate: Optional[float], batch: int, dim: int = EMBED_DIM,
               ranks: int = 1, logit_copies: int = LOGIT_COPIES) -> Dict[str, float]:
    """Per-rank bytes of a margin head computed from shapes (fp32).

    ``C_r = C / ranks`` centers on the rank (``ranks = 1`` for a dense head, every rank
    holding all centers), ``C_s = r * C_r`` of them sampled (``C_s = C_r`` without sampling):

    * weight + gradient + momentum: ``C_r * D * 4 * 3`` (the gradient is dense: sampled-out
      centers get zeros, as in insightface);
    * the sampled centers, gathered and normalised, and their gradient: ``C_s * D * 4 * 2``;
    * logits: ``batch * C_s * 4 * k``, ``batch`` the rows the rank scores (the global batch
      for PartialFC), ``k = LOGIT_COPIES`` fp32 matrices of that shape.
    """
    local = num_classes / ranks
    sampled = local if rate is None else max(1.0, rate * local)
    out = dict(params=local * dim * 4 * 3, centers=sampled * dim * 4 * 2,
               logits=batch * sampled * 4 * logit_copies, logit_matrix=batch * sampled * 4)
    out['total'] = out['params'] + out['centers'] + out['logits']
    return out


def bench_head(args: argparse.Namespace) -> dict:
    import torch

    device, batch = args.device, args.head_batch
    configs = [(c, name, rate) for c in args.head_classes for name, rate in _HEAD_VARIANTS]
    if device == 'cuda':
        mem = [head_memory_job('cuda', c, rate, batch, args.dtype) for c, _, rate in configs]
    else:
        jobs = [dict(kind='head', num_classes=c, rate=rate, batch=batch)
                for c, _, rate in configs]
        mem = run_workers(jobs, args.isolate, args.threads)
    result = dict(batch=batch, dim=EMBED_DIM, rows=[], capacity={})
    rows = []
    for c in args.head_classes:
        fns = {}
        for name, rate in _HEAD_VARIANTS:
            torch.manual_seed(args.seed)
            fns[name] = _head_step_fn(_build_head(c, rate, device), batch, c, device,
                                      args.dtype)
        times = round_robin(fns, args.repeats, args.warmup, device)
        del fns
        gc.collect()
        base = _median(times['dense ArcFace'])
        for (cc, name, rate), m in zip(configs, mem):
            if cc != c:
                continue
            comp = head_bytes(c, rate, batch)
            med = _median(times[name])
            act = m['total_bytes'] - comp['params']
            k_eff = (act - comp['centers']) / comp['logit_matrix']
            result['rows'].append(dict(num_classes=c, head=name, sample_rate=rate,
                                       computed=comp, measured=m, median_s=med,
                                       times_s=times[name], ratio=med / base, k_eff=k_eff))
            rows.append([f'{c:,}', name, _mib(comp['params']), _mib(comp['logit_matrix']),
                         _mib(comp['total']), _mib(m['total_bytes']),
                         f'{m["total_bytes"] / comp["total"]:.2f}', f'{k_eff:.1f}',
                         f'{med * 1e3:,.1f}', f'{med / base:.2f}'])
    # capacity on ranks x GiB
    ranks, gib = args.capacity_ranks, args.capacity_gib
    budget = (gib - args.capacity_reserve_gib) * GiB
    global_batch = ranks * args.capacity_local_batch
    cap_rows = []
    ref = 10**9  # bytes per identity from a large C (no rounding of r * C / ranks)
    for name, rate in _HEAD_VARIANTS:
        if rate is None:  # data parallel: every rank holds every center, scores its own batch
            per_class = head_bytes(ref, None, args.capacity_local_batch)['total'] / ref
        else:
            per_class = head_bytes(ref, rate, global_batch, ranks=ranks)['total'] / ref
        cmax = int(budget / per_class)
        result['capacity'][name] = dict(bytes_per_identity_per_rank=per_class,
                                        max_identities=cmax)
        cap_rows.append([name, f'{per_class:,.0f}', f'{cmax / 1e6:,.1f} M'])
    pfc = result['capacity']['PartialFC r=0.1']['max_identities']
    result['capacity'].update(ranks=ranks, gib_per_rank=gib,
                              reserve_gib=args.capacity_reserve_gib, global_batch=global_batch,
                              local_batch=args.capacity_local_batch,
                              logit_copies=LOGIT_COPIES, target=CAPACITY_TARGET,
                              target_met=pfc >= CAPACITY_TARGET)
    method = ('torch.cuda.max_memory_allocated' if device == 'cuda' else
              'RSS after building the head minus before (weight), plus the peak RSS of two SGD '
              'steps above that (gradient, momentum, sampled centers, logits), in '
              f'{"a fresh worker per row" if args.isolate else "one worker"}')
    notes = [
        f'One rank, batch {batch}, D = {EMBED_DIM}, fp32 weights, SGD with momentum, '
        f'{args.dtype} on {device}. PartialFC on one rank holds every center, so only the '
        'sampling (fewer logits and gathered centers) differs from the dense head.',
        'Computed (per rank): W+grad+mom = C_r·D·4·3; sampled centers (gathered + normalised) '
        f'and their gradient = C_s·D·4·2; logits = B·C_s·4·k with k = {LOGIT_COPIES} '
        'fp32 B×C_s matrices (cosines, margin-replaced copy, scaled logits, log-softmax '
        'saved for backward, their gradients, masks); C_s = r·C_r sampled centers. The '
        '"logits MiB" column is one B×C_s matrix.',
        f'Measured: {method}. "k measured" = (measured - W+grad+mom - sampled centers) / one '
        'logits matrix. Time: one head step (loss, backward, SGD) on fixed embeddings, median '
        f'of {args.repeats} interleaved rounds, ratio to the dense head.']
    cap_notes = [
        f'Capacity on {ranks} ranks x {gib:g} GiB, keeping {args.capacity_reserve_gib:g} GiB '
        f'per rank for the backbone, its activations and the CUDA context: per-rank bytes = '
        f'(C/{ranks})·D·4·3 + r·(C/{ranks})·D·4·2 + N·r·(C/{ranks})·4·{LOGIT_COPIES} with '
        f'N = {ranks} x {args.capacity_local_batch} = {global_batch} (PartialFC scores the '
        'global batch against its shard); the dense head is data parallel (every rank holds '
        f'all C centers and scores its {args.capacity_local_batch} rows): C·D·4·5 + '
        f'{args.capacity_local_batch}·C·4·{LOGIT_COPIES}. Max identities = budget / bytes per '
        'identity.']
    verdict = 'met' if pfc >= CAPACITY_TARGET else 'MISSED'
    after = ['', *cap_notes, '',
             md_table([f'head ({ranks} x {gib:g} GiB)', 'per-rank bytes per identity',
                       'max identities'], cap_rows), '',
             f'Target: PartialFC r=0.1 >= {CAPACITY_TARGET / 1e6:g} M identities: {verdict} '
             f'({pfc / 1e6:,.1f} M).']
    _emit('Classification head', notes, md_table(
        ['identities', 'head', 'W+grad+mom MiB', 'logits MiB', 'computed MiB', 'measured MiB',
         'measured / computed', 'k measured', 'step ms', 'time ratio'], rows,
        'rl' + 'r' * 8), after)
    return result


# --------------------------------------------------------------------------- students
def bench_students(args: argparse.Namespace, tmp: str) -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger

    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules

    register_all_modules(init_default_scope=False)
    p2o = _load_deployment_tool()
    size = args.img_size
    logger = MMLogger.get_current_instance()
    sessions, info = {}, {}
    for name in args.students:
        torch.manual_seed(args.seed)
        model = MODELS.build(dict(type='FaceRecognizer',
                                  backbone=backbone_config(name, size))).eval()
        calibrate_bn(model, size)
        params = sum(p.numel() for p in model.parameters())
        level = logger.level
        logger.setLevel('ERROR')  # "unsupported operator" notes for prelu / bn / add
        try:
            flops = get_model_complexity_info(model.backbone, input_shape=(3, size, size),
                                              show_table=False, show_arch=False)['flops']
        finally:
            logger.setLevel(level)
        path = p2o.export_onnx(model, osp.join(tmp, 'onnx', f'{name}.onnx'), size)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        sessions[name] = ort.InferenceSession(path, options,
                                              providers=['CPUExecutionProvider'])
        info[name] = dict(params=params, flops=flops, onnx_mib=osp.getsize(path) / MiB)
        del model
        gc.collect()
    x = np.random.default_rng(args.seed).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    runs = args.latency_runs

    def runner(session):
        feed = {session.get_inputs()[0].name: x}
        return lambda: [session.run(None, feed) for _ in range(runs)]

    for session in sessions.values():  # warm-up outside the rounds
        for _ in range(3):
            session.run(None, {session.get_inputs()[0].name: x})
    times = round_robin({n: runner(s) for n, s in sessions.items()}, args.repeats, 0)
    first = args.students[0]
    base = _median(times[first]) / runs
    rows, result = [], dict(img_size=size, threads=args.threads, models={})
    for name in args.students:
        ms = _median(times[name]) / runs * 1e3
        entry = dict(info[name], latency_ms=ms, ratio=ms / 1e3 / base,
                     rounds_s=times[name], runs_per_round=runs)
        result['models'][name] = entry
        rows.append([_pretty(name), f'{entry["params"] / 1e6:.2f}',
                     f'{entry["flops"] / 1e9:.2f}', f'{entry["onnx_mib"]:.1f}', f'{ms:.2f}',
                     f'{1e3 / ms:,.0f}', f'{entry["ratio"]:.2f}'])
    notes = [f'{size} px, 512-d embeddings. FLOPs from `mmengine.analysis.'
             'get_model_complexity_info` (it counts one multiply-add as one FLOP, like the '
             'insightface model zoo; PReLU/BN/add not counted). ONNX: '
             '`tools/deployment/pytorch2onnx.py` `export_onnx` (TorchScript exporter, opset 17), '
             f'onnxruntime {ort.__version__} CPUExecutionProvider, '
             f'{_threads(args.threads, "intra-op thread")}, batch 1; latency = median over '
             f'{args.repeats} interleaved rounds of '
             f'{runs} runs each, ratio to {_pretty(first)}.']
    _emit('Students', notes, md_table(
        ['model', 'params M', 'GFLOPs', 'ONNX MiB', 'ORT latency ms', 'images/s',
         f'latency ratio to {_pretty(first)}'], rows))
    return result


_WORKER_JOBS = {'rad': rad_memory_job, 'head': head_memory_job, 'mining': mining_job}


# ------------------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return {}
    import torch
    torch.set_num_threads(args.threads)
    info = machine_info()
    print(f'# coupleface benchmark ({"quick" if args.quick else "full"}): {info["date"]}')
    print(f'CPU: {info["cpu"]} ({info["cpu_count"]} cores), torch {info["torch"]}, '
          f'{_threads(args.threads)}, device {args.device}, {args.dtype}'
          + (f', GPU {info["gpu"]}' if args.device == 'cuda' else '')
          + f'; 1-min load average at start {info["load_start"]:.2f}')
    if info['load_start'] > (info['cpu_count'] or 1) and args.threads > 1:
        print('note: the machine is oversubscribed (load > cores): OpenMP threads wait for '
              'each other at every barrier; --threads 1 gives steadier ratios')
    results: Dict[str, Any] = dict(machine=info, args={k: v for k, v in vars(args).items()
                                                       if k != 'worker'})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix='coupleface_bench_') as tmp:
        for section in SECTIONS:
            if section not in args.sections:
                continue
            t0 = time.perf_counter()
            if section == 'step':
                results['step'] = bench_step(args, tmp)
            elif section == 'loader':
                results['loader'] = bench_loader(args, tmp)
            elif section == 'rad':
                results['rad'] = bench_rad(args)
            elif section == 'mining':
                results['mining'] = bench_mining(args)
            elif section == 'head':
                results['head'] = bench_head(args)
            else:
                results['students'] = bench_students(args, tmp)
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
