"""Draw a synthetic face mask: shape tables, :class:`MaskSpec`, rasterising and shading.

A mask is a polygon designed in the canonical 112-px frame, mapped to the image
by the similarity transform template -> landmarks, rasterised with anti-aliased
OpenCV fills and composited over the face. Its colour is shaded by the shape's
relief (pleats, seams, the curve around the cheeks), by a luminance plane
fitted to the covered face region (so the mask follows the face's light
direction and brightness) and by fine fabric grain. Shapes and what they cover
(canonical 112-px frame: eyes at y~51.6, nose tip y~71.7, mouth y~92.3):

* ``surgical``: pleated rounded rectangle with ear loops; from the nose bridge
  (about 10 px below the eyes) to under the chin, cheek to cheek.
* ``cloth``: contoured mask peaked over the nose with a vertical centre seam,
  round bottom, ear loops; nose bridge, nose, mouth, chin.
* ``n95``: oval cup with a centre seam, rim, nose clip and head straps; nose
  bridge, nose, mouth, chin.
* ``half``: worn low: the lower nose (nose tip and nostrils, top edge about
  5 px above the nose tip), mouth and chin; the nose bridge stays visible.

All shapes cover the nose tip and both mouth corners and stay clear of the
eyes; with landmarks the edges are clamped to keep that true for any face.
:func:`draw_mask` is deterministic: everything random about a mask is in its
:class:`MaskSpec`, which the transforms (:mod:`.masking`, :mod:`.protocol_mask`) draw.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from coupleface.utils.face_template import FACE_TEMPLATE_112

__all__ = ['MASK_SHAPES', 'MASK_TEXTURES', 'MaskSpec', 'draw_mask', 'texture_probability']

#: Mask shapes, in the default order.
MASK_SHAPES = ('surgical', 'cloth', 'n95', 'half')

#: Printed textures.
MASK_TEXTURES = ('stripes', 'dots', 'diamonds', 'plaid')

_SHIFT = 4  # fixed-point bits of the OpenCV fills


@dataclass(frozen=True)
class _ShapeGeometry:
    """A mask outline in the canonical frame (x relative to the midline, 112-px units)."""
    top_c: float        # top edge height at the midline (nose bridge)
    top_s: float        # top edge height at the sides
    peak: float         # width of the top edge's peak, relative to the half width
    hw_top: float       # half width at the top corners
    hw_bot: float       # half width at the bottom corners
    bot_s: float        # height of the bottom corners
    bot_c: float        # bottom edge height at the midline (under the chin)
    bulge: float        # how far the sides bow outwards
    nose_margin: float  # the top edge stays this far above the nose tip
    texture_prob: float  # chance of a printed texture when textures are on
    grain: float        # fabric grain (grey levels)


_GEOMETRY = {
    'surgical': _ShapeGeometry(61.0, 64.5, 0.55, 37.0, 31.0, 104.0, 108.5, 2.5, 7.0, 0.15, 2.0),
    'cloth': _ShapeGeometry(58.8, 67.0, 0.35, 35.5, 22.0, 103.0, 112.5, 5.0, 7.0, 0.65, 4.0),
    'n95': _ShapeGeometry(60.0, 66.0, 0.6, 33.5, 24.0, 100.0, 111.0, 6.5, 7.0, 0.1, 3.0),
    'half': _ShapeGeometry(66.7, 70.0, 0.6, 35.5, 29.5, 103.5, 108.5, 3.0, 4.5, 0.3, 2.5),
}


def texture_probability(shape: str) -> float:
    """The chance that a mask of ``shape`` is printed, when textures are allowed.

    Args:
        shape: One of :data:`MASK_SHAPES`.

    Returns:
        float: The shape's print probability (cloth most often).
    """
    return _GEOMETRY[shape].texture_prob


@dataclass(frozen=True)
class MaskSpec:
    """Everything random about one mask (drawn by :meth:`~.masking.SyntheticMask.sample_spec`).

    Args:
        shape (str): One of :data:`MASK_SHAPES`.
        color (tuple): BGR base colour.
        texture (str, optional): One of :data:`MASK_TEXTURES`, or None.
        texture_color (tuple): BGR colour of the print.
        texture_period (float): Print period (canonical px).
        texture_angle (float): Print angle (radians).
        top_shift (float): Added to the top edge height (canonical px).
        bottom_shift (float): Added to the bottom edge height (canonical px).
        width_scale (float): Multiplies the half widths.
        angle (float): In-plane rotation about the nose tip (degrees).
        shift_x (float): Horizontal shift (canonical px).
        shade_side (float): -1..1, a left/right shading asymmetry of the relief.
        grain_offset (float): 0..1, where the fabric grain is read from.
    """
    shape: str
    color: Tuple[float, float, float]
    texture: Optional[str] = None
    texture_color: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    texture_period: float = 7.0
    texture_angle: float = 0.0
    top_shift: float = 0.0
    bottom_shift: float = 0.0
    width_scale: float = 1.0
    angle: float = 0.0
    shift_x: float = 0.0
    shade_side: float = 0.0
    grain_offset: float = 0.0


@functools.lru_cache(maxsize=1)
def _grain_bank() -> np.ndarray:
    """A fixed bank of N(0, 1) samples; masks read slices at random offsets (cheap)."""
    bank = np.random.default_rng(0x3A5C).standard_normal(1 << 18, dtype=np.float32)
    bank.setflags(write=False)
    return bank


def _top_profile(t: np.ndarray, peak: float) -> np.ndarray:
    """1 at the midline, 0 at the top corners (|t| = 1): the rise of the top edge."""
    floor = np.exp(-1.0 / peak ** 2)
    return np.clip((np.exp(-(t / peak) ** 2) - floor) / (1.0 - floor), 0.0, 1.0)


@functools.lru_cache(maxsize=16)
def _bezier_basis(n: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)[:, None]
    return np.concatenate([(1 - s) ** 2, 2 * (1 - s) * s, s ** 2], 1)


def _bezier(p0, p1, p2, n: int) -> np.ndarray:
    """``n`` points of the quadratic Bezier curve p0 -> p2 with control point p1."""
    return _bezier_basis(n) @ np.array([p0, p1, p2], dtype=np.float64)


@functools.lru_cache(maxsize=64)
def _ramp(n: int) -> np.ndarray:
    """``n`` float32 values evenly from -1 to 1 (read-only, cached)."""
    r = np.linspace(-1.0, 1.0, n, dtype=np.float32)
    r.setflags(write=False)
    return r


@dataclass(frozen=True)
class _Layout:
    """The outline parameters of one mask after jitter and landmark clamps."""
    top_c: float
    top_s: float
    peak: float
    hw_top: float
    hw_bot: float
    bot_s: float
    bot_c: float
    bulge: float

    def top_y(self, u: np.ndarray) -> np.ndarray:
        return self.top_s + (self.top_c - self.top_s) * _top_profile(u / self.hw_top, self.peak)

    def outline(self) -> np.ndarray:
        """The closed outline, ``N x 2`` canonical ``(u, y)``, clockwise from top-left."""
        u = self.hw_top * _ramp(17).astype(np.float64)
        top = np.stack([u, self.top_y(u)], 1)
        mid = 0.5 * (self.top_s + self.bot_s)
        right = _bezier((self.hw_top, self.top_s), (self.hw_top + self.bulge, mid),
                        (self.hw_bot, self.bot_s), 9)[1:]
        t = -_ramp(17)[1:-1].astype(np.float64)
        bottom = np.stack([self.hw_bot * t,
                           self.bot_s + (self.bot_c - self.bot_s) * np.sqrt(1.0 - t ** 2)], 1)
        left = right[::-1] * (-1.0, 1.0)
        return np.concatenate([top, right, bottom, left[:-1]])


def _similarity(src: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ A @ src + t`` (no reflection)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = float((s ** 2).sum())
    a = float((s * d).sum()) / norm
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / norm
    mat = np.array([[a, -b], [b, a]])
    return mat, md - mat @ ms


def _frame(shape_hw: Tuple[int, int], landmarks: Optional[np.ndarray]
           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical -> image map ``(A, t)`` and the landmarks in the canonical frame."""
    h, w = shape_hw
    if landmarks is None:
        return np.diag([w / 112.0, h / 112.0]), np.zeros(2), FACE_TEMPLATE_112.astype(np.float64)
    lm = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if lm.shape != (5, 2):
        raise ValueError(f'landmarks must be 5x2 (x, y) points, got shape {lm.shape}')
    mat, t = _similarity(FACE_TEMPLATE_112.astype(np.float64), lm)
    return mat, t, (lm - t) @ np.linalg.inv(mat).T


