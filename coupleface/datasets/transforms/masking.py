"""Synthetic face masks for masked-face recognition training (CoupleFace, ICCV 2021 MFR).

``SyntheticMask`` draws a face mask over the nose, mouth and chin of an aligned
face, placed from the canonical 5-point landmarks
(:func:`coupleface.utils.face_template.face_template`, insightface's
``arcface_dst``) or from ``results['landmarks']``. The teacher may keep the
clean face (``keep_teacher_view``) while the student sees the masked one, the
set-up of the ICCV 2021 Masked Face Recognition challenge entries.

This module draws what a mask looks like (:class:`~.mask_render.MaskSpec`: shape, colour,
print, placement jitter); :func:`~.mask_render.draw_mask` in :mod:`.mask_render` renders it
(shapes and what each covers are described there).
All randomness comes from :func:`~.seeding.sample_rng` (global seed, epoch,
``sample_idx``, salt); the global numpy generator is never used.
"""
from __future__ import annotations

import colorsys
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from coupleface.registry import TRANSFORMS
from coupleface.utils.seeding import sample_rng

from .mask_render import MASK_SHAPES, MASK_TEXTURES, MaskSpec, draw_mask, texture_probability

__all__ = ['MASK_COLORS', 'Color', 'SyntheticMask']

#: Default palette, BGR; ``'pastel'`` is a random light colour drawn per mask.
MASK_COLORS: Dict[str, Optional[Tuple[float, float, float]]] = {
    'light_blue': (226.0, 196.0, 140.0),
    'white': (238.0, 240.0, 240.0),
    'black': (42.0, 40.0, 40.0),
    'grey': (150.0, 148.0, 146.0),
    'pastel': None,
}

Color = Union[str, Sequence[float]]


def _pastel(hue: float, sat: float, val: float) -> Tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(hue, 0.18 + 0.22 * sat, 0.84 + 0.12 * val)
    return (255.0 * b, 255.0 * g, 255.0 * r)


def _as_color(c: Color) -> Union[str, Tuple[float, float, float]]:
    if isinstance(c, str):
        if c not in MASK_COLORS:
            raise ValueError(f'unknown mask colour {c!r}; known: {sorted(MASK_COLORS)} '
                             f'or a BGR triple')
        return c
    vals = tuple(float(x) for x in c)
    if len(vals) != 3 or not all(0.0 <= x <= 255.0 for x in vals):
        raise ValueError(f'a mask colour must be a palette name or a BGR triple in 0..255, '
                         f'got {c!r}')
    return vals


