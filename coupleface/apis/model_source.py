"""What a user hands us as a face model, turned into one embedder (docs/architecture.md §4).

Three model sources, one result:

* a config + a checkpoint (recognizer, distiller or bare ``backbone.pth``): the config's
  recognizer (:func:`coupleface.apis.model_loading.init_recognizer`), as before;
* an ``.onnx`` file (insightface's released ``w600k_r50.onnx`` and the like, or our exports):
  :class:`~coupleface.models.recognizers.OnnxRecognizer` under onnxruntime (the ``onnx``
  extra); its input size from the graph (or ``input_size``), its normalisation from the graph
  when it carries one;
* a bare arcface_torch ``backbone.pth`` without config: the backbone named by ``network``
  (``r18``/``r34``/``r50``/``r100``/``r200``/``mbf``/``mbf_large``) or, without it, read from
  the weights' shapes
  (:func:`coupleface.models.backbones.insightface_networks.backbone_config_from_state_dict`).

Which kind of checkpoint a ``.pth`` is stays decided by
:func:`coupleface.utils.recognizer_checkpoint.read_recognizer_checkpoint`. Every model takes
a float ``N x 3 x H x W`` batch normalised the coupleface way (``FaceDataPreprocessor``:
BGR->RGB, ``(x - 127.5) / 127.5``) and gives the raw ``N x D`` embedding
(:class:`EmbeddingModel`). :class:`~coupleface.apis.FaceEmbedder`, ``tools/embed.py``,
``verify.py``, ``test.py``, ``eval_ijb.py``, ``eval_all_pairs.py``, ``extract_embeddings.py``
and ``pytorch2onnx.py`` read models here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Union

import torch
from torch import nn

from coupleface.datasets.transforms.loading import LoadFaceImage
from coupleface.models.backbones.insightface_networks import recognizer_config_from_state_dict
from coupleface.utils.recognizer_checkpoint import read_recognizer_checkpoint

from .model_loading import (
    ConfigLike,
    configured_image_loader,
    configured_input_size,
    init_recognizer,
    load_config,
    load_recognizer_checkpoint,
    recognizer_model_config,
)

__all__ = ['EmbeddingModel', 'is_onnx', 'load_embedding_model', 'source_model_config']

PathLike = Union[str, os.PathLike]


def is_onnx(path: Any) -> bool:
    """Whether ``path`` names an ONNX model (by its ``.onnx`` suffix)."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith('.onnx')


