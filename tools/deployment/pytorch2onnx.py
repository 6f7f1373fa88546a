"""Export a coupleface recognizer, or the student of a distiller checkpoint, to ONNX.

The graph is what insightface's deployment tools (``onnx_helper.py``, ``ArcFaceONNX``) expect
of a recognition model: one input ``N x 3 x H x W`` float32 (RGB, already normalised as
``(x - 127.5) / 127.5`` outside the graph; ``H = W`` = the config's test-pipeline size, 112
for standard models), a dynamic batch dimension, and one output, the raw embedding
``N x D`` (no L2 normalisation and no flip fusion inside the graph: insightface's tools
normalise themselves). Weights are fp32 and the model is exported in eval mode.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``):
the dynamo exporter needs ``onnxscript``, which coupleface does not depend on. With
``--check`` the file is compared with PyTorch under onnxruntime (CPUExecutionProvider) on
random inputs and on SynthFaces faces at each ``--batch`` size (the graph is traced at
batch 1, so a batch of 8 proves the batch dimension is really dynamic); the largest absolute
difference must stay below ``--tolerance``.

Examples:
    python tools/deployment/pytorch2onnx.py \\
        configs/arcface/mobilefacenet_1xb128_synthfaces-56px.py work_dirs/mbf/epoch_8.pth \\
        --out mbf.onnx --check
    python tools/deployment/pytorch2onnx.py configs/coupleface/xxx.py distilled.pth \\
        --out student.onnx --opset 17 --batch 1,8,32 --check
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from coupleface.utils.onnx_export import (
    INPUT_MEAN,
    INPUT_STD,
    MIN_OPSET,
    EmbeddingGraph,
    export_onnx,
    insightface_router_problem,
)
from coupleface.utils.onnx_runtime import onnx_session


def parse_batches(text: str) -> List[int]:
    """``'1,8'`` -> ``[1, 8]`` (positive ints)."""
    try:
        batches = [int(b) for b in text.split(',') if b.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'--batch must be comma-separated ints, got {text!r}')
    if not batches or min(batches) < 1:
        raise argparse.ArgumentTypeError(f'--batch needs positive sizes, got {text!r}')
    return batches


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from coupleface.utils.cli import add_model_arguments

    parser = argparse.ArgumentParser(
        description='Export a face recognizer (or a distilled student) to ONNX')
    add_model_arguments(parser)
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--opset', type=int, default=MIN_OPSET,
                        help=f'ONNX opset (>= {MIN_OPSET}); default %(default)s')
    parser.add_argument('--batch', type=parse_batches, default=[1, 8],
                        help='batch sizes checked with onnxruntime; default 1,8')
    parser.add_argument('--check', action='store_true',
                        help='compare onnxruntime with PyTorch (random and SynthFaces inputs)')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='max abs difference allowed by --check; default %(default)s')
    parser.add_argument('--seed', type=int, default=0, help='seed of the check inputs')
    parser.add_argument('--shape', type=int, default=None,
                        help='exported input side (default: the config\'s test size, or '
                        '--input-size / 112 without a config); alias of --input-size')
    args = parser.parse_intermixed_args(argv)
    if args.opset < MIN_OPSET:
        parser.error(f'--opset must be >= {MIN_OPSET}, got {args.opset}')
    return args


def preprocess_bgr(images: Sequence[np.ndarray]) -> np.ndarray:
    """The normalisation done outside the graph: BGR uint8 -> RGB ``(x - 127.5) / 127.5``.

    Args:
        images: ``H x W x 3`` uint8 BGR faces of the model's input size.

    Returns:
        np.ndarray: ``N x 3 x H x W`` float32.
    """
    batch = np.stack([img[..., ::-1] for img in images]).astype(np.float32)
    return np.ascontiguousarray(((batch - INPUT_MEAN) / INPUT_STD).transpose(0, 3, 1, 2))


def _check_preprocessor(model: nn.Module) -> Optional[str]:
    """A warning when the model was trained with another normalisation than insightface's."""
    pre = getattr(model, 'data_preprocessor', None)
    mean = getattr(pre, 'mean', None)
    std = getattr(pre, 'std', None)
    rgb = getattr(pre, '_channel_conversion', True)
    if mean is None or std is None:
        return None
    if not (torch.allclose(mean.float(), torch.tensor(INPUT_MEAN)) and
            torch.allclose(std.float(), torch.tensor(INPUT_STD)) and rgb):
        return (f'warning: the config normalises with mean={mean.flatten().tolist()}, '
                f'std={std.flatten().tolist()}, bgr_to_rgb={rgb}; feed the ONNX model that, '
                'not insightface\'s RGB (x - 127.5) / 127.5')
    return None


