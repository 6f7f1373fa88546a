"""Benchmark tables over seeds: mean ± std per row and paired 95 % intervals against baselines.

The comparison runner (``tools/run_demo.py``) trains every row of a suite for several seeds
and hands this module one flat figure dict per (row, seed). A row trained once (the teacher)
is compared with every seed of a baseline (its figure repeated), so the interval is the
baseline's seed spread. Written by hand because it is bookkeeping around
:func:`~coupleface.evaluation.functional.seed_statistics.paired_difference` (scipy's t
quantile), not statistics no library has.

Examples:
    >>> runs = {'student': {0: {'acc': 90.0}, 1: {'acc': 91.0}},
    ...         'fcd': {0: {'acc': 92.0}, 1: {'acc': 92.5}}}
    >>> table = summarise(runs, keys=['acc'], baselines=['student'])
    >>> table['rows']['fcd']['vs']['student']['acc']['mean']
    1.75
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from .functional.seed_statistics import mean_std, paired_difference

Runs = Mapping[str, Mapping[int, Mapping[str, float]]]


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _per_seed(runs: Mapping[int, Mapping[str, float]], key: str) -> Dict[int, float]:
    return {seed: float(fig[key]) for seed, fig in runs.items() if _finite(fig.get(key))}


def summarise(runs: Runs, keys: Sequence[str], baselines: Sequence[str] = (),
              confidence: float = 0.95, select_on: Optional[str] = None,
              candidates: Sequence[str] = ()) -> dict:
    """Mean ± std of every figure, paired differences against each baseline row.

    Args:
        runs: ``{row: {seed: {key: value}}}``.
        keys: The figures to summarise (missing or NaN values are skipped per seed).
        baselines: Rows every other row is compared with (paired over common seeds; a row
            or baseline with a single run is compared with every seed of the other).
        confidence: Level of the two-sided t interval.
        select_on: A (validation) key by which the best of ``candidates`` is named.
        candidates: The rows ``select_on`` chooses among (e.g. the distillers).

    Returns:
        dict: ``rows`` (``{row: {'seeds': [...], 'figures': {key: mean_std},
        'vs': {baseline: {key: paired_difference}}}}``), ``selected`` (the candidate
        with the highest mean ``select_on``, or None), ``confidence``, ``keys``.
    """
    rows = {}
    for name, seeds in runs.items():
        figures = {}
        for key in keys:
            values = list(_per_seed(seeds, key).values())
            if values:
                figures[key] = mean_std(values)
        rows[name] = dict(seeds=sorted(seeds), figures=figures, vs={})
    for name, seeds in runs.items():
        for base in baselines:
            if base == name or base not in runs:
                continue
            diffs = {}
            for key in keys:
                mine, theirs = _per_seed(seeds, key), _per_seed(runs[base], key)
                if not mine or not theirs:
                    continue
                if len(mine) == 1 and len(theirs) > 1:  # trained once: against every seed
                    mine = {s: next(iter(mine.values())) for s in theirs}
                elif len(theirs) == 1 and len(mine) > 1:
                    theirs = {s: next(iter(theirs.values())) for s in mine}
                if set(mine) & set(theirs):
                    diffs[key] = paired_difference(mine, theirs, confidence)
            rows[name]['vs'][base] = diffs
    selected = None
    if select_on:
        scored = [(rows[c]['figures'][select_on]['mean'], c) for c in candidates
                  if c in rows and select_on in rows[c]['figures']]
        selected = max(scored)[1] if scored else None
    return dict(rows=rows, selected=selected, confidence=confidence, keys=list(keys),
                select_on=select_on)


def _cell(stat: Optional[Mapping[str, float]]) -> str:
    if not stat:
        return 'n/a'
    if stat['n'] > 1 and _finite(stat['std']):
        return f'{stat["mean"]:.2f} ± {stat["std"]:.2f}'
    return f'{stat["mean"]:.2f}'


def _diff_cell(diff: Optional[Mapping[str, float]]) -> str:
    if not diff:
        return 'n/a'
    if not _finite(diff.get('low')):
        return f'{diff["mean"]:+.2f}'
    mark = '' if diff['resolved'] else ' (n.s.)'
    return f'{diff["mean"]:+.2f} [{diff["low"]:+.2f}, {diff["high"]:+.2f}]{mark}'


def markdown(summary: dict, columns: Sequence[Tuple[str, str]], labels: Mapping[str, str],
             order: Sequence[str], extra: Optional[Mapping[str, Mapping[str, str]]] = None
             ) -> str:
    """One row per run: seeds, mean ± std of each column, then ``extra`` cells.

    Args:
        summary: What :func:`summarise` returned.
        columns: ``(key, header)`` pairs.
        labels: Row name to the label shown.
        order: Rows in table order (absent ones skipped).
        extra: ``{header: {row: cell}}`` appended columns (e.g. train time).
    """
    extra = extra or {}
    head = ['model', 'seeds'] + [h for _, h in columns] + list(extra)
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for name in order:
        row = summary['rows'].get(name)
        if row is None:
            continue
        label = labels.get(name, name)
        if name == summary.get('selected'):
            label += ' (best on val)'
        cells = [label, str(len(row['seeds']))]
        cells += [_cell(row['figures'].get(key)) for key, _ in columns]
        cells += [col.get(name, 'n/a') for col in extra.values()]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def differences_markdown(summary: dict, columns: Sequence[Tuple[str, str]],
                         labels: Mapping[str, str], order: Sequence[str],
                         baseline: str) -> str:
    """Paired differences to ``baseline``: mean [low, high] per column; '(n.s.)' when the
    interval contains 0."""
    level = round(100 * summary['confidence'])
    head = [f'vs {labels.get(baseline, baseline)}'] + [f'Δ {h} ({level} % CI)'
                                                       for _, h in columns]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for name in order:
        row = summary['rows'].get(name)
        if row is None or name == baseline or baseline not in row['vs']:
            continue
        diffs = row['vs'][baseline]
        cells = [labels.get(name, name)] + [_diff_cell(diffs.get(key)) for key, _ in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def flatten_figures(metrics: Mapping[str, float], prefixes: Mapping[str, str]
                    ) -> Dict[str, float]:
    """Rename report keys (``synth_test/accuracy`` → ``test/accuracy``) by prefix map."""
    out: Dict[str, float] = {}
    for key, value in metrics.items():
        for old, new in prefixes.items():
            if key.startswith(old + '/') and _finite(value):
                out[new + key[len(old):]] = float(value)
    return out


def all_pairs_figures(result: Mapping, name: str) -> Dict[str, float]:
    """``tools/eval_all_pairs.py --out`` JSON → ``{<name>/tar@far=1e-03: percent}``
    (unmeasurable FARs are left out)."""
    out: Dict[str, float] = {}
    for far, fig in result['tar_at_far'].items():
        if fig.get('measurable', True):
            out[f'{name}/tar@far={float(far):.0e}'] = 100.0 * float(fig['tar'])
    return out


__all__: List[str] = ['summarise', 'markdown', 'differences_markdown', 'flatten_figures',
                      'all_pairs_figures']


def against_reference(summary: dict, reference: dict,
                      comparisons: Sequence[Tuple[str, str]],
                      columns: Sequence[Tuple[str, str]], labels: Mapping[str, str],
                      spread: float = 2.0) -> str:
    """Set a short run's differences beside the seed spread a longer run measured.

    A one-seed demo cannot tell a gain from seed noise by itself; the ablation's paired
    differences over seeds (same rows, same data) can. For each ``(row, baseline)`` and
    column this gives the difference here, the reference's paired mean, 95 % interval and
    standard deviation of the per-seed differences, and a verdict: **clearly above** when
    the difference here exceeds ``spread`` standard deviations of the reference's per-seed
    differences *and* the reference's interval lies above 0; **within the seed spread**
    otherwise (or **below** when the difference is negative beyond the spread).

    Args:
        summary: What :func:`summarise` returned for this run.
        reference: A :func:`summarise` result over several seeds (e.g. the ablation's
            committed JSON).
        comparisons: ``(row, baseline)`` pairs to state.
        columns: ``(key, header)`` pairs.
        labels: Row name to the label shown.
        spread: How many per-seed standard deviations count as "clearly".

    Returns:
        str: A Markdown table; rows missing from either summary are skipped.
    """
    head = ['comparison', 'figure', 'here', 'ablation mean [95 % CI]', 'ablation seed sd',
            'verdict']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for name, base in comparisons:
        here = summary['rows'].get(name, {}).get('vs', {}).get(base, {})
        ref = reference.get('rows', {}).get(name, {}).get('vs', {}).get(base, {})
        for key, header in columns:
            if key not in here or key not in ref:
                continue
            value, r = here[key]['mean'], ref[key]
            sd = r['std'] if _finite(r.get('std')) else math.nan
            if _finite(sd) and value > spread * sd and r.get('low', math.nan) > 0:
                verdict = 'clearly above'
            elif _finite(sd) and value < -spread * sd:
                verdict = 'below'
            else:
                verdict = 'within the seed spread'
            cells = [f'{labels.get(name, name)} − {labels.get(base, base)}', header,
                     f'{value:+.2f}', _diff_cell(r), f'{sd:.2f}', verdict]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
