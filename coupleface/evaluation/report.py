"""Verification reports: one JSON file with every figure, and the Markdown and PNGs made from it.

``tools/test.py CONFIG CKPT --out-dir DIR`` writes, through :func:`build_report` and
:func:`write_report`:

* ``metrics.json``: the single source of the report. Its top level holds the flat metrics of
  :class:`~coupleface.evaluation.metrics.VerificationMetric` exactly as the test loop returned
  them (``'lfw/accuracy'``, ``'lfw/tar@far=1e-04'``, ..., ``'mean_accuracy'``; keys with a
  ``/`` or ``mean_accuracy``), plus these keys:

  - ``format`` (``'coupleface-verification-report'``) and ``version`` (1);
  - ``fars``: the target FARs of the per-set TAR figures; ``mfr_far``: the FAR of the
    masked-protocol summary;
  - ``sets``: per set name: ``base_set``, ``protocol`` (``clean``, ``masked_unmasked``,
    ``masked_masked``), ``num_pairs``, ``num_genuine``, ``num_impostor``, ``accuracy`` and
    ``accuracy_std`` (percent, k-fold), ``best_threshold`` (squared L2, the k-fold mean) and
    ``best_threshold_cosine`` (the same decision as a cosine: ``1 - t / 2``), ``xnorm``,
    ``auc`` and ``eer`` (percent), ``tar_at_far`` (per FAR named like the metric keys,
    ``'1e-04'``: ``far``, ``measurable``, ``tar`` (conservative, percent), ``threshold`` and
    ``far_actual`` of that ROC point, ``tar_nearest`` (insightface's nearest-FAR point,
    percent); the numbers are ``null`` when not measurable), ``roc`` (``far``, ``tar``,
    ``threshold`` lists, fractions and cosines, subsampled to at most ``max_roc_points``
    points, ``num_points`` of the full curve, ``min_far`` = ``1 / num_impostor``) and
    ``score_histogram`` (``bin_edges``, ``genuine``, ``impostor`` counts of the cosine
    similarities);
  - ``mfr``: per base set with masked variants, :func:`~coupleface.evaluation.metrics.
    verification_metric.mfr_summary` at ``mfr_far`` (``tar``, ``tar_drop``,
    ``accuracy_drop``, percent / percentage points);
  - ``meta``: free-form provenance (config, checkpoint).

  NaN and infinite values are written as ``null`` (strict JSON).
* ``metrics.md``: a Markdown table, rows = sets, columns = accuracy ± std, TAR@FAR per
  ``fars``, AUC, EER, XNorm; and an MFR table when masked protocols were evaluated.
* ``roc_<set>.png`` and ``scores_<set>.png`` per set (see :mod:`coupleface.visualization`).

:func:`write_report` writes the JSON and renders the Markdown and PNGs from the file it just
wrote (:func:`render_report`), so a report can be rendered again from ``metrics.json`` alone.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import re
import tempfile
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from coupleface.datasets.mask_protocols import split_protocol_set_name

from .functional import auc, eer, roc_curve, tar_at_far
from .metrics.verification_metric import format_far, mfr_summary

REPORT_FORMAT = 'coupleface-verification-report'
REPORT_VERSION = 1
#: FARs of the report's TAR columns (union-ed with the metric's own FARs).
REPORT_FARS = (1e-4, 1e-3, 1e-2)
METRICS_JSON = 'metrics.json'
METRICS_MD = 'metrics.md'


def subsample_roc(far: np.ndarray, tar: np.ndarray, thresholds: np.ndarray,
                  max_points: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most ``max_points`` points of a ROC curve, dense where a log-FAR plot needs them.

    Half of the points are spread evenly along the curve, half at log-spaced FARs (for each,
    the last point with FAR <= that value, i.e. the top of the curve's step there); the first
    and last points are always kept.

    Args:
        far (np.ndarray): FAR of each ROC point (non-decreasing).
        tar (np.ndarray): TAR of each point.
        thresholds (np.ndarray): Threshold of each point.
        max_points (int): The most points kept (>= 4). Defaults to 2000.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: The kept ``far``, ``tar``, ``thresholds``,
        in curve order.
    """
    n = far.size
    if max_points < 4:
        raise ValueError(f'max_points must be >= 4, got {max_points}')
    if n <= max_points:
        return far, tar, thresholds
    n_even = max_points // 2 - 1
    n_log = max_points - n_even - 2
    even = np.linspace(0, n - 1, n_even).round().astype(np.int64)
    positive = far[far > 0]
    lowest = float(positive.min()) if positive.size else 1.0
    grid = np.logspace(np.log10(lowest), 0.0, n_log)
    on_grid = np.searchsorted(far, grid, side='right') - 1
    idx = np.unique(np.concatenate([[0, n - 1], even, np.clip(on_grid, 0, n - 1)]))
    return far[idx], tar[idx], thresholds[idx]