@TRANSFORMS.register_module()
class SyntheticMask(BaseTransform):
    """Draw a synthetic face mask over the nose, mouth and chin (student view).

    Placed from ``results['landmarks']`` (5x2, template order, image pixels)
    when present, else from the canonical template scaled to the image. The
    draw is a pure function of (global seed, epoch, ``sample_idx``,
    ``seed_salt``) via :func:`~.seeding.sample_rng`: reproducible, and new
    every epoch. See :mod:`.mask_render` for what each shape covers.

    Required keys: ``img`` (uint8 BGR), ``sample_idx``.
    Optional keys: ``landmarks`` (in the pixels of ``img`` as it is now: put
    this transform before a flip, or flip the landmarks too), ``epoch``,
    ``teacher_img``.
    Modified keys: ``img`` (a new array; the input array is not written).
    Added keys: ``masked`` (True when this, or an earlier, transform masked the
    image), ``teacher_img`` (with ``keep_teacher_view``).

    Args:
        p (float): Probability of drawing a mask. Defaults to 1.0.
        shapes (Sequence[str]): Shapes to draw from (uniformly), of
            :data:`MASK_SHAPES`. Defaults to all.
        colors (Sequence, optional): Palette names of :data:`MASK_COLORS`
            (``'light_blue'``, ``'white'``, ``'black'``, ``'grey'``, ``'pastel'``
            = a random light colour) or BGR triples; ``None`` = the whole palette.
        textures (bool | Sequence[str]): Allow printed textures (stripes, dots,
            diamonds, plaid), or the kinds allowed; each shape prints with its
            own probability (cloth most often). Defaults to True.
        keep_teacher_view (bool): Copy the clean image to ``teacher_img``
            first (unless the sample already has one), so the teacher sees
            the clean face; done whether or not a mask is drawn, so every
            sample of a batch has both views. Defaults to False.
        seed_salt (str): Salt of the random stream. Defaults to ``'mask'``.

    Examples:
        >>> train_pipeline = [
        ...     dict(type='LoadFaceImage', size=112),
        ...     dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ...     dict(type='SyntheticMask', p=0.5, keep_teacher_view=True),
        ...     dict(type='PackFaceInputs'),
        ... ]
    """

    def __init__(self, p: float = 1.0, shapes: Sequence[str] = MASK_SHAPES,
                 colors: Optional[Sequence[Color]] = None,
                 textures: Union[bool, Sequence[str]] = True,
                 keep_teacher_view: bool = False, seed_salt: str = 'mask') -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f'p must be in [0, 1], got {p}')
        shapes = tuple([shapes] if isinstance(shapes, str) else shapes)
        unknown = [s for s in shapes if s not in MASK_SHAPES]
        if not shapes or unknown:
            raise ValueError(f'shapes must be a non-empty subset of {MASK_SHAPES}, got {shapes}')
        colors = tuple(MASK_COLORS) if colors is None else tuple(colors)
        if not colors:
            raise ValueError('colors must not be empty (None = the default palette)')
        if textures is True:
            textures = MASK_TEXTURES
        elif textures is False or textures is None:
            textures = ()
        textures = tuple([textures] if isinstance(textures, str) else textures)
        bad = [t for t in textures if t not in MASK_TEXTURES]
        if bad:
            raise ValueError(f'unknown textures {bad}; known: {MASK_TEXTURES}')
        self.p = float(p)
        self.shapes = shapes
        self.colors = tuple(_as_color(c) for c in colors)
        self.textures = textures
        self.keep_teacher_view = bool(keep_teacher_view)
        self.seed_salt = str(seed_salt)

    def sample_spec(self, rng: np.random.Generator) -> Tuple[bool, MaskSpec]:
        """Draw whether to mask and the mask, from a fixed block of uniforms.

        Args:
            rng (np.random.Generator): The sample's generator.

        Returns:
            tuple[bool, MaskSpec]: Whether to draw, and what.
        """
        r = rng.random(20).tolist()  # Python floats: keep the float32 maths in float32
        shape = self.shapes[int(r[1] * len(self.shapes))]
        color = self.colors[int(r[2] * len(self.colors))]
        if isinstance(color, str):
            color = MASK_COLORS[color] or _pastel(r[3], r[4], r[5])
        texture, texture_color = None, (0.0, 0.0, 0.0)
        if self.textures and r[6] < texture_probability(shape):
            texture = self.textures[int(r[7] * len(self.textures))]
            base = np.asarray(color)
            lum = float(base @ (0.114, 0.587, 0.299))
            if r[8] < 0.5:  # a darker or lighter print of the base colour
                tc = base * 0.5 if lum > 110 else base + (255.0 - base) * 0.65
            else:  # a contrasting colour
                tc = np.asarray(_pastel(r[9], 1.0, 1.0)) * (0.55 if lum > 110 else 1.0)
            texture_color = tuple(float(x) for x in tc)
        spec = MaskSpec(
            shape=shape, color=tuple(float(x) for x in color), texture=texture,
            texture_color=texture_color,
            texture_period=5.0 + 4.0 * r[10],
            texture_angle=float(np.pi / 4 * int(r[11] * 4) + 0.15 * (r[12] - 0.5)),
            top_shift=3.0 * (r[13] - 0.5), bottom_shift=4.0 * (r[14] - 0.5),
            width_scale=0.93 + 0.14 * r[15], angle=8.0 * (r[16] - 0.5),
            shift_x=2.0 * (r[17] - 0.5), shade_side=2.0 * r[18] - 1.0,
            grain_offset=float(r[19]))
        return bool(r[0] < self.p), spec

    @staticmethod
    def apply_spec(results: dict, spec: Optional[MaskSpec]) -> dict:
        """Draw ``spec`` on ``results['img']`` (none: leave it) and update ``masked``.

        Args:
            results (dict): The sample; ``landmarks`` place the mask when present.
            spec (MaskSpec, optional): The mask to draw, or None.

        Returns:
            dict: ``results`` with a new ``img`` when masked and ``masked`` set (True when
            this, or an earlier, transform masked the image).
        """
        if spec is not None:
            results['img'] = draw_mask(results['img'], spec, results.get('landmarks'))
        results['masked'] = bool(results.get('masked', False)) or spec is not None
        return results

    def transform(self, results: dict) -> dict:
        if self.keep_teacher_view and results.get('teacher_img') is None:
            results['teacher_img'] = results['img'].copy()
        draw, spec = self.sample_spec(sample_rng(results, self.seed_salt))
        return self.apply_spec(results, spec if draw else None)

    def options_repr(self) -> str:
        """``shapes=..., colors=..., textures=...``: the mask options, for ``__repr__``s."""
        return f'shapes={self.shapes}, colors={self.colors}, textures={self.textures}'

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(p={self.p}, {self.options_repr()}, '
                f'keep_teacher_view={self.keep_teacher_view}, seed_salt={self.seed_salt!r})')