def _layout(spec: MaskSpec, lm_c: np.ndarray) -> Tuple[_Layout, float]:
    """Apply the spec's jitter and clamp the outline to the face's landmarks.

    Returns the layout (in a frame whose midline is at the returned ``cx``) and ``cx``.
    """
    g = _GEOMETRY[spec.shape]
    cx = float(0.5 * (lm_c[2, 0] + 0.5 * (lm_c[3, 0] + lm_c[4, 0])))
    eye_low = float(lm_c[:2, 1].max())
    nose_y = float(lm_c[2, 1])
    mouth_low = float(lm_c[3:, 1].max())
    mouth_half = float(np.abs(lm_c[3:, 0] - cx).max())
    # Keep the eyes clear (above) and the nose tip covered; the nose wins if both can't hold.
    top_c = min(max(g.top_c + spec.top_shift, eye_low + 6.5), nose_y - g.nose_margin)
    top_s = max(g.top_s + spec.top_shift, top_c + 1.0, eye_low + 9.0)
    bot_s = max(g.bot_s + spec.bottom_shift, mouth_low + 7.0)
    bot_c = max(g.bot_c + spec.bottom_shift, bot_s + 1.0, mouth_low + 12.0)
    hw_top = max(g.hw_top * spec.width_scale, mouth_half + 12.0)
    hw_bot = max(g.hw_bot * spec.width_scale, mouth_half + 8.0)
    return _Layout(top_c, top_s, g.peak, hw_top, hw_bot, bot_s, bot_c, g.bulge), float(cx)


