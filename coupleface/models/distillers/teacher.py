"""Build, load and freeze the teacher of a distiller (docs/architecture.md §4 Teacher).

The checkpoint is read with ``weights_only`` semantics through
:mod:`coupleface.utils.checkpoint_load` (no pickled code runs). A full recognizer
checkpoint and a bare insightface ``backbone.pth`` state dict both load without
a hand step; keys still missing or unexpected after the mapping are an error
that lists them. The teacher never needs its margin head, so the head is
dropped and ``head.*`` keys of a full checkpoint are ignored. A bare arcface_torch
``backbone.pth`` needs no model config: ``dict(network='r50', checkpoint=...)``.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, Optional, Tuple

from torch import nn

from coupleface.models.backbones.insightface_networks import recognizer_config_from_state_dict
from coupleface.registry import MODELS
from coupleface.utils.checkpoint_state_dict import load_state_dict_flexible
from coupleface.utils.file_hash import file_sha256
from coupleface.utils.recognizer_checkpoint import read_recognizer_checkpoint


def embedding_dim(recognizer: nn.Module) -> Optional[int]:
    """Embedding size of a recognizer from its neck or backbone, if they say."""
    for part in (getattr(recognizer, 'neck', None), getattr(recognizer, 'backbone', None)):
        size = getattr(part, 'embedding_size', None)
        if size is not None:
            return int(size)
    return None


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode, no gradients, and marked initialised (the Runner must not re-init it)."""
    module.eval()
    module.requires_grad_(False)
    for m in module.modules():
        if hasattr(m, '_is_init'):
            m._is_init = True
    return module


def build_frozen_teacher(cfg: dict) -> Tuple[nn.Module, Dict[str, str]]:
    """Build the teacher, load ``cfg['checkpoint']`` strictly, and freeze it.

    Args:
        cfg: ``dict(model=<FaceRecognizer cfg>, checkpoint=<path>)``, or, for a bare
            arcface_torch ``backbone.pth`` without a model config,
            ``dict(network='r50', checkpoint=<path>[, input_size=112])`` (``network=None``:
            the architecture is read from the weights' shapes,
            :func:`coupleface.models.backbones.insightface_networks.
            backbone_config_from_state_dict`).

    Returns:
        The frozen teacher and ``{'teacher_checkpoint', 'teacher_sha256'}``.

    Raises:
        FileNotFoundError: the checkpoint does not exist.
        CheckpointKeyError: keys missing/unexpected after mapping (listed).
    """
    unknown = set(cfg) - {'model', 'checkpoint', 'network', 'input_size'}
    if unknown or ('model' in cfg) == ('network' in cfg):
        raise ValueError('teacher must be dict(model=..., checkpoint=...) or dict(network=..., '
                         f'checkpoint=...[, input_size=...]), got keys {sorted(cfg)}')
    path = cfg.get('checkpoint')
    if not path:
        raise ValueError('teacher.checkpoint is empty: a teacher must be trained; give the '
                         'path of its checkpoint (or of an insightface backbone.pth)')
    if not osp.isfile(path):
        raise FileNotFoundError(f'teacher checkpoint not found: {path}')
    # any checkpoint kind (recognizer, distiller's student, bare insightface backbone),
    # decided in one place; the teacher has no head
    state, _ = read_recognizer_checkpoint(path)
    for key in [k for k in state if k.startswith('head.')]:
        del state[key]
    if 'model' in cfg:
        model_cfg = dict(cfg['model'])
        model_cfg.pop('head', None)  # the teacher only embeds
    else:
        model_cfg = recognizer_config_from_state_dict(state, cfg['network'],
                                                      cfg.get('input_size'))
    teacher = MODELS.build(model_cfg)
    load_state_dict_flexible(teacher, state, strict=True, prefix_map={}, source=path)
    return freeze(teacher), dict(teacher_checkpoint=osp.abspath(path),
                                 teacher_sha256=file_sha256(path))
