"""Decide whether two face images show the same person.

Prints the cosine similarity of the two embeddings (flip-fused when the config's model uses
flip test) and the decision ``score >= threshold``. The threshold is given (``--threshold``)
or calibrated for a target false accept rate on a labelled insightface ``.bin`` pair set
(``--calibrate PAIRS.bin --far 1e-3``: the lowest threshold whose FAR on those pairs is at
most the target, see ``coupleface/apis/calibration.py``).

Faces are aligned images unless their 5 landmarks are given (``--landmarks1`` /
``--landmarks2``: ``x1 y1 ... x5 y5``).

Examples:
    python tools/verify.py CONFIG student.pth a.jpg b.jpg --threshold 0.35
    python tools/verify.py CONFIG student.pth a.jpg b.jpg --calibrate data/lfw.bin --far 1e-3
    python tools/verify.py w600k_r50.onnx a.jpg b.jpg --threshold 0.3   # no config needed
"""
from __future__ import annotations

import argparse
import sys
from typing import Dict, Optional, Sequence

import numpy as np


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from coupleface.utils.cli import add_device_argument, add_flip_arguments, add_model_arguments

    parser = argparse.ArgumentParser(description='Verify whether two faces are the same person')
    add_model_arguments(parser)
    parser.add_argument('img1', help='first face image')
    parser.add_argument('img2', help='second face image')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--threshold', type=float, help='cosine similarity threshold')
    source.add_argument('--calibrate', metavar='PAIRS.bin',
                        help='insightface .bin pair set to calibrate the threshold on')
    parser.add_argument('--far', type=float, default=1e-3,
                        help='target false accept rate of --calibrate (default %(default)g)')
    parser.add_argument('--landmarks1', type=float, nargs='+', metavar='XY',
                        help='5 landmarks of img1: x1 y1 ... x5 y5')
    parser.add_argument('--landmarks2', type=float, nargs='+', metavar='XY',
                        help='5 landmarks of img2: x1 y1 ... x5 y5')
    add_device_argument(parser)
    parser.add_argument('--batch-size', type=int, default=64,
                        help='images per forward pass while calibrating')
    add_flip_arguments(parser)
    return parser.parse_intermixed_args(argv)


def _points(values: Optional[Sequence[float]]) -> Optional[np.ndarray]:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float32)
    return arr.reshape(5, 2) if arr.size == 10 else arr  # a wrong count is reported by shape


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from coupleface.apis.face_embedder import FaceEmbedder

    embedder = FaceEmbedder(args.config, args.checkpoint, device=args.device,
                            flip_test=args.flip_test, batch_size=args.batch_size,
                            network=args.network, input_size=args.input_size)
    lm1, lm2 = _points(args.landmarks1), _points(args.landmarks2)
    # Read both faces before any calibration work, so a bad image fails fast.
    for image, marks in ((args.img1, lm1), (args.img2, lm2)):
        embedder.prepare_image(image, marks, source=image)
    if args.calibrate is not None:
        cal = embedder.calibrate(args.calibrate, far=args.far)
        print(f'threshold: {cal["threshold"]:.6f} (calibrated on {args.calibrate}: '
              f'{cal["num_pairs"]} pairs, target FAR {cal["far"]:g}, measured FAR '
              f'{cal["far_actual"]:.3g}, TAR {cal["tar"]:.4f})')
    else:
        print(f'threshold: {args.threshold:.6f} (given)')
    result = embedder.verify(args.img1, args.img2, threshold=args.threshold,
                             landmarks1=lm1, landmarks2=lm2)
    print(f'score: {result["score"]:.6f}')
    print(f'decision: {"same person" if result["same"] else "different persons"}')
    return result


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