def score_histogram(scores: np.ndarray, issame: np.ndarray, bins: Optional[int] = None) -> dict:
    """Histogram counts of genuine and impostor scores over common bins.

    Args:
        scores (np.ndarray): Pair scores.
        issame (np.ndarray): True for genuine pairs.
        bins (int, optional): Number of bins spanning the scores' range. Defaults to None:
            ``sqrt(#pairs)`` clipped to 10..100.

    Returns:
        dict: ``bin_edges`` (``bins + 1`` floats), ``genuine`` and ``impostor`` (int counts).
    """
    scores = np.asarray(scores, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    if bins is None:
        bins = int(np.clip(round(math.sqrt(scores.size)), 10, 100))
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-6:
        lo, hi = lo - 0.01, hi + 0.01
    edges = np.linspace(lo, hi, int(bins) + 1)
    return dict(bin_edges=edges.tolist(),
                genuine=np.histogram(scores[issame], edges)[0].tolist(),
                impostor=np.histogram(scores[~issame], edges)[0].tolist())


def _flat_value(metrics: Mapping[str, Any], key: str) -> float:
    if key not in metrics:
        raise KeyError(f"the metrics have no '{key}' (keys: {sorted(metrics)[:8]} ...)")
    return float(metrics[key])


def set_report(scores: np.ndarray, issame: np.ndarray, metrics: Mapping[str, Any],
               set_name: str, *, fars: Sequence[float] = REPORT_FARS, prefix: str = '',
               max_roc_points: int = 2000, hist_bins: Optional[int] = None) -> dict:
    """Every figure of one set (see the module docstring for the fields).

    Args:
        scores (np.ndarray): Pair cosine similarities, as ``VerificationMetric`` keeps them.
        issame (np.ndarray): True for genuine pairs.
        metrics (Mapping[str, Any]): The flat metrics; ``{prefix}{set_name}/accuracy``,
            ``accuracy_std``, ``best_threshold`` and ``xnorm`` are read from them (they need
            the embeddings), the ROC figures are computed from ``scores``.
        set_name (str): The set.
        fars (Sequence[float]): Target FARs. Defaults to :data:`REPORT_FARS`.
        prefix (str): Prefix of the metric keys, with its ``/``. Defaults to ''.
        max_roc_points (int): ROC points kept. Defaults to 2000.
        hist_bins (int, optional): Score histogram bins. Defaults to None (see
            :func:`score_histogram`).

    Returns:
        dict: The set's entry of ``report['sets']``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    base, protocol = split_protocol_set_name(set_name)
    key = f'{prefix}{set_name}'
    best_threshold = _flat_value(metrics, f'{key}/best_threshold')
    entry = dict(
        base_set=base, protocol=protocol, num_pairs=int(issame.size),
        num_genuine=int(issame.sum()), num_impostor=int((~issame).sum()),
        accuracy=_flat_value(metrics, f'{key}/accuracy'),
        accuracy_std=_flat_value(metrics, f'{key}/accuracy_std'),
        best_threshold=best_threshold, best_threshold_cosine=1.0 - best_threshold / 2.0,
        xnorm=_flat_value(metrics, f'{key}/xnorm'),
        auc=100.0 * auc(scores, issame), eer=100.0 * eer(scores, issame))
    entry['tar_at_far'] = {
        format_far(far): dict(far=float(far), measurable=bool(res['measurable']),
                              tar=100.0 * res['tar'], threshold=res['threshold'],
                              far_actual=res['far_actual'],
                              tar_nearest=100.0 * res['tar_nearest'])
        for far, res in tar_at_far(scores, issame, tuple(fars)).items()}
    far, tar, thresholds = roc_curve(scores, issame)
    num_points = int(far.size)
    far, tar, thresholds = subsample_roc(far, tar, thresholds, max_roc_points)
    entry['roc'] = dict(far=far.tolist(), tar=tar.tolist(), threshold=thresholds.tolist(),
                        num_points=num_points, min_far=1.0 / max(1, entry['num_impostor']))
    entry['score_histogram'] = score_histogram(scores, issame, hist_bins)
    return entry


def build_report(metrics: Mapping[str, Any], set_scores: Mapping[str, Mapping[str, Any]], *,
                 fars: Sequence[float] = REPORT_FARS, mfr_far: float = 1e-4,
                 prefix: Optional[str] = None, meta: Optional[Mapping[str, Any]] = None,
                 max_roc_points: int = 2000, hist_bins: Optional[int] = None) -> dict:
    """The report dict of a verification test (the content of ``metrics.json``).

    Args:
        metrics (Mapping[str, Any]): Flat metrics as ``runner.test()`` returned them.
        set_scores (Mapping[str, Mapping]): ``{set_name: {'scores': ..., 'issame': ...}}``,
            e.g. ``VerificationMetric(keep_scores=True).last_scores``.
        fars (Sequence[float]): Target FARs of the TAR figures; ``mfr_far`` is added.
            Defaults to :data:`REPORT_FARS`.
        mfr_far (float): FAR of the masked-protocol summary. Defaults to 1e-4.
        prefix (str, optional): The metric's key prefix (without ``/``), if any.
        meta (Mapping, optional): Provenance stored under ``meta``.
        max_roc_points (int): ROC points kept per set. Defaults to 2000.
        hist_bins (int, optional): Score histogram bins. Defaults to None (see
            :func:`score_histogram`).

    Returns:
        dict: The report (JSON-ready: NaN / inf become None).
    """
    fars = tuple(sorted({float(f) for f in fars} | {float(mfr_far)}))
    key_prefix = f'{prefix}/' if prefix else ''
    sets = {name: set_report(s['scores'], s['issame'], metrics, name, fars=fars,
                             prefix=key_prefix, max_roc_points=max_roc_points,
                             hist_bins=hist_bins)
            for name, s in set_scores.items()}
    mfr_key = format_far(float(mfr_far))
    mfr = mfr_summary({name: dict(tar=_nan(e['tar_at_far'][mfr_key]['tar']),
                                  accuracy=e['accuracy']) for name, e in sets.items()})
    report: Dict[str, Any] = dict(metrics)
    report.update(format=REPORT_FORMAT, version=REPORT_VERSION, fars=list(fars),
                  mfr_far=float(mfr_far), sets=sets, mfr=mfr, meta=dict(meta or {}))
    return _json_ready(report)


def _nan(value: Optional[float]) -> float:
    return float('nan') if value is None else float(value)


def _json_ready(obj: Any) -> Any:
    """Plain Python containers and numbers; NaN / inf -> None."""
    if isinstance(obj, Mapping):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def safe_file_part(name: str) -> str:
    """A set name made safe for a file name (``lfw@masked_unmasked`` stays as it is)."""
    return re.sub(r'[^A-Za-z0-9._@+-]', '_', name)


def _fmt(value: Optional[float], digits: int = 2) -> str:
    return 'n/a' if value is None or not math.isfinite(value) else f'{value:.{digits}f}'


def markdown_table(report: Mapping[str, Any]) -> str:
    """The Markdown of ``metrics.md``: a table of the sets, and the MFR summary if any.

    Args:
        report (Mapping[str, Any]): A report (:func:`build_report` / :func:`load_report`).

    Returns:
        str: Markdown text.
    """
    fars = [float(f) for f in report['fars']]
    head = (['Set', 'Accuracy (%)'] + [f'TAR@FAR={format_far(f)} (%)' for f in fars]
            + ['AUC (%)', 'EER (%)', 'XNorm'])
    lines = ['# Verification results', '', '| ' + ' | '.join(head) + ' |',
             '|' + '|'.join(['---'] + ['---:'] * (len(head) - 1)) + '|']
    for name, entry in report['sets'].items():
        tars = [_fmt(entry['tar_at_far'].get(format_far(f), {}).get('tar')) for f in fars]
        row = ([name, f"{_fmt(entry['accuracy'])} ± {_fmt(entry['accuracy_std'])}"] + tars
               + [_fmt(entry['auc']), _fmt(entry['eer']), _fmt(entry['xnorm'])])
        lines.append('| ' + ' | '.join(row) + ' |')
    lines += ['', 'Accuracy: insightface 10-fold (mean ± std over folds). TAR@FAR: highest TAR '
              'whose FAR does not exceed the target (conservative; the nearest-FAR value is in '
              'metrics.json); n/a: fewer than 1/FAR impostor pairs, not measurable.']
    mfr = report.get('mfr') or {}
    if mfr:
        far = format_far(float(report['mfr_far']))
        protocols = [p for p in ('clean', 'masked_unmasked', 'masked_masked')
                     if any(p in s['tar'] for s in mfr.values())]
        masked = [p for p in protocols if p != 'clean']
        head = (['Set'] + [f'TAR@FAR={far} {p} (%)' for p in protocols]
                + [f'TAR drop {p} (pts)' for p in masked]
                + [f'Accuracy drop {p} (pts)' for p in masked])
        lines += ['', f'## Masked-face protocols (ICCV 2021 MFR style, FAR={far})', '',
                  '| ' + ' | '.join(head) + ' |',
                  '|' + '|'.join(['---'] + ['---:'] * (len(head) - 1)) + '|']
        for base, summary in mfr.items():
            row = ([base] + [_fmt(summary['tar'].get(p)) for p in protocols]
                   + [_fmt(summary.get('tar_drop', {}).get(p)) for p in masked]
                   + [_fmt(summary.get('accuracy_drop', {}).get(p)) for p in masked])
            lines.append('| ' + ' | '.join(row) + ' |')
        lines += ['', 'masked_unmasked: the first image of each pair wears a synthetic mask; '
                  'masked_masked: both. Drops are clean minus masked.']
    return '\n'.join(lines) + '\n'


def roc_figure(report: Mapping[str, Any], set_name: str):
    """The ROC plot of one set of a report (a Figure, not yet saved)."""
    from coupleface.visualization import plot_roc
    entry = report['sets'][set_name]
    curve = dict(far=entry['roc']['far'], tar=entry['roc']['tar'], label=set_name,
                 auc=entry['auc'], min_far=entry['roc']['min_far'])
    return plot_roc([curve], title=f'ROC: {set_name} ({entry["num_pairs"]} pairs)',
                    mark_fars=[float(f) for f in report['fars']])


def score_figure(report: Mapping[str, Any], set_name: str):
    """The genuine/impostor score histogram of one set of a report (a Figure)."""
    from coupleface.visualization import plot_score_histogram
    entry = report['sets'][set_name]
    return plot_score_histogram(entry['score_histogram'],
                                threshold=entry.get('best_threshold_cosine'),
                                title=f'Scores: {set_name} (accuracy '
                                      f"{_fmt(entry['accuracy'])}%)")


def render_report(report: Mapping[str, Any], out_dir: str, plots: bool = True) -> Dict[str, str]:
    """Write ``metrics.md`` and the per-set PNGs of a report.

    Args:
        report (Mapping[str, Any]): The report (as loaded from ``metrics.json``).
        out_dir (str): Output folder.
        plots (bool): Also write ``roc_<set>.png`` and ``scores_<set>.png``. Defaults to True.

    Returns:
        dict[str, str]: What was written, e.g. ``{'markdown': ..., 'roc/lfw': ...}``.
    """
    from coupleface.visualization import save_figure
    os.makedirs(out_dir, exist_ok=True)
    written = {'markdown': osp.join(out_dir, METRICS_MD)}
    with open(written['markdown'], 'w', encoding='utf-8') as f:
        f.write(markdown_table(report))
    if plots:
        for name in report['sets']:
            part = safe_file_part(name)
            written[f'roc/{name}'] = save_figure(roc_figure(report, name),
                                                 osp.join(out_dir, f'roc_{part}.png'))
            written[f'scores/{name}'] = save_figure(score_figure(report, name),
                                                    osp.join(out_dir, f'scores_{part}.png'))
    return written


def write_report(out_dir: str, figures: Mapping[str, Any], plots: bool = True) -> Dict[str, str]:
    """Write ``metrics.json``, then render ``metrics.md`` and the PNGs from that file.

    Args:
        out_dir (str): Output folder (created).
        figures (Mapping[str, Any]): The report (:func:`build_report`).
        plots (bool): Also write the PNGs. Defaults to True.

    Returns:
        dict[str, str]: Paths written: ``json``, ``markdown``, ``roc/<set>``,
        ``scores/<set>``.
    """
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, METRICS_JSON)
    fd, tmp = tempfile.mkstemp(prefix='.tmp_', suffix='.json', dir=out_dir)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(_json_ready(figures), f, indent=1, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    written = {'json': path}
    written.update(render_report(load_report(path), out_dir, plots=plots))
    return written


def load_report(path: str) -> dict:
    """Read a report written by :func:`write_report`.

    Args:
        path (str): ``metrics.json`` or the folder holding it.

    Returns:
        dict: The report.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file is not a coupleface verification report.
    """
    if osp.isdir(path):
        path = osp.join(path, METRICS_JSON)
    with open(path, encoding='utf-8') as f:
        report = json.load(f)
    if not isinstance(report, dict) or report.get('format') != REPORT_FORMAT:
        raise ValueError(f'{path}: not a coupleface verification report (written by '
                         "tools/test.py --out-dir); it has no format="
                         f"'{REPORT_FORMAT}'")
    if report.get('version') != REPORT_VERSION:
        raise ValueError(f"{path}: report version {report.get('version')!r}, this code reads "
                         f'version {REPORT_VERSION}')
    return report
