"""Names of the masked-face verification protocols and of the pair sets under them.

Any ``.bin`` pair set is evaluated under three protocols (ICCV 2021 MFR challenge style):
``clean`` (the pairs as they are), ``masked_unmasked`` (the first image of each pair wears a
synthetic mask) and ``masked_masked`` (both do). ``VerificationBinDataset`` lists a set once
per protocol under the names built here, the ``ProtocolMask`` transform
(:mod:`coupleface.datasets.transforms.protocol_mask`) masks the images :func:`masks_image`
names, and the verification metric and the reports split the names back
(docs/architecture.md §3, back-arrow 6). Plain functions: no transform, no I/O.
"""
from __future__ import annotations

from typing import Tuple

__all__ = ['MASK_PROTOCOLS', 'masks_image', 'protocol_set_name', 'split_protocol_set_name']

#: The verification protocols, in their listing order.
MASK_PROTOCOLS = ('clean', 'masked_unmasked', 'masked_masked')


def protocol_set_name(name: str, protocol: str) -> str:
    """The set name of a pair set under a protocol.

    Args:
        name (str): The base set name (e.g. ``'lfw'``).
        protocol (str): One of :data:`MASK_PROTOCOLS`.

    Returns:
        str: ``name`` for ``'clean'``, else ``f'{name}@{protocol}'``.

    Examples:
        >>> protocol_set_name('lfw', 'masked_unmasked')
        'lfw@masked_unmasked'
    """
    if protocol not in MASK_PROTOCOLS:
        raise ValueError(f'unknown mask protocol {protocol!r}; known: {MASK_PROTOCOLS}')
    return name if protocol == 'clean' else f'{name}@{protocol}'


def split_protocol_set_name(set_name: str) -> Tuple[str, str]:
    """Inverse of :func:`protocol_set_name`.

    Args:
        set_name (str): A set name as listed by the dataset.

    Returns:
        tuple[str, str]: ``(base set name, protocol)``; a name without a known
        ``@protocol`` suffix is ``(set_name, 'clean')``.

    Examples:
        >>> split_protocol_set_name('lfw@masked_masked')
        ('lfw', 'masked_masked')
        >>> split_protocol_set_name('lfw')
        ('lfw', 'clean')
    """
    base, sep, suffix = set_name.rpartition('@')
    if sep and suffix in MASK_PROTOCOLS[1:]:
        return base, suffix
    return set_name, 'clean'


def masks_image(protocol: str, sample_idx: int) -> bool:
    """Whether an image of a pair set wears a mask under a protocol.

    Args:
        protocol (str): One of :data:`MASK_PROTOCOLS`.
        sample_idx (int): The image's index in its set (pair ``i`` = images ``2i``, ``2i+1``).

    Returns:
        bool: False for ``clean``; True for the first image of each pair (even index) under
        ``masked_unmasked``; True for every image under ``masked_masked``.
    """
    if protocol not in MASK_PROTOCOLS:
        raise ValueError(f'unknown mask protocol {protocol!r}; known: {MASK_PROTOCOLS}')
    if protocol == 'masked_masked':
        return True
    return protocol == 'masked_unmasked' and int(sample_idx) % 2 == 0
