"""Write an insightface ``backbone.pth`` from a coupleface checkpoint (IResNet, MobileFaceNet).

insightface arcface_torch saves a trained model as the plain ``state_dict()`` of its backbone
(``backbone.pth``) and its tools (``eval_ijb.py``, ``inference.py``, ``torch2onnx.py``) load it
with ``get_model(name, ...).load_state_dict(torch.load(path))``. Our ``IResNet`` and
``MobileFaceNet`` have insightface's exact module names and shapes, so the conversion is the
``backbone.*`` keys of a recognizer checkpoint (or ``student.backbone.*`` of a distiller
checkpoint) without their prefix, as fp32 tensors.

Only those two backbone families exist in insightface: a checkpoint with another backbone
(an mmpretrain backbone + ``EmbeddingNeck``, ...) is refused with a clear error. The
architecture is read from ``--config`` when given, otherwise inferred from the keys and
shapes; either way the backbone is rebuilt and loaded strictly before anything is written.
insightface builds IResNets only at full width (64..512 channels) for 112 px faces, and
MobileFaceNets only for 112 px (7x7 GDC kernel): a narrower or smaller model keeps the keys
but not the shapes, and the tool says so.

Examples:
    python tools/model_converters/to_insightface.py work_dirs/student.pth backbone.pth
    python tools/model_converters/to_insightface.py distilled.pth backbone.pth \\
        --config configs/coupleface/xxx.py
    # then, in insightface/recognition/arcface_torch:
    #   get_model('mbf', num_features=512).load_state_dict(torch.load('backbone.pth'))
"""
from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

INSIGHTFACE_BACKBONES = ('IResNet', 'MobileFaceNet')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a coupleface IResNet/MobileFaceNet checkpoint to an insightface '
        'backbone.pth')
    parser.add_argument('checkpoint', help='recognizer or distiller checkpoint')
    parser.add_argument('out', help='output backbone.pth')
    parser.add_argument('--config', help='the model config (default: infer the architecture '
                        'from the checkpoint keys)')
    return parser.parse_args(argv)


def infer_backbone_config(state: Mapping[str, torch.Tensor]) -> Dict[str, Any]:
    """Our backbone config (``IResNet`` / ``MobileFaceNet``) matching a bare backbone state dict.

    The architecture is read by
    :func:`coupleface.models.backbones.insightface_networks.backbone_config_from_state_dict`
    (the one reader of bare backbones); a MobileFaceNet's ``blocks`` and ``scale`` are spelt
    out for :func:`insightface_notes`.

    Args:
        state: Backbone keys without prefix (``conv1.weight``, ``layers.0.layers.0.weight``).

    Returns:
        dict: A config with ``type`` and the size arguments (depth/blocks, widths, embedding
        size, an input size giving the same last feature map).

    Raises:
        ValueError: neither layout.
    """
    from coupleface.models.backbones import MobileFaceNet
    from coupleface.models.backbones.insightface_networks import backbone_config_from_state_dict

    cfg = backbone_config_from_state_dict(state, fit_input_size=True)
    if cfg['type'] == 'MobileFaceNet':
        cfg = dict(MobileFaceNet.arch_settings[cfg.pop('arch')], **cfg)
    return cfg


def insightface_notes(backbone_cfg: Mapping[str, Any]) -> List[str]:
    """How insightface builds this backbone, or why it cannot (other widths or input size)."""
    notes = []
    size = backbone_cfg.get('input_size', 112)
    if backbone_cfg['type'] == 'IResNet':
        from coupleface.models.backbones import IResNet

        depth = IResNet._parse_arch(backbone_cfg.get('arch', 50))
        emb = backbone_cfg.get('embedding_size', 512)
        base = backbone_cfg.get('base_channels', 64)
        notes.append(f"insightface: get_model('r{depth}', num_features={emb})")
        if base != 64 or size != 112:
            notes.append(f'warning: base_channels={base}, input_size={size}: insightface\'s '
                         'IResNet is 64 channels wide and takes 112 px faces; the keys match but '
                         'the shapes do not, so its get_model() cannot load this file')
    else:
        blocks = tuple(backbone_cfg.get('blocks', (1, 4, 6, 2)))
        scale = backbone_cfg.get('scale', 2)
        emb = backbone_cfg.get('embedding_size', 512)
        notes.append(f'insightface: get_mbf(fp16=False, num_features={emb}, blocks={blocks}, '
                     f'scale={scale})')
        if size != 112:
            notes.append(f'warning: input_size={size}: insightface\'s MobileFaceNet has a 7x7 '
                         'GDC kernel (112 px faces); its get_mbf() cannot load this file')
    return notes


