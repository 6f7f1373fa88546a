"""The error for a data file or folder that is not there, with the way to make it.

A newcomer's first run of a SynthFaces config fails here when ``data/synthfaces`` was never
generated; the message says how to make it instead of only naming the path.
"""
from __future__ import annotations

import os.path as osp

HOW_TO_MAKE = ('the SynthFaces configs read data/synthfaces: make it with `python '
               'tools/make_synthfaces.py data/synthfaces`; insightface data (MS1M, .bin sets): '
               'docs/data_preparation.md')


def check_exists(path: str, what: str) -> None:
    """Raise FileNotFoundError naming ``what`` and ``path``, and how to make the data.

    Args:
        path: A file or folder the dataset needs.
        what: What it is, for the message (e.g. ``'RecordIO file'``).
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'{what} not found: {path} ({HOW_TO_MAKE})')