def _texture(spec: MaskSpec, u: np.ndarray, v: np.ndarray, px: float) -> np.ndarray:
    """Coverage (0..1) of the print at canonical coordinates ``(u, v)``."""
    per = spec.texture_period
    ca, sa = np.cos(spec.texture_angle), np.sin(spec.texture_angle)
    a = u * ca + v * sa
    b = v * ca - u * sa
    sharp = per / (2.0 * np.pi * px)  # about one pixel wide edges
    if spec.texture == 'stripes':
        return np.clip(np.cos(a * (2.0 * np.pi / per)) * sharp + 0.5, 0.0, 1.0)
    if spec.texture == 'plaid':
        sa_ = np.clip(np.cos(a * (2.0 * np.pi / per)) * sharp - 0.3 * sharp, 0.0, 1.0)
        sb_ = np.clip(np.cos(b * (2.0 * np.pi / per)) * sharp - 0.3 * sharp, 0.0, 1.0)
        return 0.55 * np.maximum(sa_, sb_) + 0.45 * sa_ * sb_
    # Dots and diamonds on a staggered grid.
    row = np.floor(b / per + 0.5)
    da = a / per - 0.5 * (row % 2.0)
    da = (da - np.floor(da + 0.5)) * per
    db = (b / per - row) * per
    if spec.texture == 'dots':
        dist, radius = np.sqrt(da * da + db * db), 0.24 * per
    else:
        dist, radius = np.abs(da) + np.abs(db), 0.3 * per
    return np.clip((radius - dist) / px + 0.5, 0.0, 1.0)


