"""Loss and metric curves from MMEngine's JSON logs (``<work_dir>/<ts>/vis_data/<ts>.json``).

MMEngine's ``LocalVisBackend`` writes one JSON object a line: training lines carry ``iter``
(and ``epoch``) with the logged scalars (``loss``, ``loss_cls``, ``loss_fcd``, ``lr``,
``gnorm_*``, ...); validation lines carry the metrics (``synth_val/accuracy``, ...) and
``step`` (the epoch, or the iteration under an iteration-based loop). mmpretrain's
``tools/analysis_tools/analyze_logs.py`` reads the same files but is a script, not importable;
this is the small part of it coupleface needs, on the figure helpers of this package.
"""
from __future__ import annotations

import json
from typing import Dict, List, Mapping, Optional, Sequence

from .roc_plot import new_figure

#: keys of a training line that are bookkeeping, not curves
_BOOKKEEPING = {'epoch', 'iter', 'step', 'data_time', 'time', 'memory'}


def load_json_log(path: str) -> Dict[str, Dict[str, List[float]]]:
    """Read one MMEngine JSON log into ``{'train': {...}, 'val': {...}}``.

    Each part maps a key to its values, with ``'x'`` holding the matching iteration (train)
    or step (val) numbers per key as ``'<key>@x'``.

    Args:
        path: The ``.json`` log file.

    Returns:
        dict: ``{'train': {key: [values], key@x: [iters]}, 'val': {...}}``.

    Raises:
        ValueError: A line is not JSON (names the file and line).
    """
    out: Dict[str, Dict[str, List[float]]] = {'train': {}, 'val': {}}
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{n}: not a JSON log line ({e.msg})') from None
            part = 'train' if 'iter' in rec else 'val'
            x = rec.get('iter', rec.get('step'))
            for key, value in rec.items():
                if key in _BOOKKEEPING or not isinstance(value, (int, float)):
                    continue
                out[part].setdefault(key, []).append(float(value))
                out[part].setdefault(f'{key}@x', []).append(float(x))
    return out


def available_keys(log: Mapping[str, Mapping[str, List[float]]]) -> List[str]:
    """The curve keys of a loaded log (train keys first), without the ``@x`` entries."""
    return [k for part in ('train', 'val') for k in log[part] if not k.endswith('@x')]


def plot_curves(logs: Sequence[Mapping], keys: Sequence[str],
                legends: Optional[Sequence[str]] = None, title: Optional[str] = None):
    """Plot ``keys`` of one or more logs, one axis per key.

    Args:
        logs: Logs from :func:`load_json_log`.
        keys: Keys to plot (train or val keys).
        legends: One label per log. Defaults to ``log 0``, ``log 1``, ...
        title: Figure title.

    Returns:
        matplotlib.figure.Figure: The figure.

    Raises:
        KeyError: A key is in none of the logs (names the keys there are).
    """
    legends = list(legends or [f'log {i}' for i in range(len(logs))])
    if len(legends) != len(logs):
        raise ValueError(f'{len(legends)} legends for {len(logs)} logs')
    for key in keys:
        if not any(key in log['train'] or key in log['val'] for log in logs):
            have = sorted({k for log in logs for k in available_keys(log)})
            raise KeyError(f'key {key!r} is in none of the logs; they have {have}')
    fig = new_figure(figsize=(6.4, 3.2 * len(keys)))
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys):
        for log, label in zip(logs, legends):
            part = 'train' if key in log['train'] else 'val'
            if key not in log[part]:
                continue
            ax.plot(log[part][f'{key}@x'], log[part][key], label=label,
                    marker='o' if part == 'val' else None)
            ax.set_xlabel('iteration' if part == 'train' else 'step (epoch)')
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def train_time(path: str) -> Dict[str, float]:
    """Seconds per iteration of a JSON log (mean, slowest and fastest logged value).

    Args:
        path: The ``.json`` log file.

    Returns:
        dict: ``mean``, ``max``, ``min`` seconds per iteration and ``n`` logged lines.
    """
    times = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                if 'iter' in rec and 'time' in rec:
                    times.append(float(rec['time']))
    if not times:
        raise ValueError(f'{path}: no training line with a "time" value')
    return dict(mean=sum(times) / len(times), max=max(times), min=min(times), n=len(times))
