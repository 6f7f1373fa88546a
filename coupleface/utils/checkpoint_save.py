"""Atomic checkpoint saving: temp file, fsync, rename, for every MMEngine checkpoint.

:func:`atomic_save` writes with ``torch.save`` to a temp file next to the target, fsyncs
it, renames it over the target and fsyncs the directory, so a kill during a save never
leaves a truncated ``.pth`` that ``--resume`` would pick.
:func:`install_atomic_checkpoint_saving` (called by ``import coupleface``) makes
``Runner.save_checkpoint`` (and so ``CheckpointHook``) write local checkpoints through it.
"""
from __future__ import annotations

import os
import os.path as osp
import uuid
from typing import Any, Callable, Optional, Union

import torch

__all__ = ['atomic_save', 'install_atomic_checkpoint_saving', 'save_checkpoint_atomic']


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
