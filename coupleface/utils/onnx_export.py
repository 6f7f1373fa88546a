"""ONNX export of a recognizer's embedding graph, as insightface's deployment tools expect it.

One input ``N x 3 x H x W`` float32 (RGB, normalised as ``(x - 127.5) / 127.5`` outside the
graph), a dynamic batch dimension, one output: the raw embedding ``N x D`` (no L2
normalisation, no flip fusion). ``tools/deployment/pytorch2onnx.py`` (the CLI, with the
onnxruntime parity check) and the ``students`` section of ``tools/analysis_tools/
benchmark.py`` export through :func:`export_onnx`. The file records its normalisation
(``metadata_props`` ``input_mean``/``input_std``), which
:class:`coupleface.utils.onnx_runtime.OnnxEmbeddingSession` reads back.
:func:`insightface_router_problem` says when insightface's ``model_zoo`` router will not
take the file for a recognizer.
"""
from __future__ import annotations

import os
import os.path as osp
import warnings
from typing import Dict, Optional

import torch
from torch import nn

#: The normalisation every insightface recognition model expects (RGB).
INPUT_MEAN = 127.5
INPUT_STD = 127.5
MIN_OPSET = 17


def insightface_router_problem(input_size: int) -> Optional[str]:
    """Why insightface's model router would not load an export of this size, or None.

    ``insightface.model_zoo.get_model`` routes an ONNX file by its input shape: a square input
    of side >= 112 and divisible by 16 becomes ``ArcFaceONNX`` (a recognizer), except 192 px
    (the landmark model) and 96 px (the attribute model); anything else is not loaded.

    Args:
        input_size: The exported square input side.

    Returns:
        str | None: The reason, for a warning.
    """
    if input_size == 192:
        return '192 px inputs are routed to its Landmark model, not ArcFaceONNX'
    if input_size < 112 or input_size % 16:
        return (f'it routes only inputs of side >= 112 and divisible by 16 to ArcFaceONNX; '
                f'this export takes {input_size} px')
    return None


class EmbeddingGraph(nn.Module):
    """What is exported: normalised RGB ``N x 3 x H x W`` -> raw embedding ``N x D``.

    Only the recognizer's backbone (+ neck): no data preprocessor, no flip fusion, no head.
    """

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.recognizer.extract_feat(x)


def export_onnx(model: nn.Module, out: str, input_size: int, opset: int = MIN_OPSET,
                metadata: Optional[Dict[str, str]] = None) -> str:
    """Trace ``model.extract_feat`` at batch 1 and write an ONNX file with a dynamic batch.

    Args:
        model: A ``FaceRecognizer`` (put in eval mode and fp32 here).
        out: Output ``.onnx`` path (its folder is created).
        input_size: Square input side.
        opset: ONNX opset version (>= 17).
        metadata: Extra ``metadata_props`` of the ONNX model.

    Returns:
        str: ``out``.
    """
    import onnx

    if opset < MIN_OPSET:
        raise ValueError(f'opset must be >= {MIN_OPSET}, got {opset}')
    graph = EmbeddingGraph(model.float().cpu().eval()).eval()
    dummy = torch.zeros(1, 3, input_size, input_size)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # "legacy TorchScript exporter"
        # shape checks in the backbones' forward are static for a traced graph
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            graph, (dummy, ), out, dynamo=False, export_params=True, opset_version=opset,
            do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL,
            input_names=['input'], output_names=['embedding'],
            dynamic_axes={'input': {0: 'batch'}, 'embedding': {0: 'batch'}})
    proto = onnx.load(out)
    props = dict(exporter='torch.onnx.export (TorchScript, dynamo=False)',
                 input_size=str(input_size), input_layout='NCHW float32 RGB',
                 input_normalisation='(x - 127.5) / 127.5', input_mean=str(INPUT_MEAN),
                 input_std=str(INPUT_STD), output='raw embedding (not '
                 'L2-normalised, no flip fusion)', **(metadata or {}))
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    proto.producer_name = 'coupleface'
    onnx.checker.check_model(proto)
    onnx.save(proto, out)
    return out