def _relief(spec: MaskSpec, lay: _Layout, u: np.ndarray, v: np.ndarray,
            px: float) -> np.ndarray:
    """Soft shading (multiplicative, ~0.6..1.1) of the mask's 3-D shape."""
    t = u / lay.hw_top
    t2 = t * t
    height = lay.bot_c - lay.top_c
    # Curving around the cheeks darkens the sides; the part under the chin turns away.
    shade = 1.0 - 0.24 * t2 * t2 - 0.08 * t2
    low = np.clip((v - (lay.bot_c - 0.22 * height)) / (0.22 * height), 0.0, 1.0)
    shade -= 0.16 * low * low
    shade += 0.04 * spec.shade_side * t
    top = v - lay.top_y(u)
    if spec.shape in ('surgical', 'half'):
        # Binding along the top edge, a nose wire, and pleats that spread over nose and chin.
        shade -= 0.10 * np.exp(-top / 1.2)
        wire = np.exp(-((top - 2.2) / 0.9) ** 2) * np.clip(1.0 - (t / 0.3) ** 2, 0.0, 1.0)
        shade += 0.07 * wire
        centre = [0.36, 0.54, 0.72] if spec.shape == 'surgical' else [0.45, 0.7]
        side_mid = 0.5 * (lay.top_s + lay.bot_s)
        spread = np.clip(1.0 - t2, 0.0, 1.0)
        for c in centre:
            at_mid = lay.top_c + c * height
            at_side = side_mid + 0.55 * (at_mid - side_mid)
            d = v - (at_side + (at_mid - at_side) * spread)
            width = max(0.55, 0.8 * px)
            shade -= 0.15 * np.exp(-(d / width) ** 2)
            shade += 0.05 * np.exp(-((d + 2.2) / 1.6) ** 2)
    elif spec.shape == 'cloth':
        shade -= 0.22 * np.exp(-(u / max(0.6, 0.7 * px)) ** 2)  # centre seam
        shade += 0.05 * np.sign(u) * spec.shade_side
        shade -= 0.08 * np.exp(-top / 1.5)
    else:  # n95: a cone along the seam, a stitched rim and a nose clip
        shade += 0.08 - 0.18 * np.abs(t)
        shade -= 0.16 * np.exp(-(u / max(0.55, 0.7 * px)) ** 2)
        shade += 0.06 * np.exp(-((np.abs(u) - 1.6) / 1.2) ** 2)
        vc, hv = 0.5 * (lay.top_c + lay.bot_c), 0.5 * height
        r = np.sqrt(t2 * 1.02 + ((v - vc) / hv) ** 2)
        shade -= 0.12 * np.clip((r - 0.84) / 0.08, 0.0, 1.0)
        clip_ = np.exp(-((top - 2.5) / 1.1) ** 2) * np.clip(1.0 - (t / 0.22) ** 2, 0.0, 1.0)
        shade += 0.12 * clip_
    return shade


_LIGHT_GRID = 6


@functools.lru_cache(maxsize=1)
def _light_design() -> np.ndarray:
    """``(1, x, y)`` at the centres of a ``_LIGHT_GRID``-square grid over [-1, 1]^2."""
    xs, ys = np.meshgrid(np.linspace(-1.0, 1.0, _LIGHT_GRID), np.linspace(-1.0, 1.0, _LIGHT_GRID))
    return np.stack([np.ones(xs.size), xs.ravel(), ys.ravel()], 1)


