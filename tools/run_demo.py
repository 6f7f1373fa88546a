"""The one-command demo: SynthFaces → teacher → students → evaluation → one table.

Every stage runs the same tools and configs as the MS1M recipes (tools/train.py,
tools/test.py, configs under configs/); only the data and the network sizes are
small enough for a laptop CPU. Stages whose outputs exist are reused, so an
interrupted demo continues where it stopped.

Three suites share the stages (and the work directory, so the ablation reuses what the
demo trained):

* ``demo`` (default): the teacher, the student alone, FCD and CoupleFace (both from the
  teacher bank); each evaluated on the clean and the masked (``masked_unmasked``) test
  pairs; one table and the ROC comparison PNG.
* ``online``: FCD and CoupleFace with the teacher run every step (the same losses as from
  the bank, about 1.5x the bank runs' time); not in the demo, which must fit in about 15
  minutes on 2 cores of an AVX2-only CPU.
* ``ablation``: the rows (a)-(e) of docs/benchmarks.md and the peer baselines (RKD,
  EKD-style, AdaDistill-style), all distilled from the teacher bank, for each of
  ``--seeds``; mean ± std over the seeds. Seed 0 runs live in ``WORK/<run>``, other
  seeds in ``WORK/seed<N>/<run>``; the teacher is trained once (seed 0).

A reused checkpoint or teacher bank must be the one this run would make: each is recorded
with a fingerprint of the data (SynthFaces ``meta.json`` settings), the resolved config with
the run's overrides and the teacher file it read (``<file>.record.json``,
:mod:`coupleface.utils.run_cache`); one made from other data or config, or changed since,
stops the demo with a one-line message naming what differs.

Example::

    python tools/run_demo.py                    # the demo
    python tools/run_demo.py --only teacher     # one stage (and what it needs)
    python tools/run_demo.py --suite ablation --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_SET = 'synth_test'
MASKED_SET = 'synth_test@masked_unmasked'


@dataclass
class Run:
    """One model of the demo: a config trained, then evaluated on the test pairs."""

    name: str
    config: str
    needs: List[str] = field(default_factory=list)
    label: str = ''
    head_key: str = 'model.head.num_classes'


def _bank_cfg(method: str, variant: str = '') -> str:
    return (f'configs/{method}/iresnet18-w16_{method}-bank{variant}-iresnet18-w32_1xb128_'
            'synthfaces-56px.py')


STUDENT_HEAD = 'model.student.head.num_classes'
RUNS: Dict[str, Run] = {r.name: r for r in [
    Run('teacher', 'configs/arcface/iresnet18-w32_1xb128_synthfaces-56px.py',
        label='teacher IResNet-18 (w32, 256-d)'),
    Run('student', 'configs/arcface/iresnet18-w16_1xb128_synthfaces-56px.py',
        label='(a) student IResNet-18 (w16, 128-d) alone'),
    Run('fcd', 'configs/fcd/iresnet18-w16_fcd-iresnet18-w32_1xb128_synthfaces-56px.py',
        needs=['teacher'], head_key=STUDENT_HEAD, label='student + FCD (online teacher)'),
    Run('coupleface',
        'configs/coupleface/iresnet18-w16_coupleface-iresnet18-w32_1xb128_synthfaces-56px.py',
        needs=['teacher'], head_key=STUDENT_HEAD, label='student + CoupleFace (online teacher)'),
    Run('fcd_bank', _bank_cfg('fcd'), needs=['bank'], head_key=STUDENT_HEAD,
        label='(b) FCD, teacher bank'),
    Run('rad_random_groups', _bank_cfg('coupleface', '-random-groups'), needs=['bank'],
        head_key=STUDENT_HEAD, label='(c) FCD + RAD, random identity groups'),
    Run('mined_no_rad', _bank_cfg('coupleface', '-no-rad'), needs=['bank'],
        head_key=STUDENT_HEAD, label='(d) FCD + mined batches, no RAD'),
    Run('coupleface_bank', _bank_cfg('coupleface'), needs=['bank'], head_key=STUDENT_HEAD,
        label='(e) CoupleFace (FCD + RAD + mining), teacher bank'),
    Run('rkd', _bank_cfg('rkd'), needs=['bank'], head_key=STUDENT_HEAD,
        label='RKD (distance + angle)'),
    Run('ekd', _bank_cfg('ekd'), needs=['bank'], head_key=STUDENT_HEAD,
        label='EKD-style rank loss'),
    Run('adadistill', _bank_cfg('adadistill'), needs=['bank'], head_key=STUDENT_HEAD,
        label='AdaDistill-style head'),
]}
SUITES: Dict[str, List[str]] = {
    # the bank gives the same losses as the online teacher on the un-augmented teacher view,
    # at the student's cost; the online runs (1.5x) took the demo past 15 min on AVX2 CPUs
    'demo': ['teacher', 'student', 'fcd_bank', 'coupleface_bank'],
    'online': ['teacher', 'fcd', 'coupleface'],
    'ablation': ['teacher', 'student', 'fcd_bank', 'rad_random_groups', 'mined_no_rad',
                 'coupleface_bank', 'rkd', 'ekd', 'adadistill'],
}


def log(msg: str) -> None:
    print(f'[demo {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def run(cmd: List[str]) -> None:
    """Run a tool with its output streaming through (progress stays visible)."""
    log('$ ' + ' '.join(cmd))
    proc = subprocess.run(cmd, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f'demo stopped: {" ".join(cmd[:3])} ... exited {proc.returncode}')


def make_data(args) -> None:
    cmd = [sys.executable, 'tools/make_synthfaces.py', args.data_dir,
           '--num-ids', str(args.num_ids), '--imgs-per-id', str(args.imgs_per_id),
           '--val-pairs', str(args.val_pairs), '--test-pairs', str(args.test_pairs),
           '--size', '112', '--difficulty', str(args.difficulty),
           '--workers', str(args.workers)]
    run(cmd + (['--force'] if args.force_data else []))


def last_checkpoint(work_dir: str) -> Optional[str]:
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    path = open(pointer).read().strip()
    return path if osp.isfile(path) else None


def run_dir(args, name: str, seed: int) -> str:
    """Seed 0 (and the teacher) in WORK/<name>, other seeds in WORK/seed<N>/<name>."""
    if seed == 0 or name == 'teacher':
        return osp.join(args.work_dir, name)
    return osp.join(args.work_dir, f'seed{seed}', name)


def data_options(spec: Run, args) -> List[str]:
    """Point a config at the demo's data (and its identity count)."""
    root = args.data_dir
    return [f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            f'{spec.head_key}={args.num_ids}',
            # a CPU epoch here is a few dozen iterations: log often enough to show progress
            'default_hooks.logger.interval=10']


