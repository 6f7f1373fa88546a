"""Render a PNG grid of SyntheticMask examples on SynthFaces faces, to look at.

Rows are the mask shapes (surgical, cloth, n95, half). The first column is the
clean face of identity 0; every other column is one identity (0, 1, 2, ...)
with one colour of the palette (light blue, white, black, grey, pastel) and
then one printed texture per column (stripes, dots, diamonds, plaid), so a
column compares shapes on one face and a row compares colours and faces. The
masks are placed from each image's landmarks, as for unaligned data after
alignment.

Examples:
    python tools/analysis_tools/visualize_masks.py --out masks.png --size 112
    python tools/analysis_tools/visualize_masks.py --out masks64.png --size 64 --zoom 2
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import os.path as osp
import sys
from typing import Optional, Sequence

import cv2
import numpy as np


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from coupleface.utils.cli import add_synthfaces_arguments

    parser = argparse.ArgumentParser(description='Grid of synthetic masks on SynthFaces faces')
    parser.add_argument('--out', default='masks.png', help='output PNG path')
    add_synthfaces_arguments(parser, difficulty=0.3)
    parser.add_argument('--image-id', type=int, default=0, help='image of each identity')
    parser.add_argument('--zoom', type=int, default=1,
                        help='integer upscaling of the grid (nearest neighbour)')
    parser.add_argument('--gap', type=int, default=2, help='pixels between tiles')
    return parser.parse_args(argv)


def render_grid(size: int = 112, seed: int = 0, difficulty: float = 0.3, image_id: int = 0,
                gap: int = 2) -> np.ndarray:
    """The grid image (uint8 BGR).

    Returns:
        np.ndarray: ``R*size + (R+1)*gap`` by ``C*size + (C+1)*gap`` pixels, with
        R = number of shapes and C = 1 + colours + textures.
    """
    from coupleface.datasets.synthfaces.generator import render_identity_image
    from coupleface.datasets.transforms.mask_render import MASK_SHAPES, MASK_TEXTURES, draw_mask
    from coupleface.datasets.transforms.masking import MASK_COLORS, SyntheticMask
    from coupleface.utils.seeding import sample_rng

    cfg = dict(difficulty=difficulty, occlusion_prob=0.0)
    colors = list(MASK_COLORS)
    columns = [(c, None) for c in colors] + [
        (colors[i % len(colors)], t) for i, t in enumerate(MASK_TEXTURES)]
    faces = [render_identity_image(i, image_id, seed, size, cfg, return_landmarks=True)
             for i in range(len(columns))]
    rows, cols = len(MASK_SHAPES), len(columns) + 1
    grid = np.full((rows * size + (rows + 1) * gap, cols * size + (cols + 1) * gap, 3), 255,
                   np.uint8)

    def put(r: int, c: int, tile: np.ndarray) -> None:
        y, x = gap + r * (size + gap), gap + c * (size + gap)
        grid[y:y + size, x:x + size] = tile

    for r, shape in enumerate(MASK_SHAPES):
        put(r, 0, faces[0][0])
        for c, (color, texture) in enumerate(columns):
            transform = SyntheticMask(shapes=(shape,), colors=(color,), textures=False)
            _, spec = transform.sample_spec(sample_rng({'sample_idx': c * 7 + r}, 'viz'))
            if texture is not None:
                base = np.asarray(spec.color)
                print_color = base * 0.5 if base.mean() > 110 else base + (255 - base) * 0.65
                spec = dataclasses.replace(spec, texture=texture,
                                           texture_color=tuple(print_color.tolist()))
            img, landmarks = faces[c]
            put(r, c + 1, draw_mask(img, spec, landmarks))
    return grid


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.size < 16:
        raise ValueError(f'--size must be at least 16, got {args.size}')
    if args.zoom < 1:
        raise ValueError(f'--zoom must be >= 1, got {args.zoom}')
    grid = render_grid(args.size, args.seed, args.difficulty, args.image_id, args.gap)
    if args.zoom > 1:
        grid = cv2.resize(grid, None, fx=args.zoom, fy=args.zoom,
                          interpolation=cv2.INTER_NEAREST)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    if not cv2.imwrite(args.out, grid):
        raise ValueError(f'could not write {args.out} (need a .png path)')
    print(f'wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})')


if __name__ == '__main__':
    sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
