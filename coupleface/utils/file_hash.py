"""File digests: the SHA-256 that records which checkpoint or bank a run used."""
from __future__ import annotations

import hashlib
import os
from typing import Union

__all__ = ['file_sha256']


def file_sha256(path: Union[str, os.PathLike], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in ``chunk``-byte blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()