def _backbone_state(state: Mapping[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    return OrderedDict((k[len('backbone.'):], v) for k, v in state.items()
                       if k.startswith('backbone.'))


def convert(checkpoint: str, out: str, config: Optional[str] = None
            ) -> Tuple['OrderedDict[str, torch.Tensor]', Dict[str, Any], List[str]]:
    """Write the insightface ``backbone.pth`` of ``checkpoint``.

    Args:
        checkpoint: Recognizer or distiller checkpoint (or already a bare backbone).
        out: Output path.
        config: Optional model config naming the architecture.

    Returns:
        tuple: The saved state dict, the backbone config it was checked with, and notes on
        loading it in insightface.

    Raises:
        ValueError: the backbone is not an IResNet/MobileFaceNet, or there is a neck.
        CheckpointKeyError: the checkpoint does not fit the (given or inferred) architecture.
    """
    from coupleface.apis.model_loading import (
        build_recognizer,
        load_config,
        load_recognizer_checkpoint,
        recognizer_model_config,
    )
    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules
    from coupleface.utils.checkpoint_save import atomic_save
    from coupleface.utils.checkpoint_state_dict import load_state_dict_flexible
    from coupleface.utils.recognizer_checkpoint import read_recognizer_checkpoint

    register_all_modules(init_default_scope=False)
    if config is not None:
        cfg = load_config(config)
        model_cfg = recognizer_model_config(cfg)
        backbone_type = str(model_cfg['backbone']['type']).split('.')[-1]
        if backbone_type not in INSIGHTFACE_BACKBONES or model_cfg.get('neck') is not None:
            what = backbone_type + (' + ' + str(model_cfg['neck']['type'])
                                    if model_cfg.get('neck') else '')
            raise ValueError(f'the model is {what}: insightface backbone.pth files exist only '
                             f'for {" and ".join(INSIGHTFACE_BACKBONES)} without a neck')
        model = build_recognizer(cfg)
        load_recognizer_checkpoint(model, checkpoint)
        backbone = model.backbone
        backbone_cfg = dict(model_cfg['backbone'])
    else:
        state, _ = read_recognizer_checkpoint(checkpoint)
        necks = [k for k in state if k.startswith('neck.')]
        if necks:
            raise ValueError(f'{checkpoint} has a neck ({necks[0]}, ...): its backbone is not '
                             f'an insightface {"/".join(INSIGHTFACE_BACKBONES)} embedding '
                             'network')
        bare = _backbone_state(state)
        backbone_cfg = infer_backbone_config(bare)
        backbone = MODELS.build(backbone_cfg)
        load_state_dict_flexible(backbone, bare, strict=True, prefix_map={}, source=checkpoint)
    out_state = OrderedDict(
        (k, v.detach().cpu().float().contiguous() if v.is_floating_point()
         else v.detach().cpu().contiguous())
        for k, v in backbone.state_dict().items())
    atomic_save(out_state, out)
    return out_state, backbone_cfg, insightface_notes(backbone_cfg)


def main(argv: Optional[Sequence[str]] = None):
    args = parse_args(argv)
    state, backbone_cfg, notes = convert(args.checkpoint, args.out, args.config)
    desc = ', '.join(f'{k}={v}' for k, v in backbone_cfg.items() if k != 'type')
    print(f'wrote {args.out}: {backbone_cfg["type"]}({desc}), {len(state)} tensors')
    for note in notes:
        print(f'  {note}')
    return state


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