def teacher_checkpoint(args) -> str:
    done = osp.join(args.work_dir, 'teacher', 'DONE')
    if not osp.isfile(done):
        raise SystemExit('demo stopped: the teacher is not trained yet (run its stage)')
    return open(done).read().strip()


def reuse_or_record(output: str, parts: Dict[str, str], made_now: bool) -> None:
    """Record a new output's fingerprint, or check a reused one's (stale: stop, one line)."""
    from coupleface.utils.run_cache import StaleOutputError, check_record, write_record

    if made_now:
        write_record(output, parts)
        return
    try:
        check_record(output, parts)
    except StaleOutputError as err:
        raise SystemExit(f'demo stopped: {err}')


def teacher_bank(args) -> Tuple[str, float]:
    """Write the teacher bank once (timed: it is part of the bank runs' cost)."""
    from coupleface.utils.checkpoint import file_sha256
    from coupleface.utils.run_cache import fingerprint

    prefix = osp.join(args.work_dir, 'teacher_bank', 'synthfaces')
    seconds_file = prefix + '.seconds'
    spec = RUNS['teacher']  # the teacher's own config: its model and training set
    teacher = teacher_checkpoint(args)
    parts = fingerprint(spec.config, data_options(spec, args), args.data_dir,
                        extra=dict(teacher_sha256=file_sha256(teacher)))
    made_now = not osp.isfile(prefix + '.json')
    if made_now:
        start = time.time()
        run([sys.executable, 'tools/extract_embeddings.py', spec.config, teacher, '--out',
             prefix, '--workers', str(args.workers), '--cfg-options',
             *data_options(spec, args)])
        with open(seconds_file, 'w') as f:
            f.write(f'{time.time() - start:.1f}\n')
    reuse_or_record(prefix + '.npy', parts, made_now)
    seconds = float(open(seconds_file).read()) if osp.isfile(seconds_file) else 0.0
    return prefix, seconds


