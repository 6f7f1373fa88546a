"""Safe checkpoint loading: ``torch.load(weights_only=True)`` with an allow-list.

Every checkpoint coupleface reads goes through :func:`safe_torch_load`:
``torch.load(..., weights_only=True)`` with an allow-list (:data:`SAFE_GLOBALS`) of
exactly what MMEngine checkpoints hold besides tensors, so no pickled code runs.

Why this module exists: since PyTorch 2.6 ``torch.load`` defaults to
``weights_only=True``, and MMEngine 0.10.7 checkpoints keep their message hub
(``HistoryBuffer`` objects holding numpy arrays and references to
``HistoryBuffer.min/max/mean/current``) in the pickle, so ``Runner.resume``
fails. The fix here never falls back to ``weights_only=False``; it allow-lists:

* ``mmengine.logging.history_buffer.HistoryBuffer``;
* the globals numpy needs to rebuild arrays, dtypes and scalars (under both the
  numpy 1 ``numpy.core`` and numpy 2 ``numpy._core`` names), numeric and
  bool dtypes only (no object or void arrays);
* ``torch.torch_version.TorchVersion`` (a ``str`` subclass);
* ``builtins.getattr`` mapped to a stand-in that only returns one of
  ``HistoryBuffer.min/max/mean/current`` and refuses anything else (protocol 2
  pickles a method reference as ``getattr(HistoryBuffer, 'min')``).

:func:`install_safe_checkpoint_loading` (called by ``import coupleface``) makes
MMEngine's ``CheckpointLoader`` (used by ``Runner.load_checkpoint``, ``Runner.resume``
and ``load_from``) use it for local paths and http(s) URLs. Mapping a loaded state dict
onto a model is :mod:`coupleface.utils.checkpoint_state_dict`; atomic writing is
:mod:`coupleface.utils.checkpoint_save`.
"""
from __future__ import annotations

import _compat_pickle
import os
import os.path as osp
import pickle
import re
from typing import IO, Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

PathOrFile = Union[str, os.PathLike, IO[bytes]]

__all__ = [
    'SAFE_GLOBALS', 'CheckpointFormatError', 'PathOrFile', 'UnsafeCheckpointError',
    'install_safe_checkpoint_loading', 'load_from_http_safe', 'load_from_local_safe',
    'safe_torch_load', 'source_name'
]


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint asks to build an object outside :data:`SAFE_GLOBALS`."""


class CheckpointFormatError(RuntimeError):
    """A checkpoint file is corrupt, truncated or not a torch checkpoint."""


# ---------------------------------------------------------------------------
# The allow-list
# ---------------------------------------------------------------------------

# HistoryBuffer.__getstate__ stores the class's statistics methods; pickle
# protocol 2 writes each as ``getattr(HistoryBuffer, '<name>')``.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'mean', 'current')


def _history_buffer_method(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` during loading: HistoryBuffer methods only."""
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    owner = getattr(obj, '__qualname__', type(obj).__qualname__)
    raise pickle.UnpicklingError(
        f'Unsupported global: GLOBAL builtins.getattr({owner}, {name!r}) was not an allowed '
        'global by default.')


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """Globals numpy's pickles use for arrays, dtypes and scalars.

    numpy 2 writes ``numpy._core.multiarray.*`` and numpy 1 ``numpy.core.multiarray.*``;
    both names are mapped to the installed functions so either file loads.
    """
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        multiarray = np.core.multiarray
    entries: List[Union[Callable, Tuple[Callable, str]]] = [np.ndarray, np.dtype]
    for core in ('numpy.core', 'numpy._core'):
        entries.append((multiarray._reconstruct, f'{core}.multiarray._reconstruct'))
        entries.append((multiarray.scalar, f'{core}.multiarray.scalar'))
    # Since numpy 1.25 every dtype instance has a concrete class (numpy.dtypes.*), which
    # the unpickler must be allowed to BUILD. Numeric and bool only: no object, void,
    # string or datetime dtypes.
    dtype_module = getattr(np, 'dtypes', None)
    for name in sorted(getattr(dtype_module, '__all__', ())):
        dtype_cls = getattr(dtype_module, name)
        scalar_type = getattr(dtype_cls, 'type', None)
        if (isinstance(scalar_type, type) and issubclass(scalar_type, (np.number, np.bool_))
                and not issubclass(scalar_type, np.timedelta64) and dtype_cls not in entries):
            entries.append(dtype_cls)
    return entries


SAFE_GLOBALS: List[Union[Callable, Tuple[Callable, str]]] = [
    HistoryBuffer,
    (_history_buffer_method, 'builtins.getattr'),
    torch.torch_version.TorchVersion,
    *_numpy_globals(),
]
"""What ``weights_only`` loading may build besides torch's defaults (tensors,
``OrderedDict``, ``Counter``, ``set``, bytes...). Entries are classes/functions or
``(object, 'pickled.name')`` pairs, as ``torch.serialization.safe_globals`` takes."""


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_REFUSAL_PATTERNS = (
    re.compile(r'GLOBAL (\S+\(.*?\)) was not an allowed global'),  # our getattr stand-in
    re.compile(r'GLOBAL (\S+) was not an allowed global'),
    re.compile(r'unsupported GLOBAL (\S+) whose module'),
    re.compile(r'reduce for unrecognized function (.+?)(?: which belongs|$)', re.M),
    re.compile(r'Can only create new object .*? but got (.+)$', re.M),
    re.compile(r'Can only build .*? but got (.+)$', re.M),
)


