"""Mine identity relations offline from a TeacherBank and write them as ``.npz``.

Reads the teacher embeddings of the original (unflipped) images from a TeacherBank
(``tools/extract_embeddings.py``), runs the mining pipeline the RelationMiningHook runs
(``coupleface.mining.mine_relations``: identity centers, each identity's ``K`` most similar
other identities), prints a summary and writes the relations file the hook loads
(``relations_file=``; with ``--hard-positives N`` also ``<out>_hard_positives.npy``). Its
meta is ``coupleface.mining.relations_meta`` (the keys the hook checks: ``teacher_sha256``
from the bank, ``dataset_len``, ``num_classes``, ``k``, ``hard_positives``) plus the bank's
provenance.

Labels come from a ``.npy`` of per-sample labels (in bank order) or from a config, whose
``train_dataloader.dataset`` is built and asked for ``get_gt_labels()``.

Examples:
    python tools/mine_relations.py work_dirs/bank/ms1mv2_r100 \\
        --labels configs/coupleface/xxx.py --k 8 --out work_dirs/relations.npz
    python tools/mine_relations.py bank/synth --labels labels.npy --k 4 --out rel.npz \\
        --matmul-dtype bfloat16
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Optional, Sequence, Tuple

import numpy as np


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Mine neighbour identities from a TeacherBank')
    parser.add_argument('bank_prefix', help='TeacherBank path without .npy/.json')
    parser.add_argument('--labels', required=True,
                        help='a .npy of per-sample labels, or a config (its train dataset)')
    parser.add_argument('--k', type=int, default=8, help='neighbour identities per identity')
    parser.add_argument('--out', required=True, help='output relations file (.npz)')
    parser.add_argument('--num-classes', type=int,
                        help='number of identities (default: from the dataset, or max label+1)')
    parser.add_argument('--hard-positives', type=int, default=0,
                        help='also write each identity\'s N images farthest from its center '
                        'to <out>_hard_positives.npy (as the RelationMiningHook does)')
    parser.add_argument('--allow-empty', action='store_true',
                        help='accept identities without samples (no neighbours, never one)')
    parser.add_argument('--chunk-size', type=int, default=4096, help='kNN block size')
    parser.add_argument('--matmul-dtype', choices=['float32', 'bfloat16', 'float16'],
                        default='float32',
                        help='precision of the kNN block products (candidates are re-ranked '
                        'in float32)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def load_labels(source: str, num_classes: Optional[int]) -> Tuple[np.ndarray, int, str]:
    """Labels, number of identities and a dataset description from a .npy or a config."""
    if source.endswith('.npy'):
        labels = np.load(source, allow_pickle=False)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f'{source}: expected a 1-D integer array of labels, got '
                             f'{labels.dtype} {labels.shape}')
        count = num_classes if num_classes is not None else int(labels.max()) + 1
        return labels.astype(np.int64), count, osp.abspath(source)
    from mmengine.config import Config

    import coupleface  # noqa: F401  (makes coupleface:: config paths resolvable)
    from coupleface.registry import DATASETS
    from coupleface.setup_env import register_all_modules
    from coupleface.utils import resolve_config_path

    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(resolve_config_path(source))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    labels = np.asarray(dataset.get_gt_labels(), dtype=np.int64)
    if num_classes is None:
        num_classes = getattr(dataset, 'num_classes', None) or int(labels.max()) + 1
    return labels, int(num_classes), f'{type(dataset).__name__}:{source}'


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    from coupleface.mining import mine_relations, relations_meta, save_mined_relations
    from coupleface.models.distillers.teacher_bank import TeacherBank

    if not args.out.endswith('.npz'):
        raise ValueError(f'--out must end with .npz, got {args.out}')
    bank = TeacherBank(args.bank_prefix)
    labels, num_classes, dataset = load_labels(args.labels, args.num_classes)
    if len(labels) != len(bank):
        raise ValueError(f'{len(labels)} labels from {args.labels} but the bank '
                         f'{bank.npy_path} holds {len(bank)} samples')
    # The contract keys the RelationMiningHook checks, plus the bank's own provenance.
    provenance = {key: value for key, value in bank.meta.items()
                  if key not in ('num_samples', 'embedding_dim', 'dtype')}
    provenance.update(labels_source=dataset, bank=osp.abspath(args.bank_prefix))
    meta = relations_meta(bank.meta.get('teacher_sha256', ''), len(bank), num_classes,
                          args.k, args.hard_positives, extra=provenance)
    # The orig view (slot 0) of the memory-mapped bank, read in chunks.
    mined = mine_relations(
        bank.array[:, 0], labels, num_classes, args.k, hard_positives=args.hard_positives,
        chunk_size=args.chunk_size, allow_empty=args.allow_empty,
        progress=not args.no_progress, meta=meta,
        matmul_dtype=None if args.matmul_dtype == 'float32' else args.matmul_dtype)
    save_mined_relations(args.out, mined)

    counts = np.bincount(labels, minlength=num_classes)
    sims = mined.similarities
    top1, kth = sims[:, 0][np.isfinite(sims[:, 0])], sims[:, -1][np.isfinite(sims[:, -1])]
    print(f'{len(bank)} samples, {num_classes} identities ({int((counts == 0).sum())} empty, '
          f'{np.median(counts):.0f} images median), D={bank.embedding_dim}, K={args.k}')
    if len(top1):
        q5, q50, q95 = np.quantile(top1, [0.05, 0.5, 0.95])
        print(f'top-1 neighbour cosine: mean {top1.mean():.4f}, 5%/50%/95% '
              f'{q5:.4f}/{q50:.4f}/{q95:.4f}, max {top1.max():.4f}; '
              f'neighbour {args.k} mean {kth.mean():.4f}')
    t_centers = mined.seconds['centers']
    print(f'centers {t_centers:.1f} s, total {t_centers + mined.seconds["neighbours"]:.1f} s; '
          f'wrote {args.out}')


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
