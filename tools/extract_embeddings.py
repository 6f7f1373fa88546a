"""Write a teacher bank: the teacher's embeddings of every training image and its mirror.

The bank (``PREFIX.npy``, float16 ``[N, 2, D]``, ``PREFIX.labels.npy``, the int64
identity label of every image, and ``PREFIX.json``) replaces the
online teacher in distillation when the teacher view has no random augmentation
(masks and other augmentation apply to the student view only). It records the
teacher checkpoint's sha256 and the dataset identity; the distiller refuses a bank
made for another teacher or dataset. The labels let RAD draw partners from the bank
(``CoupleFaceDistiller(rad_bank_partners=M)``).

The teacher is the config's teacher model (or, for a recognizer config, its model) with
CHECKPOINT, or, whatever the config's model, an ``.onnx`` recognizer (insightface's
``w600k_r50.onnx``: distil without its PyTorch weights) or a bare arcface_torch
``backbone.pth`` with ``--network`` (:mod:`coupleface.apis.model_source`); the config then
only gives the training set. A teacher-bank distillation config works then too.

Example::

    python tools/extract_embeddings.py configs/coupleface/CONFIG.py TEACHER.pth \\
        --out work_dirs/banks/synthfaces_teacher
    python tools/extract_embeddings.py configs/coupleface/CONFIG.py w600k_r50.onnx \\
        --out work_dirs/banks/w600k_r50
    python tools/extract_embeddings.py configs/coupleface/CONFIG.py backbone.pth \\
        --network r100 --out work_dirs/banks/r100
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from mmengine.config import DictAction


def parse_args(argv=None) -> argparse.Namespace:
    from coupleface.utils.cli import add_device_argument, add_network_arguments

    p = argparse.ArgumentParser(description='Extract teacher embeddings into a teacher bank')
    p.add_argument('config', help='a distillation config (its teacher and training set) or a '
                   'recognizer config (the model is the teacher)')
    p.add_argument('checkpoint', help='teacher checkpoint (recognizer or insightface backbone), '
                   'or the teacher as an .onnx model')
    p.add_argument('--out', required=True, help='output prefix (writes PREFIX.npy, '
                   'PREFIX.labels.npy and PREFIX.json)')
    p.add_argument('--batch-size', type=int, default=256)
    p.add_argument('--workers', type=int, default=2)
    add_device_argument(p)
    add_network_arguments(p)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


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


def build_teacher(args: argparse.Namespace, model_cfg, size):
    """The frozen teacher and its provenance: an ``.onnx`` model (``OnnxRecognizer``), a
    bare backbone with ``--network``, or the config's teacher model with the checkpoint.

    Args:
        args: ``checkpoint``, ``network`` and ``input_size`` of the command line.
        model_cfg: The config's teacher (recognizer) model, or None.
        size: The teacher view's image side (the input size of a config-less teacher unless
            ``--input-size`` says otherwise).

    Returns:
        tuple: The teacher (eval mode, no gradients) and ``{'teacher_checkpoint',
        'teacher_sha256'}``.
    """
    import os.path as osp

    from coupleface.apis.model_source import is_onnx, source_model_config
    from coupleface.models.distillers.teacher import build_frozen_teacher, freeze
    from coupleface.registry import MODELS
    from coupleface.utils.file_hash import file_sha256

    input_size = args.input_size or size
    if is_onnx(args.checkpoint):
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(f'teacher ONNX model not found: {args.checkpoint}')
        teacher = MODELS.build(source_model_config(args.checkpoint, args.network, input_size))
        return freeze(teacher), dict(teacher_checkpoint=osp.abspath(args.checkpoint),
                                     teacher_sha256=file_sha256(args.checkpoint))
    if args.network or model_cfg is None:
        return build_frozen_teacher(dict(network=args.network, checkpoint=args.checkpoint,
                                         input_size=input_size))
    return build_frozen_teacher(dict(model=model_cfg, checkpoint=args.checkpoint))


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmengine.config import Config

    import coupleface  # noqa: F401
    from coupleface.apis.model_source import is_onnx
    from coupleface.datasets.clean_view import (
        clean_view_embeddings,
        dataset_identity,
        teacher_view_size,
    )
    from coupleface.models.distillers.teacher_bank import write_teacher_bank
    from coupleface.registry import DATASETS, MODELS
    from coupleface.setup_env import register_all_modules
    from coupleface.utils import resolve_config_path

    register_all_modules()
    cfg = Config.fromfile(resolve_config_path(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.model.type == 'CoupleFaceDistiller':
        if not cfg.model.get('teacher') and not args.network and not is_onnx(args.checkpoint):
            raise SystemExit(f'error: {args.config} distils from a teacher bank (model.teacher '
                             'is None): pass the teacher\'s own config or an online-teacher '
                             'distillation config, or the teacher as an .onnx model or a '
                             'backbone.pth with --network')
        model_cfg = (cfg.model.get('teacher') or {}).get('model')
    else:
        model_cfg = cfg.model
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    size = teacher_view_size(dataset.pipeline)
    teacher, info = build_teacher(args, model_cfg, size)
    teacher.to(args.device)
    preprocessor = MODELS.build(cfg.model.get('data_preprocessor') or
                                dict(type='FaceDataPreprocessor')).to(args.device)
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
