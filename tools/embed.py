"""Embed every face image of a folder with a trained recognizer or distilled student.

The model is a config + checkpoint, an ``.onnx`` file or a bare arcface_torch
``backbone.pth`` (``--network``, or read from the weights), see
:mod:`coupleface.apis.model_source`. Writes ``OUT_PREFIX.npy`` (``N x D`` float32,
L2-normalised unless ``--raw``; with the model's flip test, of the sum of image and mirror
embeddings) and ``OUT_PREFIX.txt`` (the image paths relative to ``IMG_DIR``, ``/``-separated,
one per row, in the order of the rows).
Images are found recursively (jpg, jpeg, png, bmp, webp, tif, tiff) and sorted by path.

Images are aligned faces (any size: resized like the test pipeline) unless ``--landmarks``
gives their 5 points: a text file with one line per unaligned image, its relative path then
the 10 numbers ``x1 y1 ... x5 y5`` (left eye, right eye, nose, left and right mouth corners;
the layout of insightface's IJB ``*_5pts*.txt`` files); those images are aligned onto the
canonical template first. Lines starting with ``#`` are comments.

Examples:
    python tools/embed.py configs/arcface/mobilefacenet_1xb128_synthfaces-56px.py \\
        work_dirs/mbf/epoch_8.pth data/faces --out work_dirs/faces_emb
    python tools/embed.py CONFIG student.pth photos/ --out emb --landmarks photos_5pts.txt
    python tools/embed.py w600k_r50.onnx data/faces --out emb      # insightface ONNX model
    python tools/embed.py backbone.pth data/faces --out emb --network r50  # arcface_torch
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from coupleface.utils.cli import (
        add_embedding_arguments,
        add_flip_arguments,
        add_model_arguments,
        add_progress_argument,
        check_batch_size,
    )

    parser = argparse.ArgumentParser(description='Embed the face images of a folder')
    add_model_arguments(parser)
    parser.add_argument('img_dir', help='folder of face images (searched recursively)')
    parser.add_argument('--out', required=True, help='output prefix: writes OUT.npy, OUT.txt')
    parser.add_argument('--landmarks', help='text file: "relative/path x1 y1 ... x5 y5" per '
                        'unaligned image')
    add_embedding_arguments(parser, batch_size=64, progress=False)
    add_flip_arguments(parser)
    parser.add_argument('--raw', action='store_true', help='write raw (unnormalised) embeddings')
    add_progress_argument(parser)
    args = parser.parse_intermixed_args(argv)
    check_batch_size(parser, args)
    return args


def list_images(img_dir: str) -> List[str]:
    """Relative ``/``-separated paths of the images under ``img_dir``, sorted."""
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'image folder not found: {img_dir}')
    found = []
    seen = set()  # real paths of visited folders: symlinked folders are followed, once
    for root, dirs, files in os.walk(img_dir, followlinks=True):
        real = osp.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in files:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                rel = osp.relpath(osp.join(root, name), img_dir)
                if '\n' in rel or '\r' in rel:
                    raise ValueError(f'image path with a line break cannot be indexed: {rel!r}')
                found.append(rel.replace(os.sep, '/'))
    if not found:
        raise ValueError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) found in {img_dir}')
    return sorted(found)


def read_landmarks(path: str) -> Dict[str, np.ndarray]:
    """``{relative path: 5x2 landmarks}`` from a ``path x1 y1 ... x5 y5`` text file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'landmarks file not found: {path}')
    out: Dict[str, np.ndarray] = {}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith('#'):
                continue
            tokens = text.split()
            numbers: List[float] = []
            while tokens:  # trailing numeric tokens; the rest is the path (may hold spaces)
                try:
                    numbers.insert(0, float(tokens[-1]))
                except ValueError:
                    break
                tokens.pop()
            if not tokens:
                raise ValueError(f'{path}:{lineno}: no image path before the numbers')
            rel = ' '.join(tokens).replace('\\', '/')
            if len(numbers) != 10:
                raise ValueError(f'{path}:{lineno}: landmarks of {rel} have shape '
                                 f'({len(numbers)},); expected 10 numbers x1 y1 ... x5 y5 '
                                 '(5x2 points)')
            out[rel] = np.asarray(numbers, dtype=np.float32).reshape(5, 2)
    return out


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from coupleface.apis.face_embedder import FaceEmbedder

    images = list_images(args.img_dir)
    landmarks = read_landmarks(args.landmarks) if args.landmarks else {}
    unknown = sorted(set(landmarks) - set(images))
    if unknown:
        raise ValueError(f'{args.landmarks} has landmarks for {len(unknown)} images not in '
                         f'{args.img_dir}: {", ".join(unknown[:5])}')
    embedder = FaceEmbedder(args.config, args.checkpoint, device=args.device,
                            flip_test=args.flip_test, batch_size=args.batch_size,
                            network=args.network, input_size=args.input_size)
    progress = None
    if not args.no_progress:
        from tqdm import tqdm
        progress = tqdm(total=len(images), unit='img', desc='embed', file=sys.stderr)
    chunks = []
    try:
        for start in range(0, len(images), args.batch_size):
            batch = images[start:start + args.batch_size]
            chunks.append(embedder.embed([osp.join(args.img_dir, rel) for rel in batch],
                                         landmarks=[landmarks.get(rel) for rel in batch],
                                         raw=args.raw))
            if progress is not None:
                progress.update(len(batch))
    finally:
        if progress is not None:
            progress.close()
    embeddings = np.concatenate(chunks).astype(np.float32)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    np.save(args.out + '.npy', embeddings)
    with open(args.out + '.txt', 'w', encoding='utf-8') as f:
        f.write(''.join(rel + '\n' for rel in images))
    print(f'embedded {len(images)} images ({len(landmarks)} aligned from landmarks) -> '
          f'{args.out}.npy {embeddings.shape}, {args.out}.txt')
    return dict(embeddings=embeddings, paths=images)


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
