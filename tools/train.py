"""Train a coupleface model (OpenMMLab conventions: config, --work-dir, --resume,
--amp, --cfg-options, --launcher).

Examples:
    python tools/train.py configs/arcface/iresnet18-w8_1xb128_synthfaces-56px.py
    python tools/train.py coupleface::arcface/iresnet18-w8_1xb128_synthfaces-56px.py --resume
    bash tools/dist_train.sh CONFIG 2
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a coupleface model')
    parser.add_argument('config', help='config file path (or coupleface::rel/path.py)')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or, without a value, from the latest '
             'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper; needs a GPU)')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default='float16',
                        help='autocast dtype with --amp (bfloat16 needs no loss scaling)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the real batch size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, xxx=yyy (mmengine syntax)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--dist-timeout', type=float, default=None, metavar='SECONDS',
                        help='process-group timeout: a rank waiting longer than this for a '
                             'dead or hung rank ends the job with an error (default: '
                             'env_cfg.dist_cfg.timeout, else 1800)')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def add_tensorboard_backend(cfg: Config) -> None:
    """Log to TensorBoard too when it is installed (scalars stay in the local JSON)."""
    import importlib.util

    vis = cfg.get('visualizer')
    if vis is None or importlib.util.find_spec('tensorboard') is None:
        return
    backends = list(vis.get('vis_backends') or [])
    if not any(str(b.get('type', '')).endswith('TensorboardVisBackend') for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
        vis['vis_backends'] = backends


def find_resume_checkpoint(work_dir: str):
    """The checkpoint ``--resume`` continues from, or ``None`` (MMEngine's own search).

    MMEngine reads the ``last_checkpoint`` pointer, which it rewrites in place after
    each save: a kill inside that small write leaves it empty or pointing nowhere. Then
    the newest complete checkpoint of the work dir is used instead (saves are atomic, so
    every ``*.pth`` there is whole).
    """
    import glob

    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        target = f.read().strip()
    if target and osp.isfile(target):
        return target
    candidates = sorted(glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime)
    if not candidates:
        return None
    print(f'note: {pointer} is empty or stale ({target!r}); resuming from the newest '
          f'checkpoint {candidates[-1]}', flush=True)
    return candidates[-1]


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options."""
    import torch

    from coupleface.utils import resolve_config_path
    from coupleface.utils.dist import apply_dist_timeout

    cfg = Config.fromfile(resolve_config_path(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    apply_dist_timeout(cfg, getattr(args, 'dist_timeout', None))
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        if not torch.cuda.is_available():
            raise SystemExit('error: --amp needs a CUDA GPU: MMEngine\'s AmpOptimWrapper '
                             'does not run on CPU (drop --amp)')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.dtype = args.amp_dtype
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    add_tensorboard_backend(cfg)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise SystemExit(f'error: --resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    if cfg.get('load_from') and not cfg.get('resume') and '://' not in str(cfg.load_from) \
            and not osp.isfile(cfg.load_from):
        raise SystemExit(f'error: load_from checkpoint not found: {cfg.load_from}')

    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmengine.runner import Runner

    import coupleface  # noqa: F401  (coupleface:: configs, safe checkpoint loading)
    from coupleface.engine.launch import setup_cpu_distributed, teardown_distributed
    from coupleface.registry import RUNNERS
    from coupleface.setup_env import register_all_modules

    register_all_modules(init_default_scope=False)
    try:
        cfg = build_config(args)
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}')
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()
    teardown_distributed()  # after success only: a barrier after a failure would hang


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
