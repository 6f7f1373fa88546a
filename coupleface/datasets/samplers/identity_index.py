"""The per-identity image index the identity-aware samplers draw from (shared by them)."""
from __future__ import annotations

from typing import Sized, Tuple

import numpy as np


def per_identity_indices(owner: str, dataset: Sized, min_identities: int = 1
                         ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dataset's images grouped by identity, as one flat array with sizes and offsets.

    Identity ``c``'s dataset indices are ``flat[offsets[c]:offsets[c] + sizes[c]]``.

    Args:
        owner: The sampler's name, for the error messages.
        dataset: A training set with ``class_to_indices`` (one sequence of dataset indices
            per identity, as :class:`~coupleface.datasets.MXFaceDataset` gives).
        min_identities: The fewest identities the caller can work with.

    Returns:
        tuple: ``(flat, sizes, offsets)``, int64 arrays.

    Raises:
        TypeError: The dataset has no ``class_to_indices``.
        ValueError: Too few identities, an identity without images, or an index outside
            ``[0, len(dataset))``.
    """
    dataset_len = len(dataset)  # also runs a lazy dataset's full_init
    class_to_indices = getattr(dataset, 'class_to_indices', None)
    if class_to_indices is None:
        raise TypeError(f'{owner} needs a dataset with `class_to_indices`; '
                        f'{type(dataset).__name__} has none')
    per_class = [np.asarray(ids, dtype=np.int64).reshape(-1) for ids in class_to_indices]
    if len(per_class) < min_identities:
        raise ValueError(f'{owner} needs at least {min_identities} identities, the dataset has '
                         f'{len(per_class)}')
    sizes = np.array([len(ids) for ids in per_class], dtype=np.int64)
    if (sizes == 0).any():
        raise ValueError(f'{owner}: identity {int(np.flatnonzero(sizes == 0)[0])} has no images')
    flat = np.concatenate(per_class)
    if flat.min() < 0 or flat.max() >= dataset_len:
        raise ValueError(f'{owner}: class_to_indices holds indices outside '
                         f'[0, len(dataset)={dataset_len})')
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return flat, sizes, offsets
