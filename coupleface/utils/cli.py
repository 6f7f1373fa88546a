"""Entry-point helper: user mistakes end in one line, not a traceback.

Config and data errors (``ValueError``, ``KeyError``, ``FileNotFoundError`` and
our own error types derived from them) are printed as ``error: <message>`` (one
line, followed by a listing where the message has one, e.g. mismatched
checkpoint keys) and exit with status 1. Set ``COUPLEFACE_DEBUG=1`` to see the full traceback.

The ``add_*_arguments`` helpers are the options several tools share (model, embedding,
SynthFaces rendering), so that they read and default alike.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional

USER_ERRORS = (ValueError, KeyError, FileNotFoundError)


def run_cli(main: Callable[[], object]) -> int:
    """Run ``main`` and turn user errors into a one-line message and exit code 1."""
    from coupleface.utils.checkpoint_load import CheckpointFormatError, UnsafeCheckpointError
    try:
        main()
    except USER_ERRORS + (CheckpointFormatError, UnsafeCheckpointError) as e:
        if os.environ.get('COUPLEFACE_DEBUG'):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {type(e).__name__}: {msg}', file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------ argparse helpers
def default_device() -> str:
    """``'cuda'`` when a CUDA device is available, else ``'cpu'``: every tool's ``--device``."""
    import torch

    return 'cuda' if torch.cuda.is_available() else 'cpu'


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` (default :func:`default_device`)."""
    parser.add_argument('--device', default=default_device(),
                        help='torch device, e.g. cuda:0 (default: cuda when available, else '
                        'cpu)')


def add_model_arguments(parser: argparse.ArgumentParser, config_required: bool = False) -> None:
    """``[config] checkpoint``, ``--network`` and ``--input-size`` of the tools that load a
    face model (:mod:`coupleface.apis.model_source`).

    Without ``config_required`` the config may be left out for an ``.onnx`` model or a bare
    arcface_torch ``backbone.pth``; such a parser must parse with
    ``parser.parse_intermixed_args`` (an optional positional before required ones).

    Args:
        parser: The tool's parser.
        config_required: The tool needs a config (e.g. for its data sets).
    """
    parser.add_argument('config', nargs=None if config_required else '?',
                        help='config file path (or coupleface::rel/path.py)' +
                        ('' if config_required else '; leave out for an .onnx model or a '
                         'bare backbone.pth'))
    parser.add_argument('checkpoint', help='recognizer, distiller or insightface backbone '
                        'checkpoint, or an .onnx model')
    add_network_arguments(parser)


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """``--network`` and ``--input-size`` of a config-less model source."""
    parser.add_argument('--network', help="arcface_torch name of a bare backbone.pth's "
                        'network (r18, r34, r50, r100, r200, mbf, mbf_large); default: read '
                        'from the weights (or the config\'s model)')
    parser.add_argument('--input-size', type=int, help='input side of a config-less model '
                        '(default: the ONNX graph\'s, or 112)')


def add_embedding_arguments(parser: argparse.ArgumentParser, batch_size: int = 128,
                            chunk_size: Optional[int] = None, progress: bool = True) -> None:
    """``--batch-size``, [``--chunk-size``], ``--device`` [and ``--no-progress``] of the tools
    that embed images (check the batch size with :func:`check_batch_size`).

    Args:
        parser: The tool's parser.
        batch_size: Default images per forward pass.
        chunk_size: Default similarity rows scored at once; None: no ``--chunk-size``.
        progress: Also add ``--no-progress``.
    """
    parser.add_argument('--batch-size', type=int, default=batch_size,
                        help='images per forward pass')
    if chunk_size is not None:
        parser.add_argument('--chunk-size', type=int, default=chunk_size,
                            help='similarity rows scored at once')
    add_device_argument(parser)
    if progress:
        add_progress_argument(parser)


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``."""
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def check_batch_size(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit through ``parser.error`` when ``args.batch_size`` is below 1."""
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')


def add_synthfaces_arguments(parser: argparse.ArgumentParser, difficulty: float) -> None:
    """``--size``, ``--difficulty`` and ``--seed`` of the tools that render SynthFaces."""
    parser.add_argument('--size', type=int, default=112, help='image side (px)')
    parser.add_argument('--difficulty', type=float, default=difficulty,
                        help='0 (easy) .. 1 (hard): nuisance and identity closeness')
    parser.add_argument('--seed', type=int, default=0, help='SynthFaces world seed')


def add_flip_arguments(parser: argparse.ArgumentParser) -> None:
    """``--flip`` / ``--no-flip`` (``args.flip_test``; None: the config's ``flip_test``)."""
    flip = parser.add_mutually_exclusive_group()
    flip.add_argument('--flip', dest='flip_test', action='store_true', default=None,
                      help='fuse image and mirror embeddings (default: the config\'s flip_test)')
    flip.add_argument('--no-flip', dest='flip_test', action='store_false')
