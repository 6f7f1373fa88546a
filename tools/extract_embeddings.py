"""Write a teacher bank: the teacher's embeddings of every training image and its mirror.

The bank (``PREFIX.npy``, float16 ``[N, 2, D]``, ``PREFIX.labels.npy``, the int64
identity label of every image, and ``PREFIX.json``) replaces the
online teacher in distillation when the teacher view has no random augmentation
(masks and other augmentation apply to the student view only). It records the
teacher checkpoint's sha256 and the dataset identity; the distiller refuses a bank
made for another teacher or dataset. The labels let RAD draw partners from the bank
(``CoupleFaceDistiller(rad_bank_partners=M)``).

Example::

    python tools/extract_embeddings.py configs/coupleface/CONFIG.py TEACHER.pth \\
        --out work_dirs/banks/synthfaces_teacher
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from mmengine.config import DictAction


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Extract teacher embeddings into a teacher bank')
    p.add_argument('config', help='a distillation config (its teacher and training set) or a '
                   'recognizer config (the model is the teacher)')
    p.add_argument('checkpoint', help='teacher checkpoint (recognizer or insightface backbone)')
    p.add_argument('--out', required=True, help='output prefix (writes PREFIX.npy, '
                   'PREFIX.labels.npy and PREFIX.json)')
    p.add_argument('--batch-size', type=int, default=256)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--device', default='cuda' if _cuda() else 'cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def dataset_labels(dataset) -> np.ndarray:
    """The int64 identity label of every sample of a training set, in dataset order.

    ``get_gt_labels()`` when the dataset has it (``MXFaceDataset``,
    ``ImageFolderFaceDataset``: no image is read), else ``gt_label`` of each item's
    ``get_data_info``.
    """
    if hasattr(dataset, 'get_gt_labels'):
        labels = np.asarray(dataset.get_gt_labels(), dtype=np.int64).reshape(-1)
    else:
        labels = np.array([int(np.asarray(dataset.get_data_info(i)['gt_label']).reshape(-1)[0])
                           for i in range(len(dataset))], dtype=np.int64)
    if labels.shape != (len(dataset),):
        raise ValueError(f'{type(dataset).__name__} gave {labels.size} labels for '
                         f'{len(dataset)} samples')
    return labels


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmengine.config import Config

    import coupleface  # noqa: F401
    from coupleface.datasets.clean_view import (
        clean_view_embeddings,
        dataset_identity,
        teacher_view_size,
    )
    from coupleface.models.distillers.teacher import build_frozen_teacher
    from coupleface.models.distillers.teacher_bank import write_teacher_bank
    from coupleface.registry import DATASETS, MODELS
    from coupleface.setup_env import register_all_modules
    from coupleface.utils import resolve_config_path

    register_all_modules()
    cfg = Config.fromfile(resolve_config_path(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.model.type == 'CoupleFaceDistiller':
        if not cfg.model.get('teacher'):
            raise SystemExit(f'error: {args.config} distils from a teacher bank (model.teacher '
                             'is None): pass the teacher\'s own config or an online-teacher '
                             'distillation config')
        model_cfg = cfg.model.teacher.model
    else:
        model_cfg = cfg.model
    teacher, info = build_frozen_teacher(dict(model=model_cfg, checkpoint=args.checkpoint))
    teacher.to(args.device)
    preprocessor = MODELS.build(cfg.model.get('data_preprocessor') or
                                dict(type='FaceDataPreprocessor')).to(args.device)

    ds_cfg = cfg.train_dataloader.dataset
    dataset = DATASETS.build(ds_cfg)
    size = teacher_view_size(dataset.pipeline)
    start = time.time()

    def chunks():
        for (emb, ) in clean_view_embeddings(dataset, range(len(dataset)), size, preprocessor,
                                             [teacher], batch_size=args.batch_size,
                                             num_workers=args.workers, flip=True,
                                             desc='teacher bank'):
            yield emb

    meta = dict(teacher_sha256=info['teacher_sha256'], dataset=dataset_identity(dataset),
                teacher_checkpoint=info['teacher_checkpoint'])
    path = write_teacher_bank(args.out, chunks(), meta, num_samples=len(dataset),
                              labels=dataset_labels(dataset))
    print(f'wrote {path}: {len(dataset)} images x 2 views in {time.time() - start:.1f} s',
          flush=True)


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
