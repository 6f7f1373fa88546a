"""Run an ONNX face recognizer (insightface's released models, or our exports) on torch batches.

The model-source contract (docs/architecture.md §4 Images, Embeddings): the caller hands a
float ``N x 3 x H x W`` batch already normalised the coupleface way (RGB, ``(x - 127.5) /
127.5``, what ``FaceDataPreprocessor`` gives) and gets the raw ``N x D`` embedding back.
:class:`OnnxEmbeddingSession` converts that batch to the normalisation the graph expects:

* ``input_mean`` / ``input_std`` given by the caller win;
* else the graph's own record: our exports' ``metadata_props`` (``input_mean``,
  ``input_std``), or, as insightface's ``ArcFaceONNX`` decides, a ``Sub`` and a ``Mul`` among
  the first 8 nodes (normalisation inside the graph: it takes raw 0..255 RGB, mean 0, std 1);
* else insightface's default, ``(x - 127.5) / 127.5``: the batch goes in unchanged.

onnxruntime is the ``onnx`` extra (:func:`coupleface.utils.dependencies.require_extra`).
"""
from __future__ import annotations

import os
from typing import Any, List, Optional, Tuple, Union

import numpy as np
import torch

from .dependencies import require_extra

#: insightface's recognition normalisation (RGB), what coupleface's preprocessor computes.
DEFAULT_MEAN = 127.5
DEFAULT_STD = 127.5

__all__ = ['DEFAULT_MEAN', 'DEFAULT_STD', 'OnnxEmbeddingSession', 'graph_normalisation',
           'onnx_session']


def onnx_session(path: str, device: Union[str, torch.device] = 'cpu', feature: str = 'an ONNX '
                 'model') -> Any:
    """An onnxruntime ``InferenceSession`` (CUDA provider on a CUDA device when available).

    ``OMP_NUM_THREADS`` (a digit string) bounds the intra-op threads, so tests and shared
    machines stay on the cores they were given.

    Args:
        path: The ``.onnx`` file.
        device: Torch device the caller works on; ``cuda*`` asks for onnxruntime's CUDA
            provider (CPU when it is not installed).
        feature: What needs onnxruntime, for the missing-extra message.

    Returns:
        onnxruntime.InferenceSession: The session.
    """
    ort = require_extra('onnx', feature)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'ONNX model not found: {path}')
    options = ort.SessionOptions()
    threads = os.environ.get('OMP_NUM_THREADS')
    if threads and threads.isdigit():
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    providers = ['CPUExecutionProvider']
    if torch.device(device).type == 'cuda' and \
            'CUDAExecutionProvider' in ort.get_available_providers():
        providers.insert(0, 'CUDAExecutionProvider')
    return ort.InferenceSession(path, options, providers=providers)


def graph_normalisation(path: str) -> Optional[Tuple[float, float]]:
    """``(mean, std)`` the graph records or carries inside, ``None`` when it says nothing.

    Args:
        path: The ``.onnx`` file.

    Returns:
        tuple | None: From ``metadata_props`` ``input_mean``/``input_std``; ``(0.0, 1.0)`` when
        a ``Sub`` and a ``Mul`` (op or node name) are among the first 8 nodes (insightface's
        test); else None.
    """
    import onnx

    proto = onnx.load(path, load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    if 'input_mean' in props and 'input_std' in props:
        return float(props['input_mean']), float(props['input_std'])
    first = [(n.op_type, n.name.lstrip('/')) for n in proto.graph.node[:8]]
    has_sub = any(op == 'Sub' or name.startswith(('Sub', '_minus')) for op, name in first)
    has_mul = any(op == 'Mul' or name.startswith(('Mul', '_mul')) for op, name in first)
    return (0.0, 1.0) if has_sub and has_mul else None


def _fixed(dim: Any) -> Optional[int]:
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxEmbeddingSession:
    """Raw embeddings ``N x D`` of coupleface-normalised batches from an ONNX recognizer.

    Args:
        path: The ``.onnx`` file: one input ``N x 3 x H x W`` (``H``, ``W`` fixed or
            symbolic), one output ``N x D``.
        input_size: Square input side; required when the graph's ``H``/``W`` are symbolic,
            must equal them when they are fixed. Defaults to the graph's.
        input_mean: Mean the graph expects (of 0..255 RGB); None: the graph's record or 127.5.
        input_std: Std the graph expects; None: the graph's record or 127.5.
        device: Torch device of the caller (picks onnxruntime's provider).

    Attributes:
        input_size: The square input side.
        input_mean, input_std: The normalisation fed to the graph.
        embedding_size: ``D`` when the graph fixes it, else None.

    Raises:
        ValueError: the graph's input is not ``N x 3 x H x W`` (one line), or the sizes clash.
    """

    def __init__(self, path: str, input_size: Optional[int] = None,
                 input_mean: Optional[float] = None, input_std: Optional[float] = None,
                 device: Union[str, torch.device] = 'cpu') -> None:
        self.path = os.fspath(path)
        self.session = onnx_session(self.path, device, feature=f'ONNX model {self.path}')
        inputs = self.session.get_inputs()
        shape: List[Any] = list(inputs[0].shape) if inputs else []
        if len(inputs) != 1 or len(shape) != 4 or _fixed(shape[1]) != 3:
            got = [(i.name, list(i.shape)) for i in inputs]
            raise ValueError(f'{self.path}: a face recognizer takes one N x 3 x H x W input; '
                             f'the graph takes {got}')
        self.input_name = inputs[0].name
        height, width = _fixed(shape[2]), _fixed(shape[3])
        if height is not None and width is not None and height != width:
            raise ValueError(f'{self.path}: input {height}x{width} is not square')
        graph_size = height or width
        if input_size is None and graph_size is None:
            raise ValueError(f'{self.path}: the graph input {shape} has no fixed size; give '
                             'the input size (--input-size / input_size=)')
        if input_size is not None and graph_size is not None and int(input_size) != graph_size:
            raise ValueError(f'{self.path} takes {graph_size} px inputs, not {input_size}')
        self.input_size = int(input_size or graph_size)
        out_shape = list(self.session.get_outputs()[0].shape)
        self.embedding_size = _fixed(out_shape[-1]) if out_shape else None
        recorded = graph_normalisation(self.path) or (DEFAULT_MEAN, DEFAULT_STD)
        self.input_mean = float(recorded[0] if input_mean is None else input_mean)
        self.input_std = float(recorded[1] if input_std is None else input_std)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.path!r}, input_size={self.input_size}, '
                f'mean={self.input_mean:g}, std={self.input_std:g})')

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw embeddings of a normalised ``N x 3 x H x W`` batch, on the batch's device."""
        x = inputs.detach().float().cpu().numpy()
        if (self.input_mean, self.input_std) != (DEFAULT_MEAN, DEFAULT_STD):
            pixels = x * DEFAULT_STD + DEFAULT_MEAN  # back to 0..255 RGB
            x = (pixels - self.input_mean) / self.input_std
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(inputs.device)
