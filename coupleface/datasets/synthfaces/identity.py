"""SynthFaces identities: seeded parameter vectors drawn around shared family prototypes.

An identity is a point ``u`` in the unit cube ``[0, 1]^D``; each coordinate maps
linearly to one physical trait (face outline, skin tone, eye shape and colour,
brows, nose, mouth, hair, texture blotches, landmark offsets, ...; see
``PARAM_RANGES``). Identities are not drawn independently: each belongs to one
of ``num_families`` prototypes ``p_f`` and is ``u = p_f + spread * (v - p_f)``
with ``v`` uniform. ``spread = 1`` gives independent identities; a smaller
spread (higher difficulty) pulls the members of a family together, so some
identities are naturally confusable, as the hard negatives of real face data.

Every random stream is derived from ``(seed, tag, ids...)`` with
``np.random.default_rng``, so an identity does not depend on which identities
were drawn before it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Dict, Tuple

import numpy as np

from coupleface.utils.face_template import FACE_TEMPLATE_112

# Stream tags: keep the family, identity, image and pair streams independent.
TAG_FAMILY = 1
TAG_IDENTITY = 2
TAG_IMAGE = 3
TAG_PAIRS = 4

_BLOTCHES = 4

#: (name, low, high) of every coordinate of an identity vector, in 112-px units.
PARAM_RANGES: Tuple[Tuple[str, float, float], ...] = (
    # face outline
    ('face_half_width', 36.0, 45.0), ('face_half_height', 45.0, 53.0),
    ('face_center_y', 58.0, 63.0), ('jaw', 0.55, 0.9), ('chin_power', 1.0, 3.0),
    # skin colour
    ('skin_tone', 0.0, 1.0), ('skin_red', -1.0, 1.0), ('skin_yellow', -1.0, 1.0),
    # eyes: placement, shape, iris
    ('eye_spacing', -3.0, 3.0), ('eye_height', -2.5, 2.5),
    ('eye_half_width', 5.5, 8.0), ('eye_half_height', 2.6, 4.0), ('eye_tilt', -8.0, 8.0),
    ('iris_radius', 2.4, 3.4), ('eye_colour', 0.0, 1.0), ('eye_shade', -1.0, 1.0),
    # brows
    ('brow_gap', 7.0, 11.0), ('brow_arch', 0.0, 4.0), ('brow_thickness', 1.4, 3.6),
    ('brow_tilt', -2.0, 2.0), ('brow_length', 0.9, 1.4),
    # nose and mouth
    ('nose_length', -3.0, 3.0), ('nose_width', 7.0, 12.0),
    ('mouth_height', -3.0, 3.0), ('mouth_width', -3.0, 3.0), ('upper_lip', 1.8, 4.0),
    ('lower_lip', 2.4, 5.2), ('lip_red', 0.3, 0.7), ('smile', -1.0, 1.2),
    # hair, ears, facial hair
    ('hair_style', 0.0, 1.0), ('hair_colour', 0.0, 1.0), ('hair_shade', -1.0, 1.0),
    ('hairline', 20.0, 32.0), ('hair_part', -1.0, 1.0),
    ('ear_size', 0.8, 1.25), ('facial_hair', 0.0, 1.0),
    # skin marks
    ('freckles', 0.0, 1.0), ('mole', 0.0, 1.0), ('mole_x', -1.0, 1.0), ('mole_y', -1.0, 1.0),
) + tuple(
    item for j in range(_BLOTCHES) for item in (
        (f'blotch{j}_x', -1.0, 1.0), (f'blotch{j}_y', -1.0, 1.0),
        (f'blotch{j}_size', 3.0, 10.0), (f'blotch{j}_shade', -1.0, 1.0))
) + tuple((f'asym{j}', -1.0, 1.0) for j in range(10))

PARAM_NAMES = tuple(name for name, _, _ in PARAM_RANGES)
NUM_PARAMS = len(PARAM_RANGES)
_LOW = np.array([lo for _, lo, _ in PARAM_RANGES])
_SPAN = np.array([hi - lo for _, lo, hi in PARAM_RANGES])

HAIR_STYLES = ('short', 'long', 'bald', 'fringe')

# BGR palettes (OpenCV order).
_SKIN = np.array([[172, 196, 238], [110, 150, 205], [50, 72, 110]], np.float64)
_EYES = np.array([[25, 40, 70], [35, 70, 120], [55, 115, 140], [85, 140, 95],
                  [175, 125, 70], [140, 140, 125]], np.float64)
_HAIR = np.array([[25, 25, 30], [30, 45, 70], [45, 75, 115], [40, 70, 150],
                  [110, 170, 205], [165, 165, 160]], np.float64)
_LIP_TARGET = np.array([70, 55, 175], np.float64)


@dataclass(frozen=True)
class SynthIdentity:
    """The traits of one SynthFaces identity (all lengths in 112-px units).

    Attributes:
        identity_id (int): The id it was drawn for.
        family (int): Index of its family prototype.
        vector (np.ndarray): The unit-cube vector ``u`` (``NUM_PARAMS``,).
        params (dict): Physical value of every coordinate, by name.
        landmarks (np.ndarray): 5x2 canonical landmarks of this identity: the
            template plus identity offsets of a few px.
        skin, eye, brow, hair, lip (np.ndarray): BGR colours (float).
        hair_style (str): One of ``HAIR_STYLES``.
        facial_hair (str): ``'none'``, ``'moustache'`` or ``'beard'``.
        freckles (np.ndarray): Kx2 freckle centres (K may be 0).
    """
    identity_id: int
    family: int
    vector: np.ndarray
    params: Dict[str, float]
    landmarks: np.ndarray
    skin: np.ndarray
    eye: np.ndarray
    brow: np.ndarray
    hair: np.ndarray
    lip: np.ndarray
    hair_style: str
    facial_hair: str
    freckles: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def _palette(palette: np.ndarray, u: float) -> np.ndarray:
    """Piecewise-linear colour along a palette, ``u`` in [0, 1]."""
    pos = float(np.clip(u, 0.0, 1.0)) * (len(palette) - 1)
    i = min(int(pos), len(palette) - 2)
    t = pos - i
    return palette[i] * (1 - t) + palette[i + 1] * t


@functools.lru_cache(maxsize=256)
def family_prototype(seed: int, family: int) -> np.ndarray:
    """The unit-cube prototype of a family (shared by train, val and test ids)."""
    proto = np.random.default_rng([seed, TAG_FAMILY, family]).random(NUM_PARAMS)
    proto.setflags(write=False)
    return proto


def identity_family(seed: int, identity_id: int, num_families: int) -> int:
    """The family an identity belongs to (first draw of its stream)."""
    rng = np.random.default_rng([seed, TAG_IDENTITY, identity_id])
    return int(rng.integers(num_families))


@functools.lru_cache(maxsize=8192)
def make_identity(seed: int, identity_id: int, num_families: int = 16,
                  spread: float = 1.0, landmark_jitter: float = 1.0) -> SynthIdentity:
    """Draw the identity ``identity_id`` of the world ``seed``.

    Args:
        seed (int): World seed (non-negative).
        identity_id (int): Identity id (non-negative).
        num_families (int): Number of family prototypes.
        spread (float): 1 = independent identities, towards 0 = every
            identity close to its family prototype.
        landmark_jitter (float): Scale of the identity landmark offsets
            (1 = up to about 3 px at 112).

    Returns:
        SynthIdentity: Its traits (cached; treat as read-only).
    """
    if seed < 0 or identity_id < 0:
        raise ValueError(f'seed and identity_id must be >= 0, got {seed}, {identity_id}')
    rng = np.random.default_rng([seed, TAG_IDENTITY, identity_id])
    family = int(rng.integers(num_families))
    free = rng.random(NUM_PARAMS)
    proto = family_prototype(seed, family)
    u = np.clip(proto + spread * (free - proto), 0.0, 1.0)
    values = _LOW + u * _SPAN
    p = dict(zip(PARAM_NAMES, values.tolist()))

    # Canonical landmarks: template + structured identity offsets + asymmetry.
    lm = FACE_TEMPLATE_112.astype(np.float64).copy()
    j = landmark_jitter
    lm[0, 0] -= 0.5 * j * p['eye_spacing']
    lm[1, 0] += 0.5 * j * p['eye_spacing']
    lm[:2, 1] += j * p['eye_height']
    lm[2, 1] += j * p['nose_length']
    lm[3:, 1] += j * p['mouth_height']
    lm[3, 0] -= 0.5 * j * p['mouth_width']
    lm[4, 0] += 0.5 * j * p['mouth_width']
    lm += 0.6 * j * np.array([p[f'asym{i}'] for i in range(10)]).reshape(5, 2)

    tone = p['skin_tone']
    skin = _palette(_SKIN, tone) + np.array(
        [-3.0 * p['skin_red'] - 8.0 * p['skin_yellow'],
         -4.0 * p['skin_red'] + 8.0 * p['skin_yellow'], 12.0 * p['skin_red']])
    eye = _palette(_EYES, p['eye_colour']) * (1.0 + 0.2 * p['eye_shade'])
    hair = _palette(_HAIR, p['hair_colour']) * (1.0 + 0.25 * p['hair_shade'])
    brow = 0.55 * hair + 0.45 * np.array([30.0, 40.0, 55.0])
    r = p['lip_red']
    lip = (skin * (1 - r) + _LIP_TARGET * r) * (0.95 - 0.25 * tone)
    style = HAIR_STYLES[min(int(p['hair_style'] * len(HAIR_STYLES)), len(HAIR_STYLES) - 1)]
    fh = p['facial_hair']
    facial_hair = 'beard' if fh < 0.15 else ('moustache' if fh < 0.3 else 'none')

    freckles = np.zeros((0, 2))
    if p['freckles'] > 0.7:
        n = int(10 + 40 * (p['freckles'] - 0.7) / 0.3)
        side = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        fx = 56.0 + side * rng.uniform(6.0, 26.0, n)
        fy = rng.uniform(58.0, 78.0, n)
        freckles = np.stack([fx, fy], axis=1)

    clip = lambda c: np.clip(c, 0.0, 255.0)  # noqa: E731
    for arr in (u, lm, freckles):
        arr.setflags(write=False)
    return SynthIdentity(
        identity_id=int(identity_id), family=family, vector=u, params=p,
        landmarks=lm, skin=clip(skin), eye=clip(eye), brow=clip(brow),
        hair=clip(hair), lip=clip(lip), hair_style=style, facial_hair=facial_hair,
        freckles=freckles)
