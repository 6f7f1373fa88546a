"""FLOPs and parameters of a config's embedding network (backbone + neck), via MMEngine.

For a distiller config both the student and the teacher are counted (the teacher only when
it is a model, not a bank). The head (the classifier, training only) is left out, as FR
papers count it: at deployment a face model maps an image to its embedding.
``mmengine.analysis.get_model_complexity_info`` counts one multiply-add as one FLOP
(fvcore's convention); insightface's tables count the multiply and the add, twice that
(IResNet-100 at 112 px: 12.1 G multiply-adds here, "24.2 GFLOPs" there). Both are printed.

Examples:
    python tools/analysis_tools/get_flops.py configs/arcface/mobilefacenet_8xb128_ms1mv3.py
    python tools/analysis_tools/get_flops.py \\
        configs/coupleface/mobilefacenet_coupleface-iresnet100_8xb136_ms1mv3.py --shape 112
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional

import torch
from torch import nn


class _Embedder(nn.Module):
    """``forward`` = the recognizer's ``extract_feat`` (what an embedding costs)."""

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.recognizer.extract_feat(x)


def count(recognizer: nn.Module, size: int) -> Dict[str, float]:
    """FLOPs (multiply-adds) and parameters of ``recognizer.extract_feat`` on one
    ``3 x size x size`` image, the head excluded.

    Returns:
        dict: ``flops``, ``params`` (backbone + neck) and ``embedding`` (its size).
    """
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger

    net = _Embedder(recognizer).eval()
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('ERROR')  # the tracer's notes on BN and untraced submodules
    with torch.no_grad():
        emb = net(torch.zeros(1, 3, size, size))
    info = get_model_complexity_info(net, inputs=(torch.zeros(1, 3, size, size),),
                                     show_table=False, show_arch=False)
    logger.setLevel(level)
    params = sum(p.numel() for name, p in recognizer.named_parameters()
                 if not name.startswith('head.'))
    return dict(flops=float(info['flops']), params=float(params), embedding=emb.shape[1])


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--shape', type=int, default=None,
                   help='input side in pixels (default: the test pipeline\'s resize, else 112)')
    from mmengine.config import DictAction
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='key=value overrides')
    return p.parse_args(argv)


def _input_size(cfg) -> int:
    for step in (cfg.get('test_dataloader') or {}).get('dataset', {}).get('pipeline', []):
        if step.get('type') == 'LoadFaceImage' and step.get('size'):
            size = step['size']
            return int(size[0] if isinstance(size, (list, tuple)) else size)
    return 112


def main(argv: Optional[List[str]] = None) -> None:
    from mmengine.config import Config

    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules
    from coupleface.utils import resolve_config_path

    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(resolve_config_path(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    size = args.shape or _input_size(cfg)
    model_cfg = cfg.model
    parts = {}
    if model_cfg.get('student') is not None:
        parts['student'] = model_cfg.student
        teacher = model_cfg.get('teacher') or {}
        if teacher.get('model') is not None:
            parts['teacher'] = teacher['model']
    else:
        parts['model'] = model_cfg
    print(f'{args.config}, input 3 x {size} x {size} (head excluded)')
    for name, sub in parts.items():
        c = count(MODELS.build(sub), size)
        print(f'  {name}: {c["flops"] / 1e9:.4f} G multiply-adds ({2 * c["flops"] / 1e9:.4f} '
              f'GFLOPs counting multiply and add), {c["params"] / 1e6:.3f} M params, '
              f'{c["embedding"]}-d embedding')


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli

    sys.exit(run_cli(main))
