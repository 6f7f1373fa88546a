"""Config to recognizer: read a config, build its recognizer, load a checkpoint strictly.

The deployment side of docs/architecture.md §4 "Checkpoints": a config gives the recognizer to
deploy (the model, or the ``student`` of a ``CoupleFaceDistiller``; the teacher is never built),
its input size (the test pipeline's ``LoadFaceImage.size``) and that loader; a recognizer,
distiller or bare insightface ``backbone.pth`` checkpoint, read by
:func:`coupleface.utils.recognizer_checkpoint.read_recognizer_checkpoint`, is loaded strictly.
:class:`~coupleface.apis.face_embedder.FaceEmbedder`, ``tools/test.py`` and the converters use
these functions.

Examples:
    >>> from coupleface.apis import init_recognizer
    >>> model = init_recognizer('configs/arcface/mobilefacenet_1xb128_synthfaces-56px.py',
    ...                         'work_dirs/mbf/epoch_8.pth')
    >>> model.input_size, model.checkpoint_info['kind']
"""
from __future__ import annotations

import copy
import os
import os.path as osp
from typing import Any, Dict, Mapping, Optional, Union

import torch
from mmengine.config import Config

from coupleface.datasets.transforms.loading import LoadFaceImage
from coupleface.utils.checkpoint_state_dict import (
    CheckpointKeyError,
    load_state_dict_flexible,
)
from coupleface.utils.recognizer_checkpoint import read_recognizer_checkpoint

__all__ = ['build_recognizer', 'configured_image_loader', 'configured_input_size',
           'init_recognizer', 'load_config', 'load_recognizer_checkpoint',
           'recognizer_model_config']

ConfigLike = Union[str, os.PathLike, Config, Mapping]


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------

def load_config(config: ConfigLike) -> Config:
    """A :class:`mmengine.config.Config` from a path (``coupleface::`` resolved) or dict.

    Args:
        config: A config file path, ``coupleface::rel/path.py``, a ``Config`` or a dict
            holding at least ``model``.

    Returns:
        Config: The config (a copy when a dict was given).
    """
    import coupleface  # noqa: F401  (makes coupleface:: _base_ paths resolvable)
    from coupleface.utils.config_scope import resolve_config_path

    if isinstance(config, Config):
        cfg = config
    elif isinstance(config, Mapping):
        cfg = Config(copy.deepcopy(dict(config)))
    elif isinstance(config, (str, os.PathLike)):
        path = resolve_config_path(os.fspath(config))
        if not osp.isfile(path):
            raise FileNotFoundError(f'config not found: {path}')
        cfg = Config.fromfile(path)
    else:
        raise ValueError(f'config must be a path, a Config or a dict, got {type(config).__name__}')
    if not isinstance(cfg.get('model'), Mapping):
        raise ValueError(f'config {getattr(cfg, "filename", None) or "<dict>"} has no model')
    return cfg


def _is_distiller(model_cfg: Mapping) -> bool:
    return isinstance(model_cfg.get('student'), Mapping)


def recognizer_model_config(cfg: Config, with_head: bool = False) -> dict:
    """The recognizer config to deploy: the model, or a distiller's ``student``.

    A distiller's own ``data_preprocessor`` (what it trained with) is given to a student
    config that has none.

    Args:
        cfg: The full config.
        with_head: Keep the margin head (inference never needs it). Defaults to False.

    Returns:
        dict: A ``FaceRecognizer`` config.
    """
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    if _is_distiller(model_cfg):
        student = copy.deepcopy(dict(model_cfg['student']))
        if model_cfg.get('data_preprocessor') is not None and \
                student.get('data_preprocessor') is None:
            student['data_preprocessor'] = copy.deepcopy(model_cfg['data_preprocessor'])
        model_cfg = student
    model_cfg = copy.deepcopy(model_cfg)
    if not with_head:
        model_cfg.pop('head', None)
    model_cfg.pop('init_cfg', None)  # weights come from the checkpoint
    return model_cfg


def _find_load_face_image(node: Any) -> Optional[dict]:
    """The first ``LoadFaceImage`` transform config inside a dataloader/dataset config."""
    if isinstance(node, Mapping):
        if str(node.get('type', '')).split('.')[-1] == 'LoadFaceImage':
            return dict(node)
        for key in ('pipeline', 'dataset', 'datasets'):
            if key in node:
                found = _find_load_face_image(node[key])
                if found is not None:
                    return found
    elif isinstance(node, (list, tuple)):
        for item in node:
            found = _find_load_face_image(item)
            if found is not None:
                return found
    return None


def _test_loader_config(cfg: Config) -> Optional[dict]:
    for key in ('test_dataloader', 'val_dataloader', 'test_pipeline', 'val_pipeline'):
        found = _find_load_face_image(cfg.get(key))
        if found is not None:
            return found
    return None