def train_and_test(spec: Run, args, seed: int) -> Tuple[dict, float]:
    """Train (unless DONE), evaluate clean and masked (unless done); metrics, train seconds.

    The train time of a bank run includes writing the bank (shared by all bank runs).
    """
    work = run_dir(args, spec.name, seed)
    done = osp.join(work, 'DONE')
    opts = data_options(spec, args) + [f'randomness.seed={seed}']
    extra_seconds = 0.0
    from coupleface.utils.checkpoint import file_sha256
    from coupleface.utils.run_cache import fingerprint

    inputs = {}  # content hashes of the teacher files read: a path alone can be reused
    if 'bank' in spec.needs:
        prefix, extra_seconds = teacher_bank(args)
        opts.append(f'model.teacher_bank.path={prefix}')
        inputs = dict(bank_sha256=file_sha256(prefix + '.npy'))
    elif 'teacher' in spec.needs:
        teacher = teacher_checkpoint(args)
        opts.append(f'model.teacher.checkpoint={teacher}')
        inputs = dict(teacher_sha256=file_sha256(teacher))
    parts = fingerprint(spec.config, opts, args.data_dir, extra=inputs)
    seconds_file = osp.join(work, 'train_seconds.txt')
    made_now = not osp.isfile(done)
    if made_now:
        start = time.time()
        cmd = [sys.executable, 'tools/train.py', spec.config, '--work-dir', work]
        if last_checkpoint(work):
            cmd.append('--resume')
        run(cmd + ['--cfg-options', *opts])
        with open(done, 'w') as f:
            f.write(last_checkpoint(work) or '')
        with open(seconds_file, 'w') as f:
            f.write(f'{time.time() - start:.1f}\n')
    else:
        log(f'{spec.name} (seed {seed}): trained already ({work}), checking it was made from '
            'this data and config')
    ckpt = open(done).read().strip() or last_checkpoint(work)
    if not ckpt:
        raise SystemExit(f'demo stopped: {done} names no checkpoint; delete {work} to retrain')
    reuse_or_record(ckpt, parts, made_now)
    seconds = float(open(seconds_file).read()) if osp.isfile(seconds_file) else math.nan
    result_dir = osp.join(work, 'results')
    result_file = osp.join(result_dir, 'metrics.json')
    if not _has_masked(result_file):
        run([sys.executable, 'tools/test.py', spec.config, ckpt, '--work-dir', work,
             '--out-dir', result_dir, '--mask-protocols', 'clean', 'masked_unmasked',
             '--cfg-options', *opts])
    with open(result_file) as f:
        metrics = json.load(f)
    metrics.update(validation_metrics(work))
    return metrics, seconds + extra_seconds


def validation_metrics(work: str) -> dict:
    """The last validation figures the training run logged (``synth_val/...``): the
    pairs hyper-parameters may be chosen on (identities disjoint from the test pairs)."""
    import glob
    found: dict = {}
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                if '"synth_val/accuracy"' in line:
                    found = {k: v for k, v in json.loads(line).items()
                             if k.startswith('synth_val/')}
    return found


def _has_masked(result_file: str) -> bool:
    if not osp.isfile(result_file):
        return False
    with open(result_file) as f:
        return f'{MASKED_SET}/accuracy' in json.load(f)


COLUMNS = [('synth_val/accuracy', 'val accuracy (%)'),
           (f'{TEST_SET}/accuracy', 'accuracy (%)'),
           (f'{TEST_SET}/tar@far=1e-03', 'TAR@FAR=1e-3 (%)'),
           (f'{TEST_SET}/tar@far=1e-02', 'TAR@FAR=1e-2 (%)'),
           (f'{MASKED_SET}/accuracy', 'masked accuracy (%)'),
           (f'{MASKED_SET}/tar@far=1e-03', 'masked TAR@FAR=1e-3 (%)')]


