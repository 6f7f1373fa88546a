"""The one place that decides what kind of checkpoint a file is and keys it as a recognizer.

A face model arrives as one of: an MMEngine checkpoint of a ``FaceRecognizer``
(``backbone.*``, ``neck.*``, ``head.*``), of a ``CoupleFaceDistiller`` (its student under
``student.*``, plus the connector and the teacher's provenance), or a bare backbone state
dict (insightface ``backbone.pth``, or ``state_dict_backbone`` of an insightface training
checkpoint), any of them possibly with DataParallel/DDP's ``module.`` prefix.
:func:`read_recognizer_checkpoint` turns each into recognizer keys; the deployment API, the
distiller's frozen teacher, ``tools/test.py`` and the converters all call it.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from .checkpoint_load import safe_torch_load
from .checkpoint_state_dict import extract_state_dict, strip_module_prefix

#: Top-level state-dict prefixes of a ``FaceRecognizer``.
RECOGNIZER_PREFIXES = ('backbone.', 'neck.', 'head.')
#: Where a ``CoupleFaceDistiller`` keeps its student.
DISTILLER_PREFIX = 'student.'

__all__ = ['DISTILLER_PREFIX', 'RECOGNIZER_PREFIXES', 'read_recognizer_checkpoint']


def read_recognizer_checkpoint(checkpoint: Union[str, os.PathLike, Mapping],
                               source: Optional[str] = None
                               ) -> Tuple['OrderedDict[str, Any]', Dict[str, Any]]:
    """Read any checkpoint we train or import and key it like a ``FaceRecognizer``.

    * a recognizer checkpoint: ``backbone.*`` / ``neck.*`` / ``head.*`` as they are;
    * a distiller checkpoint: its ``student.*`` keys without the prefix (the connector and
      anything else outside the student are dropped; the teacher provenance kept in the
      distiller's ``_extra_state`` is returned in ``info['teacher']``);
    * a bare backbone state dict (insightface ``backbone.pth``, or ``state_dict_backbone`` of
      an insightface training checkpoint): every key under ``backbone.``.

    A ``module.`` prefix (DataParallel/DDP) is stripped first. The file is read with
    :func:`coupleface.utils.checkpoint_load.safe_torch_load` (no pickled code runs).

    Args:
        checkpoint: A path, or an already loaded checkpoint / state dict.
        source: Name of an in-memory checkpoint in messages.

    Returns:
        tuple: The recognizer-keyed state dict and ``info``: ``kind`` (``'recognizer'``,
        ``'distiller'`` or ``'backbone'``), ``meta`` (the checkpoint's ``meta`` or ``{}``),
        ``teacher`` (dict, distillers only), ``dropped`` (keys left out) and ``source``.

    Raises:
        CheckpointFormatError: the file holds no state dict.
    """
    if isinstance(checkpoint, Mapping):
        source = source or '<in-memory checkpoint>'
        loaded = checkpoint
    else:
        source = os.fspath(checkpoint)
        loaded = safe_torch_load(source)
    raw = extract_state_dict(loaded, source)
    meta = dict(loaded.get('meta') or {}) if isinstance(loaded, Mapping) and \
        isinstance(loaded.get('meta'), Mapping) else {}
    state = OrderedDict((strip_module_prefix(k), v) for k, v in raw.items())
    info: Dict[str, Any] = dict(kind='recognizer', meta=meta, dropped=[], source=source)
    if any(k.startswith(DISTILLER_PREFIX) for k in state):
        info['kind'] = 'distiller'
        teacher = state.get('_extra_state')
        info['teacher'] = dict(teacher) if isinstance(teacher, Mapping) else {}
        info['dropped'] = [k for k in state if not k.startswith(DISTILLER_PREFIX)]
        state = OrderedDict((k[len(DISTILLER_PREFIX):], v) for k, v in state.items()
                            if k.startswith(DISTILLER_PREFIX))
    elif not any(k.startswith(RECOGNIZER_PREFIXES) for k in state):
        info['kind'] = 'backbone'
        state = OrderedDict(('backbone.' + k, v) for k, v in state.items())
    extra = [k for k in state if k.endswith('_extra_state')]
    info['dropped'] += extra
    for key in extra:
        del state[key]
    return state, info
