"""draw_mask: a pure function of image, spec and landmarks; outside the mask nothing changes."""
import numpy as np
import pytest

from coupleface.datasets.synthfaces.generator import render_identity_image
from coupleface.datasets.transforms.mask_render import (
    MASK_SHAPES,
    MASK_TEXTURES,
    MaskSpec,
    draw_mask,
    texture_probability,
)
from coupleface.utils.face_template import face_template


@pytest.mark.parametrize('shape', MASK_SHAPES)
def test_draw_is_deterministic_and_local(shape):
    img = render_identity_image(0, 0, 0, 112, dict(nuisance=False))
    spec = MaskSpec(shape=shape, color=(226.0, 196.0, 140.0), texture=MASK_TEXTURES[0],
                    texture_color=(40.0, 40.0, 40.0), grain_offset=0.3)
    out = draw_mask(img, spec)
    np.testing.assert_array_equal(out, draw_mask(img, spec))
    np.testing.assert_array_equal(out, draw_mask(img, spec, face_template(112)))
    changed = np.abs(out.astype(int) - img).max(-1) > 0
    assert changed[95:100, 50:62].all()  # mouth and chin covered
    assert not changed[:40].any()  # forehead and eyes untouched
    assert out is not img and out.dtype == np.uint8


def test_texture_probability_and_bad_input():
    probs = {s: texture_probability(s) for s in MASK_SHAPES}
    assert max(probs, key=probs.get) == 'cloth' and all(0 < p < 1 for p in probs.values())
    spec = MaskSpec(shape='surgical', color=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        draw_mask(np.zeros((8, 8), np.uint8), spec)
    with pytest.raises(ValueError, match='landmarks must be 5x2'):
        draw_mask(np.zeros((8, 8, 3), np.uint8), spec, np.zeros((4, 2)))