def _fmt(values: Sequence[float]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return 'n/a'
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f'{mean:.2f}'
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f'{mean:.2f} ± {std:.2f}'


def table(results: Dict[str, List[Tuple[dict, float]]], order: Sequence[str]) -> str:
    """One row per run; with several seeds, mean ± sample std over them."""
    seeds = max((len(v) for v in results.values()), default=1)
    head = ['model'] + [c for _, c in COLUMNS] + ['train time (s)']
    if seeds > 1:
        head.insert(1, 'seeds')
    rows = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for name in order:
        if name not in results:
            continue
        runs = results[name]
        cells = [RUNS[name].label or name]
        if seeds > 1:
            cells.append(str(len(runs)))
        for key, _ in COLUMNS:
            cells.append(_fmt([m.get(key, math.nan) for m, _ in runs]))
        cells.append(_fmt_time([s for _, s in runs]))
        rows.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows)


def _fmt_time(seconds: Sequence[float]) -> str:
    seconds = [s for s in seconds if not math.isnan(s)]
    return f'{sum(seconds) / len(seconds):.0f}' if seconds else 'n/a'


def compare_plot(args, names: Sequence[str]) -> None:
    """The ROC comparison PNGs (clean and masked) of the seed-0 runs."""
    dirs, labels = [], []
    for name in names:
        result = osp.join(run_dir(args, name, 0), 'results', 'metrics.json')
        if osp.isfile(result):
            dirs.append(result)
            labels.append(RUNS[name].label or name)
    if len(dirs) < 2:
        return
    out = osp.join(args.work_dir, 'compare')
    run([sys.executable, 'tools/analysis_tools/compare_results.py', *dirs, '--labels', *labels,
         '--out', out])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--suite', choices=sorted(SUITES), default='demo')
    p.add_argument('--seeds', type=int, nargs='+', default=[0],
                   help='training seeds of the students (randomness.seed); the teacher '
                   'is trained once, with seed 0')
    p.add_argument('--data-dir', default='data/synthfaces')
    p.add_argument('--work-dir', default='work_dirs/demo')
    # sized so the demo (5 models, each evaluated clean and masked) takes ~15 min on 2 cores
    p.add_argument('--num-ids', type=int, default=300)
    p.add_argument('--imgs-per-id', type=int, default=16)
    p.add_argument('--val-pairs', type=int, default=500)
    p.add_argument('--test-pairs', type=int, default=2000)
    # 0.8 (make_synthfaces' default, tuned for 500 x 20 images) leaves this smaller training
    # set's teacher at 87 % accuracy and 3 % TAR@FAR=1e-3: too low to compare students at
    p.add_argument('--difficulty', type=float, default=0.7)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--only', nargs='+', help='run only these stages')
    p.add_argument('--force-data', action='store_true',
                   help='regenerate --data-dir when it holds SynthFaces made with other '
                   'arguments')
    args = p.parse_args(argv)
    known = SUITES[args.suite]
    bad = [n for n in args.only or [] if n not in known]
    if bad:
        p.error(f'--only {bad}: not a stage of the {args.suite} suite {known}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    t0 = time.time()
    make_data(args)
    order = SUITES[args.suite]
    results: Dict[str, List[Tuple[dict, float]]] = {}
    for i, seed in enumerate(args.seeds):  # seed by seed: a stopped run leaves whole seeds
        for name in order:
            if (args.only and name not in args.only) or (name == 'teacher' and i > 0):
                continue
            # the teacher is trained once, with seed 0, whatever --seeds says
            result = train_and_test(RUNS[name], args, 0 if name == 'teacher' else seed)
            results.setdefault(name, []).append(result)
    text = table(results, order)
    out_md = osp.join(args.work_dir, f'results_{args.suite}.md')
    with open(out_md, 'w') as f:
        f.write(text + '\n')
    compare_plot(args, [n for n in order if n in results])
    print('\nSynthFaces test pairs (identities unseen in training), clean and with the first '
          'image of every pair masked:\n' + text, flush=True)
    log(f'done in {time.time() - t0:.0f} s; table in {out_md}, ROC comparison in '
        f'{args.work_dir}/compare/')


if __name__ == '__main__':
    main()
