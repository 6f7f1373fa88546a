"""IJB 1:N identification: open-set search of probe templates in each gallery.

insightface's ``ijb_1n.py`` merges both galleries and reports a closed-set TPIR with a
threshold taken over all non-mate similarities; here it is done open-set as in the IJB-B/IJB-C
protocols:

* per gallery (G1, G2), probes whose subject is not in the gallery are non-mated; TPIR at
  FPIR counts mated probes whose mate is at rank 1 with a score at or above the threshold, the
  threshold being the lowest that keeps the fraction of non-mated probes whose top score
  reaches it at or below the FPIR (no interpolation; NaN when ``FPIR < 1 / #non-mated``);
* the union of the galleries (insightface's search) is reported too, where every IJB probe is
  mated, so only its rank accuracies are measurable;
* ranks use competition ranking: a mate's rank is 1 + the number of gallery subjects scoring
  strictly higher (ties do not count against the mate).

Template features come from :mod:`.ijb_templates`.
"""
from __future__ import annotations

import csv
import os.path as osp
from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

from .ijb_templates import as_features, as_ids, l2_normalize_rows, select_templates
from .roc import is_measurable

__all__ = ['evaluate_identification', 'identification', 'read_template_subject_csv']


def identification(gallery_feats: Any,
                   gallery_ids: Any,
                   probe_feats: Any,
                   probe_ids: Any,
                   fpirs: Sequence[float] = (1e-2, 1e-1),
                   ranks: Sequence[int] = (1, 5, 10),
                   chunk_size: int = 4096) -> Dict[str, Any]:
    """Open-set 1:N identification of probe templates against a gallery.

    Similarities are cosines (rows are L2-normalised here). A subject with several gallery
    templates scores the maximum over them. A probe is *mated* when its subject is in the
    gallery, *non-mated* otherwise.

    Args:
        gallery_feats (array-like): ``G x D`` gallery template features.
        gallery_ids (array-like): ``G`` subject id of each gallery template.
        probe_feats (array-like): ``Q x D`` probe template features.
        probe_ids (array-like): ``Q`` subject id of each probe.
        fpirs (Sequence[float]): false positive identification rates for the TPIR.
        ranks (Sequence[int]): ranks of the CMC accuracies.
        chunk_size (int): probes scored at once. Defaults to 4096.

    Returns:
        dict: ``rank_accuracy`` (``{k: fraction of mated probes whose mate is within rank
        k}``, NaN without mated probes), ``tpir`` (``{fpir: dict(tpir, threshold, fpir_actual,
        measurable)}``), ``num_mated``, ``num_non_mated``, ``mate_ranks`` (``[#mated]``),
        ``mate_scores`` and ``non_mated_top_scores``.

    Examples:
        >>> g = np.eye(3)
        >>> p = np.array([[1., .1, 0.], [0., 1., .2], [.5, .5, .7]])
        >>> res = identification(g, [1, 2, 3], p, [1, 2, 9], fpirs=(1.0,), ranks=(1,))
        >>> res['rank_accuracy'][1], res['num_non_mated'], res['tpir'][1.0]['tpir']
        (1.0, 1, 1.0)
    """
    g = l2_normalize_rows(as_features(gallery_feats, 'gallery_feats').astype(np.float64))
    p = as_features(probe_feats, 'probe_feats')
    if p.shape[1] != g.shape[1]:
        raise ValueError(f'feature sizes differ: gallery {g.shape[1]}, probes {p.shape[1]}')
    g_ids = as_ids(gallery_ids, g.shape[0], 'gallery_ids')
    p_ids = as_ids(probe_ids, p.shape[0], 'probe_ids')
    ranks = tuple(int(k) for k in ranks)
    if any(k < 1 for k in ranks):
        raise ValueError(f'ranks must be >= 1, got {ranks}')

    # Columns grouped by subject; a subject's score is its best template's.
    col_order = np.argsort(g_ids, kind='stable')
    subjects, subj_starts = np.unique(g_ids[col_order], return_index=True)
    per_template = subjects.size == g_ids.size
    g = g[col_order]

    mated = np.isin(p_ids, subjects)
    mate_col = np.searchsorted(subjects, p_ids)
    mate_ranks = np.empty(int(mated.sum()), np.int64)
    mate_scores = np.empty(mate_ranks.size, np.float64)
    non_mated_top = np.empty(int((~mated).sum()), np.float64)
    i_m = i_n = 0
    for start in range(0, p.shape[0], max(int(chunk_size), 1)):
        stop = min(start + max(int(chunk_size), 1), p.shape[0])
        sim = l2_normalize_rows(p[start:stop].astype(np.float64)) @ g.T
        if not per_template:
            sim = np.maximum.reduceat(sim, subj_starts, axis=1)
        is_m = mated[start:stop]
        m_sim = sim[is_m]
        m_score = m_sim[np.arange(m_sim.shape[0]), mate_col[start:stop][is_m]]
        n = m_score.size
        mate_scores[i_m:i_m + n] = m_score
        mate_ranks[i_m:i_m + n] = 1 + np.sum(m_sim > m_score[:, None], axis=1)
        i_m += n
        n_top = sim[~is_m].max(axis=1) if sim.shape[1] else np.empty(0)
        non_mated_top[i_n:i_n + n_top.size] = n_top
        i_n += n_top.size

    rank_accuracy = {k: float(np.mean(mate_ranks <= k)) if mate_ranks.size else float('nan')
                     for k in ranks}
    sorted_top = np.sort(non_mated_top)[::-1]
    tpir: Dict[float, dict] = {}
    for target in fpirs:
        target_f = float(target)
        if not np.isfinite(target_f) or not 0 < target_f <= 1:
            raise ValueError(f'target FPIR must be in (0, 1], got {target!r}')
        if mate_ranks.size == 0 or not is_measurable(target_f, sorted_top.size):
            tpir[target] = dict(tpir=float('nan'), threshold=float('nan'),
                                fpir_actual=float('nan'), measurable=False)
            continue
        # At most k non-mated probes may reach the threshold: take it just above the
        # (k + 1)-th highest non-mated top score (the lowest threshold that does so).
        allowed = int(np.floor(target_f * sorted_top.size + 1e-9))
        if allowed >= sorted_top.size:
            threshold = -np.inf
        else:
            threshold = float(np.nextafter(sorted_top[allowed], np.inf))
        hits = (mate_ranks == 1) & (mate_scores >= threshold)
        tpir[target] = dict(tpir=float(np.mean(hits)), threshold=float(threshold),
                            fpir_actual=float(np.mean(non_mated_top >= threshold)),
                            measurable=True)
    return dict(rank_accuracy=rank_accuracy, tpir=tpir, num_mated=int(mate_ranks.size),
                num_non_mated=int(non_mated_top.size), mate_ranks=mate_ranks,
                mate_scores=mate_scores, non_mated_top_scores=non_mated_top)