def source_name(path_or_file: PathOrFile) -> str:
    """The name of a checkpoint source for messages: the path, or a file object's name."""
    if isinstance(path_or_file, (str, os.PathLike)):
        return os.fspath(path_or_file)
    return str(getattr(path_or_file, 'name', '<file object>'))


def _refused_global(message: str) -> Optional[str]:
    """The global torch's weights-only unpickler refused, parsed from its message."""
    for pattern in _REFUSAL_PATTERNS:
        match = pattern.search(message)
        if match:
            name = match.group(1).strip()
            # torch prints refused builtins without their module ("exec").
            if re.fullmatch(r'[A-Za-z_]\w*', name):
                name = f'builtins.{name}'
            # Protocol 2 writes Python 2 module names (subprocess -> commands).
            module, _, attr = name.partition('(')[0].rpartition('.')
            if module in _compat_pickle.IMPORT_MAPPING and '(' not in name:
                name = f'{_compat_pickle.IMPORT_MAPPING[module]}.{attr}'
            return name
    return None


def safe_torch_load(path_or_file: PathOrFile,
                    map_location: Union[str, torch.device, Callable, None] = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and the :data:`SAFE_GLOBALS` allow-list.

    Args:
        path_or_file: A checkpoint path (``~`` expanded) or a binary file object.
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        The loaded object (an MMEngine checkpoint dict, a state dict, ...).

    Raises:
        FileNotFoundError: the path does not exist.
        UnsafeCheckpointError: the file asks for a global outside the allow-list
            (nothing from it was executed).
        CheckpointFormatError: the file is corrupt or not a torch checkpoint.
    """
    source = path_or_file
    if isinstance(path_or_file, (str, os.PathLike)):
        source = osp.expanduser(os.fspath(path_or_file))
        if not osp.isfile(source):
            raise FileNotFoundError(f'checkpoint not found: {source}')
    name = source_name(source)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_global(str(err))
        if refused is not None:
            raise UnsafeCheckpointError(
                f'refusing to load {name}: it needs {refused}, which is not in the '
                'coupleface allow-list (coupleface.utils.checkpoint_load.SAFE_GLOBALS)') from None
        raise CheckpointFormatError(
            f'cannot read checkpoint {name}: {_first_line(err)}') from err
    except Exception as err:  # zip/legacy-format errors surface as many types
        raise CheckpointFormatError(
            f'cannot read checkpoint {name}: {_first_line(err)}') from err


def _first_line(err: BaseException) -> str:
    """The informative line of a torch.load error (its weights-only preamble dropped)."""
    text = str(err)
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
    elif text.startswith('Weights only load failed.'):
        text = text.split('\n', 1)[-1]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), '')
    return f'{type(err).__name__}: {line}' if line else type(err).__name__


def load_from_local_safe(filename: str, map_location=None) -> Any:
    """MMEngine ``CheckpointLoader`` scheme for local paths, via :func:`safe_torch_load`."""
    return safe_torch_load(filename, map_location=map_location)


def load_from_http_safe(filename: str, map_location=None, model_dir: Optional[str] = None) -> Any:
    """MMEngine ``CheckpointLoader`` scheme for http(s) URLs, via :func:`safe_torch_load`.

    The file is downloaded once into ``<torch hub dir>/checkpoints`` (local rank 0
    first in distributed runs, as MMEngine's own loader does) and loaded from there.
    """
    from urllib.parse import urlparse

    from mmengine.dist import get_dist_info
    from torch.hub import download_url_to_file, get_dir

    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))

    def fetch() -> None:
        if not osp.isfile(cached):
            os.makedirs(model_dir, exist_ok=True)
            download_url_to_file(filename, cached, progress=False)

    rank, world_size = get_dist_info()
    if rank == 0:
        fetch()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            fetch()
    return safe_torch_load(cached, map_location=map_location)


def install_safe_checkpoint_loading() -> None:
    """Route MMEngine's checkpoint loading for local paths and http(s) through us.

    Registers :func:`load_from_local_safe` as the ``''`` (fallback, local file)
    scheme and :func:`load_from_http_safe` for ``http://``/``https://`` in
    ``mmengine.runner.checkpoint.CheckpointLoader``, which ``Runner.load_checkpoint``,
    ``Runner.resume`` and ``load_from`` use through ``_load_checkpoint``. The
    module-level names ``load_from_local``/``load_from_http`` are replaced too, so
    MMEngine's ``open-mmlab://``/``torchvision://`` loaders (which call
    ``load_from_http``) are covered. Idempotent.
    """
    from mmengine.runner import checkpoint as mm_ckpt

    mm_ckpt.CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe,
                                             force=True)
    mm_ckpt.CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                             loader=load_from_http_safe, force=True)
    mm_ckpt.load_from_local = load_from_local_safe
    mm_ckpt.load_from_http = load_from_http_safe
