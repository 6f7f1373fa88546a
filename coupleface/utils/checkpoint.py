"""Safe checkpoint loading and atomic checkpoint saving for MMEngine.

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

:func:`install_safe_checkpoint_loading` makes MMEngine's ``CheckpointLoader``
(used by ``Runner.load_checkpoint``, ``Runner.resume`` and ``load_from``) use it
for local paths and http(s) URLs; :func:`install_atomic_checkpoint_saving`
makes ``Runner.save_checkpoint`` (and so ``CheckpointHook``) write local
checkpoints through :func:`atomic_save` (temp file, fsync, rename).
:func:`load_state_dict_flexible` loads a full MMEngine checkpoint or a bare
insightface ``backbone.pth`` state dict into a model, with readable key errors.
"""
from __future__ import annotations

import _compat_pickle
import hashlib
import logging
import os
import os.path as osp
import pickle
import re
import uuid
from collections import OrderedDict
from typing import IO, Any, Callable, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log

PathOrFile = Union[str, os.PathLike, IO[bytes]]

__all__ = [
    'SAFE_GLOBALS', 'CheckpointFormatError', 'CheckpointKeyError', 'UnsafeCheckpointError',
    'atomic_save', 'file_sha256', 'install_atomic_checkpoint_saving',
    'install_safe_checkpoint_loading', 'load_state_dict_flexible', 'safe_torch_load'
]


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint asks to build an object outside :data:`SAFE_GLOBALS`."""


class CheckpointFormatError(RuntimeError):
    """A checkpoint file is corrupt, truncated or not a torch checkpoint."""


class CheckpointKeyError(KeyError):
    """A state dict does not match the model (missing, unexpected or reshaped keys)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ''


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


def _source_name(path_or_file: PathOrFile) -> str:
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
    name = _source_name(source)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = _refused_global(str(err))
        if refused is not None:
            raise UnsafeCheckpointError(
                f'refusing to load {name}: it needs {refused}, which is not in the '
                'coupleface allow-list (coupleface.utils.checkpoint.SAFE_GLOBALS)') from None
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


# ---------------------------------------------------------------------------
# State dicts
# ---------------------------------------------------------------------------

_MAX_LISTED = 20


def _listing(kind: str, items: List[str]) -> str:
    shown = ', '.join(items[:_MAX_LISTED])
    more = f', ... (+{len(items) - _MAX_LISTED} more)' if len(items) > _MAX_LISTED else ''
    return f'  {len(items)} {kind}: {shown}{more}'


def _extract_state_dict(checkpoint: Any, source: str) -> Mapping[str, torch.Tensor]:
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


def _strip_module(key: str) -> str:
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
        source = _source_name(checkpoint_or_path)
        checkpoint = safe_torch_load(checkpoint_or_path)
    state_dict = _extract_state_dict(checkpoint, source)
    model_state = model.state_dict()

    keys = [_strip_module(k) for k in state_dict]
    if prefix_map is None and keys and not any(k in model_state for k in keys) \
            and all('backbone.' + k in model_state for k in keys):
        prefix_map = {'': 'backbone.'}
    mapper = _make_key_mapper(prefix_map or {})

    def map_key(key: str) -> str:
        return mapper(_strip_module(key))

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


# ---------------------------------------------------------------------------
# Saving
# ---------------------------------------------------------------------------


def atomic_save(obj: Any, path: Union[str, os.PathLike]) -> None:
    """``torch.save`` to a temp file next to ``path``, fsync, then ``os.replace``.

    A crash (or an exception from ``torch.save``) leaves the old file intact and
    no temp file behind; readers never see a half-written checkpoint.

    Args:
        obj: What to save.
        path: The destination; its directory is created if needed.
    """
    path = os.fspath(path)
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = osp.join(directory, f'.{osp.basename(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        with open(tmp, 'xb') as f:  # 'x': honours the umask, never clobbers
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.lexists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(fd)


_ORIGINAL_SAVE_CHECKPOINT: Optional[Callable] = None


def _is_local_target(filename: str, file_client_args, backend_args) -> bool:
    from mmengine.fileio import LocalBackend, get_file_backend

    if file_client_args is not None or filename.startswith('pavi://'):
        return False
    try:
        return isinstance(get_file_backend(filename, backend_args=backend_args), LocalBackend)
    except Exception:  # an unknown prefix: let MMEngine report it
        return False


def save_checkpoint_atomic(checkpoint: dict, filename: str, file_client_args: Optional[dict] = None,
                           backend_args: Optional[dict] = None) -> None:
    """Drop-in for ``mmengine.runner.checkpoint.save_checkpoint``: atomic for local files.

    Other backends (petrel, pavi, ...) go to MMEngine's original function.
    """
    if _is_local_target(filename, file_client_args, backend_args):
        atomic_save(checkpoint, filename)
        return
    assert _ORIGINAL_SAVE_CHECKPOINT is not None
    _ORIGINAL_SAVE_CHECKPOINT(checkpoint, filename, file_client_args=file_client_args,
                              backend_args=backend_args)


def install_atomic_checkpoint_saving() -> None:
    """Make MMEngine write local checkpoints with :func:`atomic_save`. Idempotent.

    ``Runner.save_checkpoint`` (called by ``CheckpointHook``) calls the name
    ``save_checkpoint`` it imported into ``mmengine.runner.runner``; the hook's
    ``_publish_model`` and the strategies import it from ``mmengine.runner`` /
    ``mmengine.runner.checkpoint`` at call time. All three names are replaced.
    ``CheckpointHook`` writes its ``last_checkpoint`` pointer after
    ``Runner.save_checkpoint`` returns, i.e. after the rename.
    """
    global _ORIGINAL_SAVE_CHECKPOINT
    import mmengine.runner as mm_runner
    from mmengine.runner import checkpoint as mm_ckpt
    from mmengine.runner import runner as mm_runner_module

    if _ORIGINAL_SAVE_CHECKPOINT is None:
        _ORIGINAL_SAVE_CHECKPOINT = mm_ckpt.save_checkpoint
    for module in (mm_ckpt, mm_runner, mm_runner_module):
        module.save_checkpoint = save_checkpoint_atomic


def file_sha256(path: Union[str, os.PathLike], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()
