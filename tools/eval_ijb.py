"""Evaluate a recognizer on IJB-B / IJB-C: 1:1 TAR@FAR and, when the files exist, 1:N.

Reads the insightface layout (``ROOT/meta/{name}_*.txt``, ``ROOT/loose_crop/``, see
:mod:`coupleface.datasets.ijb`), aligns each loose crop from its 5 landmarks, embeds the images
with a multi-worker DataLoader (progress bar with images/s), aggregates templates and scores
the template pairs (:class:`coupleface.evaluation.metrics.IJBMetric`, insightface test modes
N1/D1; ``--flip-test`` for F2). Prints the TAR@FAR table (conservative TAR and insightface's
nearest-FAR TAR) and the 1:N table, and writes ``OUT_DIR/{name}_results.json``.

The model is the config's recognizer (a distiller config gives its student); the checkpoint may
be a recognizer, a distiller or a bare insightface ``backbone.pth`` (read without running
pickled code). Without a config: an ``.onnx`` model (insightface's ``w600k_r50.onnx``) or a
bare arcface_torch ``backbone.pth`` (``--network r50``, or read from the weights), see
:mod:`coupleface.apis.model_source`.

Examples:
    python tools/eval_ijb.py configs/arcface/iresnet18-w8_1xb128_synthfaces-56px.py epoch_4.pth \\
        --root data/IJBC --name ijbc --batch-size 256 --workers 8 --out-dir results/
    python tools/eval_ijb.py CONFIG backbone.pth --root data/IJBB --name ijbb --flip-test
    python tools/eval_ijb.py w600k_r50.onnx --root data/IJBC --name ijbc --flip-test
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from coupleface.utils.cli import add_device_argument, add_model_arguments

    parser = argparse.ArgumentParser(description='IJB-B / IJB-C template evaluation')
    add_model_arguments(parser)
    parser.add_argument('--root', required=True, help='IJB folder (meta/ and loose_crop/)')
    parser.add_argument('--name', default='ijbc', choices=['ijbb', 'ijbc'],
                        help='which set: the meta files prefix (default ijbc)')
    parser.add_argument('--batch-size', type=int, default=128, help='images per batch')
    parser.add_argument('--workers', type=int, default=4, help='DataLoader workers')
    parser.add_argument('--out-dir', help='write {name}_results.json (and scores) here')
    add_device_argument(parser)
    parser.add_argument('--size', type=int, default=None, help='aligned face side (default: '
                        "the config's test input size)")
    parser.add_argument('--flip-test', action='store_true',
                        help='embed image + mirror (insightface F2); default: the config')
    parser.add_argument('--no-norm-score', action='store_true',
                        help='L2-normalise image embeddings before aggregation (N0)')
    parser.add_argument('--no-detector-score', action='store_true',
                        help='ignore the faceness scores (D0)')
    parser.add_argument('--fars', type=float, nargs='+',
                        default=[1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1], help='target FARs')
    parser.add_argument('--no-1n', action='store_true', help='skip 1:N identification')
    parser.add_argument('--save-scores', action='store_true',
                        help='also write the pair scores and labels (.npz) to --out-dir')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_intermixed_args(argv)


def _pct(value: float) -> str:
    return '   n/a' if value is None or math.isnan(value) else f'{100.0 * value:6.2f}'


def format_verification_table(result: dict) -> str:
    """The 1:1 table: one row per target FAR."""
    lines = [f"{result['name'].upper()} 1:1 verification: {result['num_images']} images, "
             f"{result['num_templates']} templates, {result['num_pairs']} pairs "
             f"({result['num_positive_pairs']} positive)",
             f"{'FAR':>8}  {'TAR %':>6}  {'TAR % (nearest)':>15}  {'threshold':>9}  "
             f"{'actual FAR':>10}"]
    for far, res in result['tar_at_far'].items():
        if not res['measurable']:
            lines.append(f'{far:>8.0e}  {"n/a":>6}  {"n/a":>15}  (not measurable: fewer '
                         f'than {1 / far:.0f} negative pairs)')
            continue
        lines.append(f"{far:>8.0e}  {_pct(res['tar'])}  {_pct(res['tar_nearest']):>15}  "
                     f"{res['threshold']:>9.4f}  {res['far_actual']:>10.2e}")
    lines.append(f"AUC: {100.0 * result['auc']:.4f} %")
    return '\n'.join(lines)


def format_identification_table(search: dict, ranks: Sequence[int],
                                fpirs: Sequence[float]) -> str:
    """The 1:N table: one row per gallery."""
    head = f"{'gallery':<8} {'mated':>6} {'non-mated':>9} " + ' '.join(
        f'{"rank" + str(k):>6}' for k in ranks) + ' ' + ' '.join(
        f'{"TPIR@" + format(f, ".0e"):>11}' for f in fpirs)
    lines = ['1:N identification (open set; TPIR in %, n/a = not measurable)', head]
    for gallery, res in search.items():
        lines.append(f"{gallery:<8} {res['num_mated']:>6} {res['num_non_mated']:>9} " + ' '.join(
            _pct(res['rank_accuracy'][k]) for k in ranks) + ' ' + ' '.join(
            f"{_pct(res['tpir'][f]['tpir']):>11}" for f in fpirs))
    return '\n'.join(lines)


def _json_value(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    import torch
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    import coupleface  # noqa: F401  (safe checkpoint loading, coupleface:: configs)
    from coupleface.apis.model_source import load_embedding_model
    from coupleface.datasets.ijb import IJBDataset, ijb_test_pipeline
    from coupleface.evaluation.metrics.ijb_metric import IJBMetric
    from coupleface.setup_env import register_all_modules

    register_all_modules()
    if args.batch_size < 1 or args.workers < 0:
        raise ValueError('--batch-size must be >= 1 and --workers >= 0')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    device = args.device

    source = load_embedding_model(args.checkpoint, args.config, network=args.network,
                                  input_size=args.input_size, device=device,
                                  flip_test=True if args.flip_test else None)
    model = source.model
    size = args.size or source.input_size
    dataset = IJBDataset(args.root, name=args.name, pipeline=ijb_test_pipeline(size))
    metric = IJBMetric(fars=args.fars, identification=not args.no_1n,
                       use_norm_score=not args.no_norm_score,
                       use_detector_score=not args.no_detector_score)
    metric.dataset_meta = dataset.metainfo
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False,
                        num_workers=args.workers, collate_fn=pseudo_collate,
                        pin_memory=device.startswith('cuda'),
                        persistent_workers=False)
    print(f'{args.name}: {len(dataset)} images, {dataset.metainfo["num_templates"]} templates, '
          f'{dataset.metainfo.get("num_pairs", "?")} pairs; aligned to {size} px, flip test '
          f'{"on" if model.flip_test else "off"}, device {device}', flush=True)

    start = time.perf_counter()
    with torch.inference_mode(), tqdm(total=len(dataset), unit='img', dynamic_ncols=True,
                                      disable=args.no_progress, desc='embedding') as bar:
        for batch in loader:
            outputs = model.test_step(batch)
            metric.process(batch, outputs)
            bar.update(len(outputs))
    seconds = time.perf_counter() - start
    print(f'embedded {len(dataset)} images in {seconds:.1f} s '
          f'({len(dataset) / max(seconds, 1e-9):.1f} images/s)', flush=True)

    start = time.perf_counter()
    metrics = metric.evaluate(len(dataset))
    result = metric.last_result
    result['auc'] = metrics[f'{result["name"]}/auc'] / 100.0
    print(format_verification_table(result))
    if 'identification' in result:
        print(format_identification_table(result['identification'], metric.ranks,
                                          metric.fpirs))
    print(f'scoring took {time.perf_counter() - start:.1f} s', flush=True)

    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        out = dict(
            name=args.name, config=args.config, checkpoint=args.checkpoint, root=args.root,
            aligned_size=size, flip_test=bool(model.flip_test),
            use_norm_score=not args.no_norm_score,
            use_detector_score=not args.no_detector_score,
            num_images=result['num_images'], num_templates=result['num_templates'],
            num_pairs=result['num_pairs'], embedding_seconds=round(seconds, 2),
            metrics={k: _json_value(float(v)) for k, v in metrics.items()},
            tar_at_far={format(far, '.0e'): {k: _json_value(v) for k, v in res.items()}
                        for far, res in result['tar_at_far'].items()})
        path = osp.join(args.out_dir, f'{args.name}_results.json')
        with open(path, 'w') as f:
            json.dump(out, f, indent=2)
        print(f'results written to {path}')
        if args.save_scores:
            import numpy as np
            np.savez(osp.join(args.out_dir, f'{args.name}_scores.npz'),
                     scores=result['scores'], labels=result['labels'])
    return metrics


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
