"""Measuring helpers shared by the benchmark scripts (``tools/analysis_tools/benchmark*.py``).

* Memory: the resident set size of this process and its peak (``VmHWM``), the peak reset
  through ``/proc/self/clear_refs``; :class:`PeakMemory` gives the bytes a block allocated
  at its peak above what was allocated before (peak RSS on CPU, since torch's CPU
  allocations are invisible to ``tracemalloc``; ``torch.cuda.max_memory_allocated`` on
  CUDA).
* Child processes: :func:`run_jobs_in_children` runs ``module:function`` calls in fresh
  interpreters (``python -m coupleface.utils.benchmarking``) with glibc's
  ``MALLOC_MMAP_THRESHOLD_`` pinned to :data:`MMAP_THRESHOLD`, so every allocation of 64 KiB
  or more is its own mapping, returned to the system when freed (otherwise the heap keeps
  freed memory and later allocations do not show in the RSS); :func:`peak_memory_in_child`
  measures one call that way; :func:`run_json_child` runs a script whose last stdout line is
  JSON.
* Side-by-side timing: :func:`round_robin` interleaves the variants (a new random order each
  round), :func:`median`, :func:`spread`, :func:`format_ratio`.
* Printing: :func:`md_table`, :func:`emit` (a ``###`` section), :func:`plural`,
  :func:`mib`, and :func:`machine_info` (CPU model via :mod:`coupleface.utils.cpu_info`).

Only the standard library and torch (imported where needed) are used.
"""
from __future__ import annotations

import contextlib
import datetime
import gc
import importlib
import json
import os
import os.path as osp
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from .cpu_info import cpu_model, describe_cpu

#: glibc: allocations of at least this size are mmap'ed and unmapped on free.
MMAP_THRESHOLD = 65536
MiB = 2.0**20
GiB = 2.0**30


# --------------------------------------------------------------------------- memory
def status_kib(key: str) -> Optional[int]:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), None if unreadable."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _maxrss_kib() -> int:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
    return kib // 1024 if sys.platform == 'darwin' else kib


def rss_bytes() -> int:
    """Resident set size of this process (``ru_maxrss`` where ``/proc`` is missing)."""
    kib = status_kib('VmRSS')
    return (_maxrss_kib() if kib is None else kib) * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size (``VmHWM``; it restarts at exec, unlike ``ru_maxrss``)."""
    kib = status_kib('VmHWM')
    return (_maxrss_kib() if kib is None else kib) * 1024


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); False if impossible."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def sync(device: str) -> None:
    """``torch.cuda.synchronize()`` on CUDA, nothing on CPU."""
    if device == 'cuda':
        import torch
        torch.cuda.synchronize()


class PeakMemory:
    """Bytes allocated at the peak of a block above what was allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: peak RSS (``VmHWM`` reset first) minus
    the RSS before the block; only meaningful with the pinned mmap threshold of a child
    started by :func:`run_jobs_in_children`, and ``exact`` is False where the peak could not
    be reset.

    Args:
        device: ``'cpu'`` or ``'cuda'``.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.bytes = 0
        self.base = 0
        self.exact = True

    def __enter__(self) -> 'PeakMemory':
        gc.collect()
        if self.device == 'cuda':
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = rss_bytes()
            self.exact = reset_peak_rss()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == 'cuda':
            import torch
            torch.cuda.synchronize()
            self.bytes = torch.cuda.max_memory_allocated() - self.base
        else:
            self.bytes = peak_rss_bytes() - self.base


# --------------------------------------------------------------------- child processes
def child_env(threads: int = 1, mmap_threshold: Optional[int] = MMAP_THRESHOLD) -> dict:
    """The environment of a measuring child: this one, ``OMP_NUM_THREADS=threads``, the
    pinned mmap threshold (None: glibc's default) and the coupleface of this process first
    on ``PYTHONPATH``."""
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (root, env.get('PYTHONPATH')) if p)
    if mmap_threshold is not None:
        env['MALLOC_MMAP_THRESHOLD_'] = str(mmap_threshold)
    return env


def run_json_child(argv: Sequence[str], env: Optional[dict] = None) -> Any:
    """Run ``python argv...`` and return the JSON of its last stdout line.

    Raises:
        RuntimeError: the child failed (the message ends with its stderr).
    """
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'child {list(argv)} failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(':')
    return getattr(importlib.import_module(module), name)


