"""Section ``loader``: images/s of the RecordIO data path against a raw ``cv2.imdecode``
DataLoader on the same payloads, interleaved (:mod:`.recordio_data` builds both)."""
from __future__ import annotations

import argparse
import os
import os.path as osp

from coupleface.utils.benchmarking import emit, md_table, median, round_robin

from .recordio_data import RawDecode, build_dataset, images_per_s, make_loader, make_synthetic


def bench_loader(args: argparse.Namespace, tmp: str) -> dict:
    """Images/s of the pipeline and of a raw decode per worker count, and their ratio.

    Args:
        args: The options of ``tools/analysis_tools/benchmark.py``.
        tmp: A scratch folder (the synthetic records).

    Returns:
        dict: ``records``, ``batch`` and per worker count the two rates and their ratio.
    """
    import cv2

    cv2.setNumThreads(1)
    prefix = osp.join(tmp, 'loader', 'train')
    os.makedirs(osp.dirname(prefix), exist_ok=True)
    make_synthetic(prefix, args.loader_samples)
    dataset = build_dataset(prefix)
    reader = dataset.reader
    from coupleface.datasets.mx_record import unpack
    payloads = [unpack(reader.read_idx(k))[1] for k in dataset.get_rec_keys().tolist()]
    raw = RawDecode(payloads)
    batch, num = 64, args.loader_samples
    fns, out = {}, {}
    for w in args.loader_workers:
        fns[f'pipeline w{w}'] = (lambda w=w: out.setdefault(f'pipeline w{w}', []).append(
            images_per_s(make_loader(dataset, w, batch), num)))
        fns[f'raw w{w}'] = (lambda w=w: out.setdefault(f'raw w{w}', []).append(
            images_per_s(make_loader(raw, w, batch), num)))
    round_robin(fns, args.repeats, 0)
    rows, result = [], dict(records=len(dataset), batch=batch, workers={})
    for w in args.loader_workers:
        ours, base = median(out[f'pipeline w{w}']), median(out[f'raw w{w}'])
        result['workers'][w] = dict(pipeline_images_per_s=ours, raw_images_per_s=base,
                                    ratio=ours / base, pipeline_runs=out[f'pipeline w{w}'],
                                    raw_runs=out[f'raw w{w}'])
        rows.append([w, f'{ours:,.0f}', f'{base:,.0f}', f'{ours / base:.2f}'])
    notes = [f'`MXFaceDataset` + `LoadFaceImage(112)` + `RandomFlip` + `PackFaceInputs` '
             f'(tools/analysis_tools/benchmark_dataloader.py) on {len(dataset):,} synthetic '
             f'112 px JPEG records, batch {batch}, shuffled, `pseudo_collate`, against a '
             'DataLoader that only `cv2.imdecode`s the same payloads from memory; images/s '
             f'after the first batch, median of {args.repeats} interleaved runs.']
    emit('Data loader', notes, md_table(
        ['workers', 'pipeline images/s', 'raw decode images/s', 'pipeline / raw'], rows))
    return result