@dataclass
class EmbeddingModel:
    """A loaded face model: normalised ``N x 3 x H x W`` -> raw ``N x D``.

    Attributes:
        model: A ``FaceRecognizer`` or ``OnnxRecognizer`` in eval mode (``data_preprocessor``,
            ``extract_feat``, ``embed``, ``predict``, ``test_step``, ``flip_test``).
        input_size: Square side of the images it takes.
        loader: The ``LoadFaceImage`` that resizes faces to it (the config's test pipeline's
            when there is a config).
        info: ``kind`` (``'recognizer'``, ``'distiller'``, ``'backbone'`` or ``'onnx'``),
            ``source`` and what the checkpoint reader returned (``meta``, ``teacher``...);
            ``backbone`` (the config built) for a config-less ``.pth``.
    """

    model: nn.Module
    input_size: int
    loader: LoadFaceImage
    info: Dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw embeddings (no flip fusion) of a normalised batch."""
        return self.model.extract_feat(inputs)

    @property
    def embedding_size(self) -> Optional[int]:
        """Embedding dimension when the model says (``None`` otherwise)."""
        for part in (getattr(self.model, 'neck', None), getattr(self.model, 'backbone', None),
                     self.model):
            size = getattr(part, 'embedding_size', None)
            if size is not None:
                return int(size)
        return None


def source_model_config(checkpoint: PathLike, network: Optional[str] = None,
                        input_size: Optional[int] = None, flip_test: bool = False,
                        state: Optional[Mapping[str, Any]] = None) -> dict:
    """The recognizer config of a config-less model source (an ``.onnx`` or a bare ``.pth``).

    Args:
        checkpoint: The ``.onnx`` file, or a ``.pth`` holding a bare backbone (or a recognizer
            without neck).
        network: arcface_torch name of the backbone (``.pth`` only); None: from the shapes.
        input_size: Square input side (None: the graph's, or 112 when the weights fit it).
        flip_test: The model's ``flip_test``.
        state: The recognizer-keyed state dict when already read.

    Returns:
        dict: An ``OnnxRecognizer`` or head-less ``FaceRecognizer`` config.
    """
    if is_onnx(checkpoint):
        if network is not None:
            raise ValueError(f'--network/network= names a PyTorch backbone; {checkpoint} is an '
                             'ONNX model (its graph is the network)')
        return dict(type='OnnxRecognizer', path=os.fspath(checkpoint), input_size=input_size,
                    flip_test=flip_test)
    if state is None:
        state, _ = read_recognizer_checkpoint(checkpoint)
    if any(k.startswith('neck.') for k in state):
        raise ValueError(f'{checkpoint} has a neck: give the config it was trained with')
    return recognizer_config_from_state_dict(state, network, input_size, flip_test)


def _build(model_cfg: dict) -> nn.Module:
    from coupleface.registry import MODELS
    from coupleface.setup_env import register_all_modules

    register_all_modules(init_default_scope=False)
    return MODELS.build(model_cfg)


def load_embedding_model(checkpoint: Union[PathLike, Mapping], config: Optional[ConfigLike] = None,
                         network: Optional[str] = None, input_size: Optional[int] = None,
                         device: Union[str, torch.device] = 'cpu',
                         flip_test: Optional[bool] = None) -> EmbeddingModel:
    """Load any model source (see the module docstring) as an :class:`EmbeddingModel`.

    Args:
        checkpoint: ``.onnx`` file, or a recognizer / distiller / bare backbone checkpoint
            (path or loaded mapping).
        config: The model's config; optional for ``.onnx`` files and bare backbones (with a
            config, an ``.onnx`` model takes the config's test-pipeline size and
            ``flip_test``).
        network: arcface_torch backbone name of a config-less ``.pth`` (overrides the config's
            model when both are given); None: read from the weights.
        input_size: Square input side of a config-less source (None: the graph's, or 112).
        device: Torch device (onnxruntime's CUDA provider on ``cuda`` when installed).
        flip_test: Flip fusion in ``embed``/``predict``; None: the config's, else False.

    Returns:
        EmbeddingModel: The model in eval mode on ``device``, its input size and loader.
    """
    cfg = load_config(config) if config is not None else None
    if flip_test is None:
        flip_test = bool(recognizer_model_config(cfg).get('flip_test', False)) if cfg else False
    if cfg is not None and input_size is None:
        input_size = configured_input_size(cfg)
    if cfg is not None and network is None and not is_onnx(checkpoint):
        model = init_recognizer(cfg, checkpoint, device=device)
        info = model.checkpoint_info
    elif is_onnx(checkpoint):
        model = _build(source_model_config(checkpoint, network, input_size, flip_test))
        info = dict(kind='onnx', source=os.fspath(checkpoint), meta={}, dropped=[])
    else:
        state, info = read_recognizer_checkpoint(checkpoint)
        model_cfg = source_model_config(checkpoint, network, input_size, flip_test, state)
        model = _build(model_cfg)
        load_recognizer_checkpoint(model, state, source=info['source'])
        info['backbone'] = model_cfg['backbone']
    model.flip_test = bool(flip_test)
    model = model.float().to(device).eval()
    size = int(getattr(model, 'input_size', None) or input_size or _backbone_side(model))
    loader = configured_image_loader(cfg) if cfg is not None else \
        LoadFaceImage(size=size, on_error='raise')
    return EmbeddingModel(model=model, input_size=size, loader=loader, info=info)


def _backbone_side(model: nn.Module) -> int:
    size = getattr(getattr(model, 'backbone', None), 'input_size', None) or (112, 112)
    return int(size[0])
