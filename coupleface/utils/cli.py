"""Entry-point helper: user mistakes end in one line, not a traceback.

Config and data errors (``ValueError``, ``KeyError``, ``FileNotFoundError`` and
our own error types derived from them) are printed as ``error: <message>`` (one
line, followed by a listing where the message has one, e.g. mismatched
checkpoint keys) and exit with status 1. Set ``COUPLEFACE_DEBUG=1`` to see the full traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

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
