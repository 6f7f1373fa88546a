"""Section ``head``: memory and step time vs number of identities of the dense ArcFace
head and PartialFC (sample rate 1.0 / 0.3 / 0.1) on one rank, computed from shapes and
measured, and the number of identities this allows on N ranks x M GiB."""
from __future__ import annotations

import argparse
import gc
from typing import Dict, Optional

from coupleface.utils import benchmarking as bm

from .common import EMBED_DIM, run_memory_jobs

CAPACITY_TARGET = 10_000_000  # PartialFC 0.1 on 8 x 80 GB
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
        with bm.autocast(device, dtype):
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
    with bm.PeakMemory(device) as build:
        head = _build_head(num_classes, rate, device)
        gc.collect()
    weight = (torch.cuda.memory_allocated() - build.base if device == 'cuda'
              else bm.rss_bytes() - build.base)
    step = _head_step_fn(head, batch, num_classes, device, dtype)
    with bm.PeakMemory(device) as mem:
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
    """Memory (computed and measured) and step time per head and number of identities,
    and the identities ``--capacity-ranks`` ranks allow.

    Args:
        args: The options of ``tools/analysis_tools/benchmark.py``.

    Returns:
        dict: ``rows`` (per identities and head) and ``capacity``.
    """
    import torch

    device, batch = args.device, args.head_batch
    configs = [(c, name, rate) for c in args.head_classes for name, rate in _HEAD_VARIANTS]
    if device == 'cuda':
        mem = [head_memory_job('cuda', c, rate, batch, args.dtype) for c, _, rate in configs]
    else:
        jobs = [dict(num_classes=c, rate=rate, batch=batch) for c, _, rate in configs]
        mem = run_memory_jobs('head', f'{__name__}:head_memory_job', jobs,
                              dict(num_classes=64), args.isolate, args.threads)
    result = dict(batch=batch, dim=EMBED_DIM, rows=[], capacity={})
    rows = []
    for c in args.head_classes:
        fns = {}
        for name, rate in _HEAD_VARIANTS:
            torch.manual_seed(args.seed)
            fns[name] = _head_step_fn(_build_head(c, rate, device), batch, c, device,
                                      args.dtype)
        times = bm.round_robin(fns, args.repeats, args.warmup, device)
        del fns
        gc.collect()
        base = bm.median(times['dense ArcFace'])
        for (cc, name, rate), m in zip(configs, mem):
            if cc != c:
                continue
            comp = head_bytes(c, rate, batch)
            med = bm.median(times[name])
            act = m['total_bytes'] - comp['params']
            k_eff = (act - comp['centers']) / comp['logit_matrix']
            result['rows'].append(dict(num_classes=c, head=name, sample_rate=rate,
                                       computed=comp, measured=m, median_s=med,
                                       times_s=times[name], ratio=med / base, k_eff=k_eff))
            rows.append([f'{c:,}', name, bm.mib(comp['params']), bm.mib(comp['logit_matrix']),
                         bm.mib(comp['total']), bm.mib(m['total_bytes']),
                         f'{m["total_bytes"] / comp["total"]:.2f}', f'{k_eff:.1f}',
                         f'{med * 1e3:,.1f}', f'{med / base:.2f}'])
    # capacity on ranks x GiB
    ranks, gib = args.capacity_ranks, args.capacity_gib
    budget = (gib - args.capacity_reserve_gib) * bm.GiB
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
             bm.md_table([f'head ({ranks} x {gib:g} GiB)', 'per-rank bytes per identity',
                       'max identities'], cap_rows), '',
             f'Target: PartialFC r=0.1 >= {CAPACITY_TARGET / 1e6:g} M identities: {verdict} '
             f'({pfc / 1e6:,.1f} M).']
    bm.emit('Classification head', notes, bm.md_table(
        ['identities', 'head', 'W+grad+mom MiB', 'logits MiB', 'computed MiB', 'measured MiB',
         'measured / computed', 'k measured', 'step ms', 'time ratio'], rows,
        'rl' + 'r' * 8), after)
    return result
