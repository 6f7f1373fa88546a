"""insightface arcface_torch network names, and the backbone a bare ``backbone.pth`` holds.

arcface_torch saves ``backbone.pth`` as a bare state dict with no config. Its ``get_model``
names (``r18``, ``r34``, ``r50``, ``r100``, ``r200``, ``mbf``, ``mbf_large``) map onto our
key-compatible :class:`~coupleface.models.backbones.IResNet` and
:class:`~coupleface.models.backbones.MobileFaceNet` (:data:`NETWORKS`; the same backbones as
``configs/_base_/models/iresnet{18,50,100}_arcface.py`` and ``mobilefacenet_arcface.py``).
:func:`backbone_config_from_state_dict` reads the rest from the weights' shapes: the family
from the keys (``layer1.0.conv1.weight``: IResNet; ``conv_sep.*``: MobileFaceNet), the
IResNet depth from its per-stage block counts, width (``base_channels`` / ``scale``) and
embedding size from the stem and embedding-layer shapes, and the last feature map (hence the
possible input sizes) from ``fc`` / the GDC kernel. With a network name given, the state
dict must agree with it (one-line error otherwise).
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, Mapping, Optional, Tuple

from .input_size import stride2_output_size
from .iresnet import IResNet
from .mobilefacenet import MobileFaceNet

#: arcface_torch ``get_model`` name -> our backbone config (shapes come from the weights).
NETWORKS: Dict[str, Dict[str, Any]] = {
    'r18': dict(type='IResNet', arch=18),
    'r34': dict(type='IResNet', arch=34),
    'r50': dict(type='IResNet', arch=50),
    'r100': dict(type='IResNet', arch=100),
    'r200': dict(type='IResNet', arch=200),
    'mbf': dict(type='MobileFaceNet', arch='mbf'),
    'mbf_large': dict(type='MobileFaceNet', arch='mbf_large'),
}

__all__ = ['NETWORKS', 'backbone_config_from_state_dict', 'recognizer_config_from_state_dict']


def _stage_blocks(state: Mapping[str, Any], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    return len({m.group(1) for k in state for m in [pattern.match(k)] if m})


def _input_size(feat: int, input_size: Optional[int], what: str, fit: bool) -> int:
    low, high = 16 * (feat - 1) + 1, 16 * feat
    if input_size is None:
        if feat == stride2_output_size(112, 4):
            return 112
        if fit:  # any size giving this feature map will do: the largest
            return high
        raise ValueError(f'{what} ends on a {feat}x{feat} feature map (inputs of {low}..{high} '
                         'px, not 112): give the input size (--input-size / input_size=)')
    if stride2_output_size(int(input_size), 4) != feat:
        raise ValueError(f'{what} ends on a {feat}x{feat} feature map, which takes {low}..'
                         f'{high} px inputs, not {input_size}')
    return int(input_size)


def _iresnet(state: Mapping[str, Any], input_size: Optional[int],
             fit: bool) -> Tuple[str, Dict[str, Any]]:
    blocks = tuple(_stage_blocks(state, f'layer{i}.') for i in range(1, 5))
    depths = {v: k for k, v in IResNet.arch_settings.items()}
    if blocks not in depths:
        raise ValueError(f'IResNet stages of {blocks} blocks match no depth '
                         f'({sorted(IResNet.arch_settings)})')
    base = int(state['conv1.weight'].shape[0])
    embedding, fc_in = (int(d) for d in state['fc.weight'].shape)
    feat = math.isqrt(fc_in // (8 * base))
    if feat * feat * 8 * base != fc_in:
        raise ValueError(f'IResNet fc takes {fc_in} features, not 8 x {base} x a square map')
    cfg = dict(type='IResNet', arch=depths[blocks], base_channels=base, embedding_size=embedding,
               input_size=_input_size(feat, input_size, f'the r{depths[blocks]} backbone', fit))
    return f'r{depths[blocks]}', cfg


def _mobilefacenet(state: Mapping[str, Any], input_size: Optional[int],
                   fit: bool) -> Tuple[str, Dict[str, Any]]:
    residual_stem = 'layers.1.layers.0.weight' not in state  # a ConvBlock stem: 1 block
    blocks = (_stage_blocks(state, 'layers.1.layers.') if residual_stem else 1,
              *(_stage_blocks(state, f'layers.{i}.layers.') for i in (3, 5, 7)))
    scale = int(state['layers.0.layers.0.weight'].shape[0]) // 64
    embedding = int(state['features.layers.2.weight'].shape[0])
    feat = int(state['features.layers.0.layers.0.weight'].shape[-1])
    name = next((n for n, s in MobileFaceNet.arch_settings.items()
                 if tuple(s['blocks']) == blocks and s['scale'] == scale), None)
    cfg: Dict[str, Any] = dict(type='MobileFaceNet', arch=name or 'mbf',
                               embedding_size=embedding,
                               input_size=_input_size(feat, input_size, 'the MobileFaceNet',
                                                      fit))
    if name is None:
        cfg.update(blocks=blocks, scale=scale)
    return name or f'mbf(blocks={blocks}, scale={scale})', cfg


def backbone_config_from_state_dict(state: Mapping[str, Any], network: Optional[str] = None,
                                    input_size: Optional[int] = None,
                                    fit_input_size: bool = False) -> Dict[str, Any]:
    """The backbone config whose state dict ``state`` is.

    ``tools/model_converters/to_insightface.py`` reads architectures here too.

    Args:
        state: A bare backbone state dict (insightface keys), or recognizer-keyed
            (``backbone.*``; other keys ignored). Tensors or anything with ``.shape``
            (meta tensors work).
        network: An arcface_torch name (:data:`NETWORKS`) the weights must be; None: read
            from the weights.
        input_size: Square input side; None: 112 when the weights fit it (else an error).
        fit_input_size: Without ``input_size``, the largest side the weights fit (16 x their
            last feature map) instead of the error: for shape-only uses (conversion).

    Returns:
        dict: ``IResNet`` / ``MobileFaceNet`` config with ``arch``, width, ``embedding_size``
        and ``input_size`` set.

    Raises:
        ValueError: unknown network, a state dict of another family or depth than
            ``network``, or of neither family (one line each).
    """
    if network is not None and network not in NETWORKS:
        raise ValueError(f'unknown network {network!r}; arcface_torch names supported: '
                         f'{", ".join(NETWORKS)}')
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    if 'layer1.0.conv1.weight' in state and 'fc.weight' in state:
        found, cfg = _iresnet(state, input_size, fit_input_size)
    elif 'conv_sep.layers.0.weight' in state and 'features.layers.2.weight' in state:
        found, cfg = _mobilefacenet(state, input_size, fit_input_size)
    else:
        shown = ', '.join(list(state)[:6]) + (', ...' if len(state) > 6 else '')
        raise ValueError('the backbone is neither an IResNet nor a MobileFaceNet (the '
                         'insightface layouts: layer1.0.conv1/fc, conv_sep/features); its '
                         f'first keys are {shown}: give its config')
    if network is not None and found != network:
        raise ValueError(f'the weights are an {found} backbone, not {network}')
    return cfg


def recognizer_config_from_state_dict(state: Mapping[str, Any], network: Optional[str] = None,
                                      input_size: Optional[int] = None,
                                      flip_test: bool = False) -> Dict[str, Any]:
    """A head-less ``FaceRecognizer`` config around :func:`backbone_config_from_state_dict`.

    The preprocessor is ``FaceDataPreprocessor`` (BGR->RGB, ``(x - 127.5) / 127.5``, what
    arcface_torch trains with).
    """
    return dict(type='FaceRecognizer', data_preprocessor=dict(type='FaceDataPreprocessor'),
                backbone=backbone_config_from_state_dict(state, network, input_size),
                flip_test=flip_test)