def _lighting(gray: np.ndarray, alpha: np.ndarray) -> Tuple[float, float, float]:
    """Fit ``L = a (1 + bx x + by y)`` to the luminance under the mask (x, y in [-1, 1]).

    A weighted least-squares plane over a coarse grid of the region's luminance
    (weights: the mask's coverage).

    Returns:
        tuple: ``(a, bx, by)``, the face's brightness there and its light gradient.
    """
    n = _LIGHT_GRID
    small = cv2.resize(gray, (n, n), interpolation=cv2.INTER_AREA).ravel().astype(np.float64)
    weight = cv2.resize(alpha, (n, n), interpolation=cv2.INTER_AREA).ravel() * (1.0 / 255.0)
    design = _light_design()
    wd = design * weight[:, None]
    normal = design.T @ wd
    if weight.sum() < 1.0 or abs(np.linalg.det(normal)) < 1e-6:
        return float(gray.mean()) + 1.0, 0.0, 0.0
    coef = np.linalg.solve(normal, wd.T @ small)
    a = max(float(coef[0]), 8.0)
    # Facial features (lips, nostrils) bias the fit: keep only a moderate gradient.
    lim = 0.45
    return (a, min(max(float(coef[1]) / a, -lim), lim), min(max(float(coef[2]) / a, -lim), lim))


def _white_point(img: np.ndarray) -> float:
    """The exposure's white reference: the 90th percentile of a coarse ``max(B, G, R)``.

    The brightest channel, not the luminance, so saturated colours count as bright.
    """
    small = cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA).max(axis=2).ravel()
    return float(np.partition(small, 230)[230])


def _exposure(img: np.ndarray, face_light: float) -> float:
    """How bright the mask's colour appears, 1 = the nominal palette colour.

    The face's own brightness under the mask mixes illumination with skin tone,
    the image's white point mixes it with the background; weighting the white
    point more keeps dark skin from greying a white mask while a dim image
    still dims it.
    """
    ratio = (face_light / 120.0) ** 0.3 * (_white_point(img) / 215.0) ** 0.7
    return min(max(ratio, 0.25), 1.0)


def draw_mask(img: np.ndarray, spec: MaskSpec,
              landmarks: Optional[np.ndarray] = None) -> np.ndarray:
    """Draw the mask ``spec`` on a copy of a face image.

    Args:
        img (np.ndarray): ``H x W x 3`` uint8 BGR aligned face.
        spec (MaskSpec): The mask.
        landmarks (np.ndarray, optional): 5x2 ``(x, y)`` landmarks in ``img``
            pixels (template order); default: the canonical template scaled to
            the image.

    Returns:
        np.ndarray: A new uint8 image; pixels the mask does not reach are
        bit-identical to ``img``.
    """
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'SyntheticMask needs an HxWx3 uint8 image, got {img.shape} {img.dtype}')
    h, w = img.shape[:2]
    mat, tm, lm_c = _frame((h, w), landmarks)
    lay, cx = _layout(spec, lm_c)
    # Jitter in the canonical frame: rotate about the nose tip, then shift.
    th = np.deg2rad(spec.angle)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    pivot = lm_c[2]
    a_full = mat @ rot
    t_full = mat @ (pivot - rot @ pivot + (spec.shift_x, 0.0)) + tm
    det = float(a_full[0, 0] * a_full[1, 1] - a_full[0, 1] * a_full[1, 0])
    px = 1.0 / np.sqrt(abs(det))  # one image pixel in canonical units

    outline = lay.outline() + (cx, 0.0)
    pts = outline @ a_full.T + t_full
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    out = img.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    alpha = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fixed = np.round((pts - (x0, y0)) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(alpha, [fixed], 255, cv2.LINE_AA, _SHIFT)

    roi = img[y0:y1, x0:x1]
    light, gx, gy = _lighting(cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY), alpha)
    # Canonical coordinates of every ROI pixel (u relative to the mask's midline).
    inv = np.array([[a_full[1, 1], -a_full[0, 1]], [-a_full[1, 0], a_full[0, 0]]]) / det
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(t_full[0])
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(t_full[1])
    inv32 = inv.astype(np.float32)
    u = inv32[0, 0] * xs + inv32[0, 1] * ys - np.float32(cx)
    v = inv32[1, 0] * xs + inv32[1, 1] * ys

    shade = _relief(spec, lay, u, v, px)
    gain = _exposure(img, light)
    light_x = np.float32(gain) + np.float32(gain * gx) * _ramp(x1 - x0)[None, :]
    shade *= light_x + np.float32(gain * gy) * _ramp(y1 - y0)[:, None]

    color = np.asarray(spec.color, np.float32)
    if spec.texture is not None:
        cover = _texture(spec, u, v, px)[..., None]
        layer = color + cover * (np.asarray(spec.texture_color, np.float32) - color)
    else:
        layer = np.broadcast_to(color, (*shade.shape, 3))
    layer = layer * shade[..., None]
    g = _GEOMETRY[spec.shape]
    bank, n = _grain_bank(), shade.size
    if n < bank.size:
        start = int(spec.grain_offset * (bank.size - n))
        grain = bank[start:start + n].reshape(shade.shape)
    else:
        grain = np.random.default_rng(int(spec.grain_offset * 2 ** 32)).standard_normal(
            shade.shape, dtype=np.float32)
    layer += (np.float32(g.grain * gain) * grain)[..., None]

    a = alpha.astype(np.float32)[..., None] * np.float32(1.0 / 255.0)
    base = roi.astype(np.float32)
    base += a * (layer - base)  # alpha 0 leaves the value exact
    np.clip(base, 0.0, 255.0, out=base)
    out[y0:y1, x0:x1] = (base + 0.5).astype(np.uint8)
    _draw_straps(out, spec, lay, cx, a_full, t_full, gain, 1.0 / px)
    return out