def _backbone_input_size(model_cfg: Mapping) -> Optional[int]:
    size = dict(model_cfg.get('backbone') or {}).get('input_size')
    if isinstance(size, int):
        return size
    if isinstance(size, (list, tuple)) and len(size) == 2 and size[0] == size[1]:
        return int(size[0])
    return None


def configured_input_size(cfg: Config) -> int:
    """Side of the images the model takes: the test pipeline's ``LoadFaceImage.size``.

    Falls back to the backbone's ``input_size`` and then to 112 (the canonical aligned face)
    when the config has no test pipeline or its ``LoadFaceImage`` keeps the source size.

    Args:
        cfg: The full config.

    Returns:
        int: The square input side in pixels.
    """
    loader = _test_loader_config(cfg)
    if loader is not None and loader.get('size') is not None:
        return int(loader['size'])
    return _backbone_input_size(recognizer_model_config(cfg)) or 112


def configured_image_loader(cfg: Config) -> LoadFaceImage:
    """The test pipeline's ``LoadFaceImage`` (same size and interpolation), raising on error.

    Args:
        cfg: The full config.

    Returns:
        LoadFaceImage: A loader with ``size=configured_input_size(cfg)`` and
        ``on_error='raise'``.
    """
    loader_cfg = _test_loader_config(cfg) or {}
    kwargs = {k: v for k, v in loader_cfg.items() if k in ('interpolation', )}
    return LoadFaceImage(size=configured_input_size(cfg), on_error='raise', **kwargs)


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------

def _one_line(err: CheckpointKeyError, source: str, model: torch.nn.Module) -> str:
    lines = [ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()]
    backbone = type(getattr(model, 'backbone', model)).__name__
    return (f'checkpoint {source} does not fit the configured {backbone} model (another '
            f'architecture or size?): ' + '; '.join(lines))


def load_recognizer_checkpoint(model: torch.nn.Module, checkpoint: Union[str, os.PathLike,
                                                                           Mapping],
                               source: Optional[str] = None) -> Dict[str, Any]:
    """Load a recognizer, distiller or bare backbone checkpoint strictly into ``model``.

    Margin-head keys are ignored when ``model`` has no head (deployment needs none); every
    other key must match in name and shape (:func:`load_state_dict_flexible`, strict).

    Args:
        model: A ``FaceRecognizer`` (typically without head).
        checkpoint: A path or a loaded checkpoint (see :func:`read_recognizer_checkpoint`).
        source: Name of an in-memory checkpoint in messages.

    Returns:
        dict: The ``info`` of :func:`read_recognizer_checkpoint`.

    Raises:
        CheckpointKeyError: the keys or shapes differ (another architecture); the one-line
            message lists the missing, unexpected and reshaped keys.
    """
    state, info = read_recognizer_checkpoint(checkpoint, source)
    if getattr(model, 'head', None) is None:
        head = [k for k in state if k.startswith('head.')]
        for key in head:
            del state[key]
        info['dropped'] += head
    try:
        load_state_dict_flexible(model, state, strict=True, prefix_map={}, source=info['source'])
    except CheckpointKeyError as err:
        raise CheckpointKeyError(_one_line(err, info['source'], model)) from None
    return info


def build_recognizer(config: ConfigLike, with_head: bool = False) -> torch.nn.Module:
    """Build the (untrained) recognizer of a config: the model or a distiller's student.

    Args:
        config: Config path, ``Config`` or dict.
        with_head: Keep the margin head. Defaults to False.

    Returns:
        FaceRecognizer: The model (training mode, random weights).
    """
    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules

    register_all_modules(init_default_scope=False)
    cfg = load_config(config)
    return MODELS.build(recognizer_model_config(cfg, with_head=with_head))


def init_recognizer(config: ConfigLike, checkpoint: Union[str, os.PathLike, Mapping],
                    device: Union[str, torch.device] = 'cpu') -> torch.nn.Module:
    """Build the recognizer of ``config``, load ``checkpoint`` strictly, eval mode, fp32.

    Args:
        config: Config path, ``Config`` or dict (a distiller config gives its student).
        checkpoint: Recognizer, distiller or bare insightface backbone checkpoint.
        device: Where to put the model. Defaults to ``'cpu'``.

    Returns:
        FaceRecognizer: The loaded model, with ``checkpoint_info`` (see
        :func:`read_recognizer_checkpoint`) and ``input_size`` attributes.
    """
    cfg = load_config(config)
    model = build_recognizer(cfg)
    info = load_recognizer_checkpoint(model, checkpoint)
    model.checkpoint_info = info
    model.input_size = configured_input_size(cfg)
    return model.float().to(device).eval()