def run_jobs_in_children(jobs: List[dict], isolate: bool = True, threads: int = 1) -> List[Any]:
    """Run ``module:function`` calls in fresh child processes (one per job, or one for all).

    Args:
        jobs: ``dict(target='package.module:function', kwargs={...}, warmup={...})``; the
            results must be JSON-serialisable. ``warmup`` (optional) are the keyword
            arguments of an untimed first call, made once per target and warm-up arguments
            in each child, so that first-call costs (kernels, thread pools) stay out of the
            measured call.
        isolate: A fresh child per job (True) or one child for all of them.
        threads: ``torch`` and OpenMP threads of the children.

    Returns:
        list: The results of the calls, in the order of ``jobs``.
    """
    env = child_env(threads)
    batches = [[job] for job in jobs] if isolate else [jobs]
    results: List[Any] = []
    for batch in batches:
        spec = json.dumps(dict(jobs=batch, threads=threads))
        results.extend(run_json_child(['-m', __name__, spec], env))
    return results


def child_main(spec_text: str) -> None:
    """The child side of :func:`run_jobs_in_children`: print the results as one JSON line."""
    import torch

    spec = json.loads(spec_text)
    torch.set_num_threads(int(spec['threads']))
    out, warmed = [], set()
    for job in spec['jobs']:
        fn = _resolve(job['target'])
        warmup = job.get('warmup')
        key = (job['target'], json.dumps(warmup, sort_keys=True))
        if warmup is not None and key not in warmed:
            fn(**warmup)
            warmed.add(key)
        out.append(fn(**job.get('kwargs', {})))
    print(json.dumps(out))


def peak_memory_of(target: str, kwargs: Optional[dict] = None) -> dict:
    """Call ``target(**kwargs)`` under :class:`PeakMemory` (CPU), keeping its result alive
    until the peak is read: ``{'peak_bytes', 'exact'}``."""
    fn = _resolve(target)
    with PeakMemory('cpu') as mem:
        result = fn(**(kwargs or {}))
    del result
    return dict(peak_bytes=mem.bytes, exact=mem.exact)


def peak_memory_in_child(target: str, kwargs: Optional[dict] = None, threads: int = 1) -> dict:
    """Peak memory of one call of ``target`` (``'module:function'``) in a fresh child.

    Returns:
        dict: ``peak_bytes`` (peak RSS during the call above the RSS before it) and
        ``exact`` (False where the peak could not be reset).
    """
    job = dict(target=f'{__name__}:peak_memory_of',
               kwargs=dict(target=target, kwargs=kwargs or {}))
    return run_jobs_in_children([job], isolate=True, threads=threads)[0]


# ----------------------------------------------------------------------------- timing
def autocast(device: str, dtype: str):
    """``torch.autocast(bfloat16)`` for ``dtype='bf16'``, a null context otherwise."""
    if dtype == 'bf16':
        import torch
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def round_robin(fns: Dict[Any, Callable[[], Any]], repeats: int, warmup: int,
                device: str = 'cpu', seed: int = 0,
                cpu: Optional[Dict[Any, List[float]]] = None) -> Dict[Any, List[float]]:
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
    times: Dict[Any, List[float]] = {name: [] for name in names}
    for r in range(warmup + repeats):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            sync(device)
            cpu_start, start = time.process_time(), time.perf_counter()
            fns[name]()
            sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
                if cpu is not None:
                    cpu.setdefault(name, []).append(time.process_time() - cpu_start)
    return times


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else float('nan')


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how much the rounds disagreed."""
    med = median(values)
    return (max(values) - min(values)) / med if values and med > 0 else float('nan')


def format_ratio(value: float, base: float, digits: int = 3) -> str:
    """``value / base`` with ``digits`` decimals (``'nan'`` when ``base`` is 0)."""
    return f'{value / base:.{digits}f}' if base else 'nan'


# --------------------------------------------------------------------------- printing
def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
             align: Optional[str] = None) -> str:
    """A Markdown table; ``align`` one char per column (``l``/``r``), right by default."""
    align = align or 'l' + 'r' * (len(headers) - 1)
    sep = ['---' if a == 'l' else '---:' for a in align]
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '|'.join(sep) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(str(c) for c in row) + ' |')
    return '\n'.join(lines)


def emit(title: str, notes: Sequence[str], table: str, after: Sequence[str] = ()) -> None:
    """Print a ``### title`` section: notes, a blank line, the table, then ``after``."""
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


def plural(n: int, word: str = 'thread') -> str:
    """``'1 thread'``, ``'2 threads'``."""
    return f'{n} {word}' + ('' if n == 1 else 's')


def mib(nbytes: float) -> str:
    """Bytes as MiB with one decimal and thousands separators."""
    return f'{nbytes / MiB:,.1f}'


def machine_info() -> dict:
    """CPU model and description, cores, date (UTC), Python, torch, GPU, 1-min load."""
    import torch
    info = dict(cpu=cpu_model(), cpu_count=os.cpu_count(), date=datetime.datetime.now(
        datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), python=platform.python_version(),
        torch=torch.__version__, load_start=os.getloadavg()[0], cpu_description=describe_cpu())
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


if __name__ == '__main__':
    child_main(sys.argv[1])