def describe_onnx(path: str) -> Dict[str, object]:
    """Opset, input/output names and shapes (symbolic dims as names) of an ONNX file."""
    import onnx

    proto = onnx.load(path)

    def dims(value_info) -> List[object]:
        return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]

    init_types = {init.data_type for init in proto.graph.initializer}
    return dict(
        opset=max(op.version for op in proto.opset_import if op.domain in ('', 'ai.onnx')),
        inputs=[(i.name, dims(i)) for i in proto.graph.input],
        outputs=[(o.name, dims(o)) for o in proto.graph.output],
        initializer_types=sorted(onnx.TensorProto.DataType.Name(t) for t in init_types),
        ops=sorted({node.op_type for node in proto.graph.node}))


def synthfaces_inputs(num: int, input_size: int, seed: int = 0) -> np.ndarray:
    """``num`` SynthFaces faces (two images per identity), preprocessed for the graph."""
    from coupleface.datasets.synthfaces.generator import render_identity_image

    faces = [render_identity_image(i // 2, i % 2, seed=seed, size=input_size)
             for i in range(num)]
    return preprocess_bgr(faces)


def check_onnx(model: nn.Module, path: str, input_size: int, batches: Sequence[int] = (1, 8),
               seed: int = 0) -> Dict[Tuple[str, int], float]:
    """Max abs difference of onnxruntime and PyTorch embeddings per input kind and batch.

    Args:
        model: The exported recognizer (eval mode).
        path: The ONNX file.
        input_size: Square input side.
        batches: Batch sizes to run.
        seed: Seed of the random inputs and of the SynthFaces world.

    Returns:
        dict: ``{('random' | 'synthfaces', batch): max_abs_diff}``.
    """
    session = onnx_session(path, feature='the ONNX parity check')
    input_name = session.get_inputs()[0].name
    rng = np.random.default_rng(seed)
    graph = EmbeddingGraph(model.float().cpu().eval()).eval()
    diffs: Dict[Tuple[str, int], float] = {}
    for batch in batches:
        inputs = dict(
            random=rng.uniform(-1, 1, (batch, 3, input_size, input_size)).astype(np.float32),
            synthfaces=synthfaces_inputs(batch, input_size, seed))
        for kind, x in inputs.items():
            with torch.no_grad():
                expected = graph(torch.from_numpy(x)).numpy()
            (got, ) = session.run(None, {input_name: x})
            if got.shape != expected.shape:
                raise ValueError(f'ONNX output shape {got.shape} differs from PyTorch\'s '
                                 f'{expected.shape} at batch {batch}')
            diffs[(kind, batch)] = float(np.max(np.abs(got - expected)))
    return diffs


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from coupleface.apis.model_source import is_onnx, load_embedding_model

    if is_onnx(args.checkpoint):
        raise ValueError(f'{args.checkpoint} is already an ONNX model')
    source = load_embedding_model(args.checkpoint, args.config, network=args.network,
                                  input_size=args.shape or args.input_size, device='cpu')
    model, info = source.model, source.info
    size = args.shape or source.input_size
    note = _check_preprocessor(model)
    if note:
        print(note)
    problem = insightface_router_problem(size)
    if problem:
        print(f'warning: insightface\'s model router (insightface.model_zoo.get_model) will '
              f'not load {args.out} as a recognizer: {problem}. Export with --shape 112 (a '
              'backbone sized for other inputs needs retraining at 112 px), or load the file '
              'with ArcFaceONNX / onnxruntime directly', file=sys.stderr)
    metadata = dict(backbone=type(model.backbone).__name__, checkpoint_kind=info['kind'],
                    source_checkpoint=osp.basename(args.checkpoint))
    if info.get('teacher'):
        metadata.update({f'distilled_{k}': str(v) for k, v in info['teacher'].items()})
    export_onnx(model, args.out, size, args.opset, metadata)
    desc = describe_onnx(args.out)
    print(f'exported {args.out} with the TorchScript exporter (torch.onnx.export, '
          f'dynamo=False), opset {desc["opset"]}')
    print(f'  input  {desc["inputs"][0][0]}: {desc["inputs"][0][1]} float32 RGB, '
          '(x - 127.5) / 127.5')
    print(f'  output {desc["outputs"][0][0]}: {desc["outputs"][0][1]} raw embedding')
    result: Dict[str, object] = dict(onnx=desc)
    if args.check:
        diffs = check_onnx(model, args.out, size, args.batch, args.seed)
        for (kind, batch), diff in diffs.items():
            print(f'  onnxruntime vs PyTorch, {kind:<10} batch {batch:>3}: max abs diff '
                  f'{diff:.3e}')
        worst = max(diffs.values())
        result['diffs'] = diffs
        if not worst < args.tolerance:
            raise ValueError(f'ONNX output differs from PyTorch by {worst:.3e} '
                             f'(>= tolerance {args.tolerance:g}); {args.out} is not faithful')
        print(f'check passed: max abs diff {worst:.3e} < {args.tolerance:g}')
    return result


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