def _draw_straps(img: np.ndarray, spec: MaskSpec, lay: _Layout, cx: float,
                 a_full: np.ndarray, t_full: np.ndarray, gain: float, k: float) -> None:
    """Ear loops (or the N95's head straps), outside the face's eye region.

    ``k`` is the image pixels per canonical pixel.
    """
    curves = []
    for s in (-1.0, 1.0):
        if spec.shape == 'n95':
            # Head straps: from the cup's sides back over the cheeks, out of sight at the
            # face's edge.
            curves.append(_bezier((s * lay.hw_top * 0.93, lay.top_s + 5.0),
                                  (s * (lay.hw_top + 4.0), lay.top_s + 1.0),
                                  (s * (lay.hw_top + 7.0), lay.top_s - 3.0), 5))
            curves.append(_bezier((s * lay.hw_bot * 1.03, lay.bot_s - 5.0),
                                  (s * (lay.hw_top + 2.0), lay.bot_s - 8.0),
                                  (s * (lay.hw_top + 5.0), lay.bot_s - 14.0), 5))
        else:
            ear = (s * (lay.hw_top + 2.5), lay.top_s - 3.5)
            curves.append(_bezier((s * (lay.hw_bot + 0.5), lay.bot_s - 3.0),
                                  (s * (lay.hw_top + 7.0), 0.5 * (lay.top_s + lay.bot_s)),
                                  ear, 8))
            curves.append(_bezier((s * (lay.hw_top - 0.5), lay.top_s + 2.0),
                                  (s * (lay.hw_top + 2.0), lay.top_s - 1.0), ear, 4))
    if spec.shape == 'surgical':
        color = np.array([232.0, 234.0, 234.0])
    else:
        color = np.asarray(spec.color) * 0.85
    color = tuple((np.clip(color * gain * 0.9, 0, 255)).tolist())
    thickness = max(1, int(round(0.9 * k)))
    polys = [np.round(((c + (cx, 0.0)) @ a_full.T + t_full) * (1 << _SHIFT)).astype(np.int32)
             for c in curves]
    cv2.polylines(img, polys, False, color, thickness, cv2.LINE_AA, _SHIFT)
