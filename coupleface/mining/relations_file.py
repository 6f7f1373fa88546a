"""The relations file: metadata contract, writing, reading (docs/architecture.md §4 Relations).

One ``.npz`` (no pickle) holds ``neighbours [C, K]`` int64, ``similarities [C, K]``
float32, ``centers [C, D]`` float32 and ``meta`` (a JSON string). The meta keys that say
which run a file belongs to are defined here once, :data:`RELATIONS_META_KEYS`, and built
by :func:`relations_meta`: the RelationMiningHook builds the meta it expects with it and
hands it to :func:`load_relations`, and whoever mines (the hook, ``tools/mine_relations.py``)
writes the same keys. With hard positives a second file ``<name>_hard_positives.npy``
(``[C, h]`` sample indices, ``-1`` padded) sits beside it (:func:`hard_positives_path`).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import zipfile
from typing import Any, Dict, Optional, Union

import numpy as np
from torch import Tensor

from coupleface.utils.meta_check import check_meta

ArrayLike = Union[Tensor, np.ndarray]

__all__ = [
    'RELATIONS_META_KEYS', 'relations_meta', 'save_relations', 'load_relations',
    'hard_positives_path', 'load_hard_positives'
]

#: The provenance every relations file records and the RelationMiningHook checks on reload:
#: the teacher's checkpoint hash (or its bank's), the training set's length and number of
#: identities, the neighbours mined per identity and the hard positives kept per identity.
RELATIONS_META_KEYS = ('teacher_sha256', 'dataset_len', 'num_classes', 'k', 'hard_positives')


def relations_meta(teacher_sha256: str, dataset_len: int, num_classes: int, k: int,
                   hard_positives: int = 0,
                   extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The meta of a relations file: :data:`RELATIONS_META_KEYS` (plus ``extra``).

    Args:
        teacher_sha256: sha256 of the teacher checkpoint (a bank's ``teacher_sha256``).
        dataset_len: Samples in the training set.
        num_classes: Identities in the training set.
        k: Neighbours mined per identity.
        hard_positives: Hard positives kept per identity (0: none).
        extra: Further JSON-serialisable provenance (e.g. the bank path); the contract
            keys above win over keys of the same name.

    Returns:
        dict: ``extra`` updated with the contract keys (plain ints and a str).
    """
    meta = dict(extra or {})
    meta.update(teacher_sha256=str(teacher_sha256 or ''), dataset_len=int(dataset_len),
                num_classes=int(num_classes), k=int(k), hard_positives=int(hard_positives))
    return meta


def _to_numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def save_relations(path: str, neighbours: ArrayLike, similarities: ArrayLike,
                   centers: ArrayLike, meta: Dict[str, Any]) -> None:
    """Write mined relations to ``path`` (``.npz``, no pickle) atomically.

    Args:
        path: Output file (``.npz``).
        neighbours: ``C x K`` int neighbour identities.
        similarities: ``C x K`` their cosine similarities.
        centers: ``C x D`` teacher identity centers.
        meta: JSON-serialisable provenance, normally :func:`relations_meta`; checked by
            :func:`load_relations`.
    """
    nb = _to_numpy(neighbours).astype(np.int64)
    sim = _to_numpy(similarities).astype(np.float32)
    cent = _to_numpy(centers).astype(np.float32)
    if nb.ndim != 2 or sim.shape != nb.shape or cent.ndim != 2 or len(cent) != len(nb):
        raise ValueError(f'expected neighbours/similarities C x K and centers C x D, got '
                         f'{nb.shape}, {sim.shape}, {cent.shape}')
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, 'wb') as f:  # a file object: numpy does not append '.npz'
            np.savez(f, neighbours=nb, similarities=sim, centers=cent,
                     meta=np.array(json.dumps(meta, sort_keys=True)))
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def load_relations(path: str, expect_meta: Optional[Dict[str, Any]] = None
                   ) -> Dict[str, Any]:
    """Read relations written by :func:`save_relations` and check their provenance.

    Args:
        path: The ``.npz`` file.
        expect_meta: Values the recorded meta must have (normally :func:`relations_meta`
            of the current teacher and dataset); ``None`` checks nothing.

    Returns:
        dict: ``neighbours`` (``C x K`` int64), ``similarities`` (``C x K`` float32),
        ``centers`` (``C x D`` float32) as numpy arrays, and ``meta`` (dict).

    Raises:
        ValueError: a malformed file or a meta value differing from ``expect_meta``
            (one line naming the file and the key).
    """
    names = ('neighbours', 'similarities', 'centers', 'meta')
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in names if name in data.files}
    except FileNotFoundError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        # truncated or corrupt (e.g. a copy interrupted): one line, not a zipfile traceback
        raise ValueError(f'{path}: not a readable relations file ({type(err).__name__}: '
                         f'{err})') from None
    missing = set(names) - set(arrays)
    if missing:
        raise ValueError(f'{path}: not a relations file (missing {sorted(missing)})')
    out = {name: arrays[name] for name in names[:3]}
    try:
        meta = json.loads(str(arrays['meta']))
    except ValueError as err:
        raise ValueError(f'{path}: unreadable relations meta ({err})') from None
    nb, sim, cent = out['neighbours'], out['similarities'], out['centers']
    if nb.ndim != 2 or sim.shape != nb.shape or cent.ndim != 2 or len(cent) != len(nb):
        raise ValueError(f'{path}: inconsistent shapes neighbours {nb.shape}, '
                         f'similarities {sim.shape}, centers {cent.shape}')
    check_meta(path, meta, expect_meta, 'relations')
    out['meta'] = meta
    return out


def hard_positives_path(path: str) -> str:
    """The hard-positive table beside relations file ``path`` (``<name>_hard_positives.npy``)."""
    return path[:-4] + '_hard_positives.npy'


def load_hard_positives(path: str) -> Optional[np.ndarray]:
    """The hard-positive table (``C x h`` int64, ``-1`` padded) of relations file ``path``.

    Returns:
        np.ndarray or None: ``None`` when the file beside ``path`` does not exist.
    """
    hard_path = hard_positives_path(path)
    if not osp.isfile(hard_path):
        return None
    return np.load(hard_path, allow_pickle=False)
