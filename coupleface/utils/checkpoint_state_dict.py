"""Load a checkpoint's state dict into a model: key mapping and readable key errors.

:func:`load_state_dict_flexible` loads a full MMEngine checkpoint, an insightface
training checkpoint or a bare insightface ``backbone.pth`` state dict into a model:
DDP's ``module.`` prefix stripped, source prefixes mapped (a bare backbone put under
``backbone.`` automatically), and every missing, unexpected or reshaped key listed in one
:class:`CheckpointKeyError` naming the file. Files are read with
:func:`coupleface.utils.checkpoint_load.safe_torch_load`.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Callable, List, Mapping, Optional, Union

import torch
from mmengine.logging import print_log

from .checkpoint_load import CheckpointFormatError, PathOrFile, safe_torch_load, source_name

__all__ = [
    'CheckpointKeyError', 'extract_state_dict', 'load_state_dict_flexible',
    'strip_module_prefix'
]


class CheckpointKeyError(KeyError):
    """A state dict does not match the model (missing, unexpected or reshaped keys)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ''


_MAX_LISTED = 20


def _listing(kind: str, items: List[str]) -> str:
    shown = ', '.join(items[:_MAX_LISTED])
    more = f', ... (+{len(items) - _MAX_LISTED} more)' if len(items) > _MAX_LISTED else ''
    return f'  {len(items)} {kind}: {shown}{more}'


def extract_state_dict(checkpoint: Any, source: str) -> Mapping[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint.

    Args:
        checkpoint: What :func:`safe_torch_load` returned: an MMEngine checkpoint
            (``state_dict``), an insightface training checkpoint
            (``state_dict_backbone``) or a bare state dict.
        source: The file's name, for the error message.

    Returns:
        The state dict (not copied).

    Raises:
        CheckpointFormatError: ``checkpoint`` holds no state dict.
    """
    if isinstance(checkpoint, Mapping):
        # MMEngine checkpoints use 'state_dict'; insightface training checkpoints
        # ('checkpoint_gpu_0.pt') keep the backbone under 'state_dict_backbone'.
        for key in ('state_dict', 'state_dict_backbone'):
            if isinstance(checkpoint.get(key), Mapping):
                return checkpoint[key]
        # a bare state dict; a module's extra state (e.g. a distiller's teacher provenance)
        # may be any picklable value
        if checkpoint and all(isinstance(k, str) and (isinstance(v, torch.Tensor)
                                                      or k.endswith('_extra_state'))
                              for k, v in checkpoint.items()):
            return checkpoint
    raise CheckpointFormatError(
        f'{source} holds no state dict (expected a dict of tensors or a dict with '
        f"'state_dict'; got {type(checkpoint).__name__}"
        + (f' with keys {sorted(map(str, checkpoint))[:10]}' if isinstance(checkpoint, Mapping)
           else '') + ')')


def _make_key_mapper(prefix_map: Mapping[str, str]) -> Callable[[str], str]:
    # Longest source prefix first, so '' only catches what nothing else matches.
    ordered = sorted(prefix_map.items(), key=lambda item: len(item[0]), reverse=True)

    def mapper(key: str) -> str:
        for src, dst in ordered:
            if key.startswith(src):
                return dst + key[len(src):]
        return key

    return mapper


def strip_module_prefix(key: str) -> str:
    """``key`` without a leading ``module.`` (DataParallel/DDP)."""
    return key[len('module.'):] if key.startswith('module.') else key


def load_state_dict_flexible(model: torch.nn.Module,
                             checkpoint_or_path: Union[PathOrFile, Mapping[str, Any]],
                             strict: bool = True,
                             prefix_map: Optional[Mapping[str, str]] = None,
                             source: Optional[str] = None) -> None:
    """Load a full MMEngine checkpoint or a bare state dict into ``model``.

    Keys are mapped in this order: a ``module.`` prefix (DataParallel/DDP) is
    stripped; then ``prefix_map`` rewrites the longest matching source prefix
    (``{'': 'backbone.'}`` puts a bare backbone under ``backbone.``). Without
    ``prefix_map``, a state dict none of whose keys are in the model but all of
    whose keys are once prefixed with ``backbone.`` (an insightface
    ``backbone.pth`` loaded into a recognizer) is mapped that way. Nothing is
    loaded unless the check passes. Missing ``num_batches_tracked`` buffers (old
    BatchNorm checkpoints) are not errors: they keep the model's values.

    Args:
        model: The module to load into (a DDP/MMEngine wrapper is unwrapped).
        checkpoint_or_path: A path (loaded with :func:`safe_torch_load`), an
            MMEngine checkpoint dict (``{'state_dict': ...}``) or a state dict.
        strict: Raise on missing/unexpected keys and shape mismatches; otherwise
            load the keys that match and log the rest.
        prefix_map: Source prefix -> model prefix.
        source: Name used in messages for an in-memory checkpoint (its file).

    Raises:
        CheckpointKeyError: with ``strict=True``, the keys or shapes do not match;
            the message names the source and lists the offending keys.
    """
    from mmengine.model import is_model_wrapper

    if is_model_wrapper(model):
        model = model.module
    if isinstance(checkpoint_or_path, Mapping):
        source, checkpoint = source or '<in-memory checkpoint>', checkpoint_or_path
    else:
        source = source_name(checkpoint_or_path)
        checkpoint = safe_torch_load(checkpoint_or_path)
    state_dict = extract_state_dict(checkpoint, source)
    model_state = model.state_dict()

    keys = [strip_module_prefix(k) for k in state_dict]
    if prefix_map is None and keys and not any(k in model_state for k in keys) \
            and all('backbone.' + k in model_state for k in keys):
        prefix_map = {'': 'backbone.'}
    mapper = _make_key_mapper(prefix_map or {})

    def map_key(key: str) -> str:
        return mapper(strip_module_prefix(key))

    mapped: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in state_dict.items():
        new_key = map_key(key)
        if new_key in mapped:
            raise CheckpointKeyError(
                f'{source}: keys map to the same model key {new_key!r}; check prefix_map')
        mapped[new_key] = value
    # BatchNorm & co. read their version from _metadata (module path -> info).
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        mapped._metadata = OrderedDict(  # type: ignore[attr-defined]
            (map_key(name + '.' if name else '').rstrip('.'), info)
            for name, info in metadata.items())

    missing = [k for k in model_state if k not in mapped]
    benign_missing = [k for k in missing if k.endswith('num_batches_tracked')]
    missing = [k for k in missing if k not in benign_missing]
    unexpected = [k for k in mapped if k not in model_state]
    mismatched = [
        f'{k} (checkpoint {tuple(v.shape)} vs model {tuple(model_state[k].shape)})'
        for k, v in mapped.items()
        if k in model_state and isinstance(v, torch.Tensor) and v.shape != model_state[k].shape
    ]
    problems = [_listing(kind, items) for kind, items in (
        ('missing keys', missing), ('unexpected keys', unexpected),
        ('shape mismatches', mismatched)) if items]
    if problems and strict:
        raise CheckpointKeyError(
            f'state dict from {source} does not match {type(model).__name__} '
            f'(prefix_map={dict(prefix_map or {})}):\n' + '\n'.join(problems))
    if problems:
        print_log(f'loading {source} non-strictly into {type(model).__name__}:\n'
                  + '\n'.join(problems), logger='current', level=logging.WARNING)
    bad_shape = {m.split(' ')[0] for m in mismatched}
    for key in bad_shape:
        del mapped[key]
    model.load_state_dict(mapped, strict=False)
