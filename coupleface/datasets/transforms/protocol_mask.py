"""Masked-face verification protocols on any pair set (ICCV 2021 MFR challenge style).

The ICCV 2021 Masked Face Recognition challenge (insightface ``challenges/iccv21-mfr``)
evaluates a model on pairs where faces wear masks. Any ``.bin`` pair set gives three
protocols here:

* ``clean``: the pairs as they are;
* ``masked_unmasked``: the first image of each pair (even in-set ``sample_idx``) wears a
  synthetic mask, the second stays clean (a masked probe against an unmasked gallery);
* ``masked_masked``: both images wear a mask.

:class:`~coupleface.datasets.VerificationBinDataset` lists each set once per protocol (set
name ``name``, ``name@masked_unmasked``, ``name@masked_masked``; the naming helpers
:func:`~coupleface.datasets.mask_protocols.protocol_set_name` /
:func:`~coupleface.datasets.mask_protocols.split_protocol_set_name` live in
:mod:`coupleface.datasets.mask_protocols`) and gives each item its ``mask_protocol``;
:class:`ProtocolMask`, placed after ``LoadFaceImage``, draws the masks.
Unlike training augmentation the masks never change between runs or epochs: they are drawn
from a fixed seed and the image's (set, index), so the same image always gets the same mask
in every protocol and every evaluation.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from coupleface.registry import TRANSFORMS
from coupleface.utils.seeding import salt_hash

from ..mask_protocols import masks_image, split_protocol_set_name
from .mask_render import MASK_SHAPES
from .masking import Color, SyntheticMask

_MASK64 = (1 << 64) - 1


@TRANSFORMS.register_module()
class ProtocolMask(BaseTransform):
    """Mask the images a masked verification protocol asks for, always the same way.

    Reads ``mask_protocol`` (set by ``VerificationBinDataset(protocols=...)``; a sample
    without it is ``'clean'``) and ``sample_idx`` (the in-set index), and masks the image
    when :func:`~coupleface.datasets.mask_protocols.masks_image` says so, with
    :class:`~.masking.SyntheticMask`'s shapes drawn
    from ``default_rng([seed, 0, sample_idx, crc32(f'{seed_salt}/{base set name}')])``: the
    layout of :func:`~.seeding.sample_rng` at epoch 0, but with this transform's own ``seed``
    instead of the experiment's, so neither the runner's seed nor the epoch changes a mask.
    An image has the same mask under ``masked_unmasked`` and ``masked_masked``.

    Required keys: ``img`` (uint8 BGR), ``sample_idx``.
    Optional keys: ``mask_protocol``, ``base_set_name`` (else taken from ``set_name``),
    ``landmarks``.
    Modified keys: ``img`` (a new array when masked).
    Added keys: ``masked``.

    Args:
        seed (int): The fixed seed of the masks. Defaults to 0.
        shapes (Sequence[str]): Mask shapes to draw from. Defaults to all of
            :data:`~.mask_render.MASK_SHAPES`.
        colors (Sequence, optional): Mask colours (see ``SyntheticMask``). Defaults to the
            whole palette.
        textures (bool | Sequence[str]): Printed textures allowed. Defaults to True.
        seed_salt (str): Salt of the random stream. Defaults to ``'protocol_mask'``.

    Examples:
        >>> test_dataloader = dict(dataset=dict(
        ...     type='VerificationBinDataset', data_root='data/faces_emore',
        ...     ann_files=['lfw.bin'], protocols=('clean', 'masked_unmasked'),
        ...     pipeline=[dict(type='LoadFaceImage', size=112), dict(type='ProtocolMask'),
        ...               dict(type='PackFaceInputs')]))
        >>> # metrics: lfw/..., lfw@masked_unmasked/..., lfw/mfr/...
    """

    def __init__(self, seed: int = 0, shapes: Sequence[str] = MASK_SHAPES,
                 colors: Optional[Sequence[Color]] = None,
                 textures: Union[bool, Sequence[str]] = True,
                 seed_salt: str = 'protocol_mask') -> None:
        self.seed = int(seed)
        self.seed_salt = str(seed_salt)
        # SyntheticMask validates the options and draws the spec; p=1: always a mask.
        self.masker = SyntheticMask(p=1.0, shapes=shapes, colors=colors, textures=textures,
                                    seed_salt=self.seed_salt)

    def _rng(self, sample_idx: int, base_set_name: str) -> np.random.Generator:
        key = [self.seed, 0, int(sample_idx), salt_hash(f'{self.seed_salt}/{base_set_name}')]
        return np.random.default_rng([v & _MASK64 for v in key])

    def transform(self, results: dict) -> dict:
        protocol = results.get('mask_protocol') or 'clean'
        if results.get('sample_idx') is None:
            raise KeyError('ProtocolMask needs "sample_idx" (the index in the pair set); '
                           'use it with VerificationBinDataset')
        sample_idx = int(results['sample_idx'])
        spec = None
        if masks_image(protocol, sample_idx):
            base = results.get('base_set_name')
            if base is None:
                base = split_protocol_set_name(str(results.get('set_name', '')))[0]
            _, spec = self.masker.sample_spec(self._rng(sample_idx, base))
        return self.masker.apply_spec(results, spec)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(seed={self.seed}, {self.masker.options_repr()}, '
                f'seed_salt={self.seed_salt!r})')
