"""Pack an image folder (one sub-folder per identity) into insightface RecordIO.

Writes ``OUT_PREFIX.rec``, ``OUT_PREFIX.idx`` and ``property`` (``C,H,W``) next
to them, in insightface's layout (header record at key 0, images 1..N,
identity ranges N+1..N+C; see ``coupleface/datasets/mx_face_dataset.py``),
readable by ``MXFaceDataset`` and by insightface/mxnet. Sub-folder names,
sorted, give the labels 0..C-1. JPEG files are stored byte for byte; other
formats are re-encoded as JPEG (``--quality``) unless ``--encoding keep``
stores every file as it is (e.g. PNG for a lossless set). Every image is
decoded once to check it and its size.

Examples:
    python tools/dataset_converters/images2rec.py data/my_faces data/my_faces_rec/train
    python tools/dataset_converters/images2rec.py imgs out/train --workers 4 --encoding keep
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from multiprocessing import Pool
from typing import List, Optional, Sequence, Tuple

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Image folder (one sub-folder per identity) -> insightface .rec/.idx')
    parser.add_argument('src_dir', help='folder with one sub-folder of images per identity')
    parser.add_argument('out_prefix', help='output path without extension, e.g. out/train')
    parser.add_argument('--quality', type=int, default=95,
                        help='JPEG quality for images that are re-encoded (default 95)')
    parser.add_argument('--encoding', choices=['jpg', 'keep'], default='jpg',
                        help='jpg: store JPEG files as they are, re-encode others as JPEG; '
                             'keep: store every file as it is (default jpg)')
    parser.add_argument('--workers', type=int, default=1,
                        help='processes reading/checking images (default 1)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def list_image_folder(src_dir: str) -> Tuple[List[str], List[Tuple[int, str]]]:
    """Identity folder names (sorted) and ``(label, path)`` of every image, grouped by label."""
    if not osp.isdir(src_dir):
        raise FileNotFoundError(f'image folder not found: {src_dir}')
    classes = sorted(d for d in os.listdir(src_dir) if osp.isdir(osp.join(src_dir, d)))
    if not classes:
        raise ValueError(f'{src_dir}: no identity sub-folders')
    items = []
    for label, name in enumerate(classes):
        folder = osp.join(src_dir, name)
        for fname in sorted(os.listdir(folder)):
            if fname.lower().endswith(IMG_EXTENSIONS):
                items.append((label, osp.join(folder, fname)))
    if not items:
        raise ValueError(f'{src_dir}: no images ({", ".join(IMG_EXTENSIONS)}) in its '
                         'sub-folders')
    return classes, items


def load_image_bytes(job: Tuple[int, str, str, int]) -> Tuple[int, bytes, Tuple[int, int], str]:
    """Read one file, check that it decodes, return ``(label, bytes to store, (H, W), path)``."""
    import cv2
    import numpy as np

    label, path, encoding, quality = job
    with open(path, 'rb') as f:
        data = f.read()
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'{path}: not a decodable image')
    if encoding == 'jpg' and data[:3] != b'\xff\xd8\xff':
        ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError(f'{path}: JPEG encoding failed')
        data = buf.tobytes()
    return label, data, img.shape[:2], path


def convert(src_dir: str, out_prefix: str, quality: int = 95, encoding: str = 'jpg',
            workers: int = 1, progress: bool = True) -> dict:
    """Convert ``src_dir`` to ``out_prefix.rec/.idx`` + ``property``; return the summary."""
    from coupleface.datasets.mx_record_writer import write_insightface_rec

    classes, items = list_image_folder(src_dir)
    jobs = [(label, path, encoding, quality) for label, path in items]
    pool = Pool(workers) if workers > 1 else None
    try:
        loaded = pool.imap(load_image_bytes, jobs, chunksize=32) if pool else \
            map(load_image_bytes, jobs)
        first_size = []

        def samples():
            for label, data, size, path in loaded:
                if not first_size:
                    first_size.append((size, path))
                elif size != first_size[0][0]:
                    raise ValueError(f'{path}: image is {size[0]}x{size[1]} but '
                                     f'{first_size[0][1]} is {first_size[0][0][0]}x'
                                     f'{first_size[0][0][1]}; aligned faces must share a size')
                yield label, data

        wrap = None
        if progress:
            from tqdm import tqdm

            def wrap(it):
                return tqdm(it, total=len(jobs), unit='img', desc='images2rec')
        info = write_insightface_rec(out_prefix, samples(), num_classes=len(classes),
                                     progress=wrap)
    finally:
        if pool is not None:
            pool.terminate()
    return info


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    info = convert(args.src_dir, args.out_prefix, args.quality, args.encoding,
                   max(1, args.workers), progress=not args.no_progress)
    h, w = info['image_size']
    print(f"wrote {info['num_images']} images of {info['num_classes']} identities ({h}x{w}) "
          f"to {info['rec_path']}, {info['idx_path']} and {info['property_path']}")


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
