"""TAR@FAR over all pairs of a labelled set of unseen identities (stable low-FAR figures).

Embeds every image of an insightface-layout RecordIO set (``SET_DIR/ids.rec``, ``ids.idx``
and ``property``, as ``tools/make_synthfaces.py --all-pairs-ids`` writes to
``all_pairs_val/`` and ``all_pairs_test/``; ``--rec``/``--idx`` name other files) with the
model's test pipeline (:class:`coupleface.apis.FaceEmbedder`), scores all
``N (N - 1) / 2`` pairs in chunks and prints TAR at each target FAR with the number of
impostor pairs it rests on (:func:`coupleface.evaluation.functional.all_pairs_tar_at_far`).
``--out`` writes the figures as JSON.

Examples:
    python tools/eval_all_pairs.py configs/arcface/iresnet18-w8_1xb128_synthfaces-56px.py \\
        work_dirs/student/epoch_8.pth data/synthfaces/all_pairs_test --out all_pairs.json
    python tools/eval_all_pairs.py w600k_r50.onnx data/synthfaces/all_pairs_test  # no config
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

import numpy as np


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from coupleface.utils.cli import add_embedding_arguments, add_model_arguments, check_batch_size

    parser = argparse.ArgumentParser(description='TAR@FAR over all pairs of a labelled set')
    add_model_arguments(parser)
    parser.add_argument('set_dir', help='folder with the RecordIO set (ids.rec, ids.idx, '
                        'property)')
    parser.add_argument('--rec', default='ids.rec', help='record file in SET_DIR')
    parser.add_argument('--idx', default='ids.idx', help='index file in SET_DIR')
    parser.add_argument('--fars', type=float, nargs='+', default=[1e-2, 1e-3, 1e-4],
                        help='target FARs')
    parser.add_argument('--out', help='write the figures to this JSON file')
    add_embedding_arguments(parser, batch_size=128, chunk_size=2048)
    args = parser.parse_intermixed_args(argv)
    check_batch_size(parser, args)
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from coupleface.apis.face_embedder import FaceEmbedder
    from coupleface.datasets import MXFaceDataset
    from coupleface.evaluation.functional import all_pairs_tar_at_far

    if not osp.isfile(osp.join(args.set_dir, args.rec)):
        raise FileNotFoundError(
            f'{osp.join(args.set_dir, args.rec)} not found: make the all-pairs sets with '
            'tools/make_synthfaces.py OUT_DIR --all-pairs-ids N (they go to '
            'OUT_DIR/all_pairs_val and OUT_DIR/all_pairs_test)')
    dataset = MXFaceDataset(data_root=args.set_dir, rec_file=args.rec, idx_file=args.idx,
                            test_mode=True)
    embedder = FaceEmbedder(args.config, args.checkpoint, device=args.device,
                            batch_size=args.batch_size, network=args.network,
                            input_size=args.input_size)
    num = len(dataset)
    progress = None
    if not args.no_progress:
        from tqdm import tqdm
        progress = tqdm(total=num, unit='img', desc='embed', file=sys.stderr)
    chunks, labels = [], []
    try:
        for start in range(0, num, args.batch_size):
            infos = [dataset.get_data_info(i) for i in range(start, min(num, start +
                                                                         args.batch_size))]
            chunks.append(embedder.embed([info['img_bytes'] for info in infos]))
            labels += [int(info['gt_label']) for info in infos]
            if progress is not None:
                progress.update(len(infos))
    finally:
        if progress is not None:
            progress.close()
    figures = all_pairs_tar_at_far(np.concatenate(chunks), np.array(labels), fars=args.fars,
                                   chunk_size=args.chunk_size)
    result = dict(set_dir=args.set_dir, checkpoint=args.checkpoint, num_images=num,
                  num_identities=len(set(labels)), num_genuine=figures['num_genuine'],
                  num_impostor=figures['num_impostor'],
                  tar_at_far={f'{far:g}': figures[far] for far in args.fars})
    print(f'{num} images of {result["num_identities"]} identities: '
          f'{figures["num_genuine"]} genuine and {figures["num_impostor"]} impostor pairs')
    for far in args.fars:
        fig = figures[far]
        if not fig['measurable']:
            print(f'TAR@FAR={far:g}: not measurable (fewer than {1 / far:.0f} impostor pairs)')
            continue
        print(f'TAR@FAR={far:g}: {100 * fig["tar"]:.2f} % (FAR {100 * fig["far_actual"]:.4f} %, '
              f'{round(fig["far_actual"] * figures["num_impostor"])} impostor pairs accepted, '
              f'threshold {fig["threshold"]:.4f})')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2)
            f.write('\n')
    return result


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