def read_template_subject_csv(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """Read an IJB 1:N gallery or probe csv (``ijbc_1N_gallery_G1.csv``, ...).

    The files have a header ``TEMPLATE_ID,SUBJECT_ID,FILENAME,...`` (found by name, any case)
    and one line per image; a file without a header is read as template id, subject id in the
    first two columns.

    Args:
        path (str): the csv file.

    Returns:
        tuple[np.ndarray, np.ndarray]: the unique template ids (in order of first appearance)
        and the subject id of each (int64).

    Raises:
        ValueError: a malformed line or a template listed with two subjects (the message names
        the file and line).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: IJB 1:N file not found')
    subject_of: Dict[int, int] = {}
    first_line: Dict[int, int] = {}
    t_col, s_col = 0, 1
    with open(path, newline='', encoding='utf-8') as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if not row or not any(cell.strip() for cell in row):
                continue
            cells = [cell.strip() for cell in row]
            if lineno == 1 and not cells[0].lstrip('-').isdigit():
                header = [c.upper() for c in cells]
                if 'TEMPLATE_ID' not in header or 'SUBJECT_ID' not in header:
                    raise ValueError(f'{path}:1: header must name TEMPLATE_ID and SUBJECT_ID, '
                                     f'got {",".join(cells)[:80]!r}')
                t_col, s_col = header.index('TEMPLATE_ID'), header.index('SUBJECT_ID')
                continue
            if len(cells) <= max(t_col, s_col):
                raise ValueError(f'{path}:{lineno}: expected at least {max(t_col, s_col) + 1} '
                                 f'columns, got {len(cells)}')
            try:
                tid, sid = int(cells[t_col]), int(cells[s_col])
            except ValueError:
                raise ValueError(f'{path}:{lineno}: TEMPLATE_ID and SUBJECT_ID must be '
                                 f'integers, got {cells[t_col]!r}, {cells[s_col]!r}') from None
            if tid in subject_of and subject_of[tid] != sid:
                raise ValueError(f'{path}:{lineno}: template {tid} has subject {sid} but '
                                 f'{subject_of[tid]} on line {first_line[tid]}')
            if tid not in subject_of:
                subject_of[tid] = sid
                first_line[tid] = lineno
    if not subject_of:
        raise ValueError(f'{path}: no templates listed')
    return (np.fromiter(subject_of.keys(), np.int64, len(subject_of)),
            np.fromiter(subject_of.values(), np.int64, len(subject_of)))


def evaluate_identification(template_ids: Any,
                            template_feats: Any,
                            galleries: Mapping[str, Tuple[Any, Any]],
                            probe: Tuple[Any, Any],
                            fpirs: Sequence[float] = (1e-2, 1e-1),
                            ranks: Sequence[int] = (1, 5, 10),
                            combined: bool = True) -> Dict[str, dict]:
    """IJB 1:N: the probes against each gallery (open set) and against their union.

    Args:
        template_ids (array-like): ``T`` ids of the aggregated templates.
        template_feats (array-like): ``T x D`` template features.
        galleries (Mapping[str, tuple]): ``{'G1': (template_ids, subject_ids), ...}``, e.g.
            from :func:`read_template_subject_csv`.
        probe (tuple): ``(template_ids, subject_ids)`` of the probe templates.
        fpirs (Sequence[float]): FPIRs of the TPIR. Defaults to ``(1e-2, 1e-1)``.
        ranks (Sequence[int]): CMC ranks. Defaults to ``(1, 5, 10)``.
        combined (bool): also search the union of the galleries (insightface ``ijb_1n.py``,
            where every probe is mated). Defaults to True.

    Returns:
        dict[str, dict]: :func:`identification` results per gallery name (and ``'+'.join``
        of the names for the union).
    """
    probe_tids, probe_sids = probe
    probe_feats = select_templates(template_ids, template_feats, probe_tids, 'probe')
    results = {}
    items = list(galleries.items())
    if combined and len(items) > 1:
        items.append(('+'.join(name for name, _ in items),
                      (np.concatenate([np.asarray(t) for _, (t, _) in galleries.items()]),
                       np.concatenate([np.asarray(s) for _, (_, s) in galleries.items()]))))
    for name, (g_tids, g_sids) in items:
        g_feats = select_templates(template_ids, template_feats, g_tids, f'gallery {name}')
        results[name] = identification(g_feats, g_sids, probe_feats, probe_sids, fpirs=fpirs,
                                       ranks=ranks)
    return results
