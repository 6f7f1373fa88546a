"""Provenance checks of files made for one run (docs/architecture.md §4 Relations, Teacher bank).

A relations file and a teacher bank each record, beside their arrays, what they were made
from (teacher checkpoint hash, dataset length, ...). A reader that needs particular values
passes them as ``expected``; :func:`check_meta` refuses the file with one line naming the
file and the first differing key, so a file made for another teacher or dataset is never
used silently.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional

__all__ = ['check_meta']


def _json_normalised(meta: Dict[str, Any]) -> Dict[str, Any]:
    return json.loads(json.dumps(meta))


def check_meta(path: str, recorded: Dict[str, Any], expected: Optional[Dict[str, Any]],
               what: str) -> None:
    """Raise a one-line ``ValueError`` naming ``path`` and the first differing key.

    Args:
        path: The file the metadata belongs to (for the message).
        recorded: Metadata stored with the file.
        expected: Values the caller needs (``None``: nothing to check). Compared after a
            JSON round trip (tuples equal lists).
        what: What the file holds, e.g. ``'relations'`` (for the message).

    Raises:
        ValueError: ``recorded`` lacks a key of ``expected`` or holds another value.

    Examples:
        >>> check_meta('rel.npz', dict(k=8, dataset_len=10), dict(k=8), 'relations')
        >>> check_meta('rel.npz', dict(k=8), dict(k=4), 'relations')
        Traceback (most recent call last):
        ...
        ValueError: rel.npz: relations were made with k=8 but 4 is expected; regenerate the file
    """
    if not expected:
        return
    for key, value in _json_normalised(expected).items():
        if key not in recorded:
            raise ValueError(f'{path}: {what} metadata has no {key!r} (expected {value!r}); '
                             'regenerate the file')
        if recorded[key] != value:
            raise ValueError(f'{path}: {what} were made with {key}={recorded[key]!r} but '
                             f'{value!r} is expected; regenerate the file')
