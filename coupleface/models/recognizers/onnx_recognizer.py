"""A recognizer whose embedding is an ONNX graph run by onnxruntime (evaluation and banks only).

insightface ships its recognizers as ONNX files (``w600k_r50.onnx`` of its model packs).
:class:`OnnxRecognizer` gives such a file the interface of a head-less
:class:`~coupleface.models.recognizers.FaceRecognizer`: ``data_preprocessor``
(``FaceDataPreprocessor``: BGR->RGB, ``(x - 127.5) / 127.5``), ``extract_feat`` (raw
``B x D``), ``embed`` (flip fusion with ``flip_test``), ``predict`` (the ``embedding`` field the
metrics read) and ``test_step``, so ``tools/test.py``, ``tools/eval_ijb.py``,
``tools/extract_embeddings.py`` and :class:`~coupleface.apis.FaceEmbedder` run it like a
PyTorch model. The graph's own normalisation is honoured
(:class:`coupleface.utils.onnx_runtime.OnnxEmbeddingSession`). It has no parameters and
cannot train.
"""
from __future__ import annotations

from typing import List, Optional, Union

import torch
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import nn

from coupleface.registry import MODELS
from coupleface.utils.onnx_runtime import OnnxEmbeddingSession

from .face_recognizer import FaceRecognizer


@MODELS.register_module()
class OnnxRecognizer(BaseModel):
    """Embeddings from an ONNX face recognizer, with the head-less ``FaceRecognizer`` API.

    Args:
        path: The ``.onnx`` file (one ``N x 3 x H x W`` input, one ``N x D`` output).
        input_size: Square input side; defaults to the graph's fixed size.
        input_mean: Mean the graph expects (None: the graph's record, else 127.5).
        input_std: Std the graph expects (None: the graph's record, else 127.5).
        flip_test: In ``predict``/``embed``, embed ``f(x) + f(flip(x))``.
        data_preprocessor: Defaults to ``FaceDataPreprocessor``.

    Examples:
        >>> model = OnnxRecognizer('w600k_r50.onnx')  # doctest: +SKIP
        >>> model.extract_feat(torch.zeros(2, 3, 112, 112)).shape  # doctest: +SKIP
        torch.Size([2, 512])
    """

    embed = FaceRecognizer.embed
    predict = FaceRecognizer.predict

    def __init__(self, path: str, input_size: Optional[int] = None,
                 input_mean: Optional[float] = None, input_std: Optional[float] = None,
                 flip_test: bool = False,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='FaceDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor)
        self.session = OnnxEmbeddingSession(path, input_size, input_mean, input_std)
        self.input_size = self.session.input_size
        self.embedding_size = self.session.embedding_size
        self.flip_test = flip_test
        self.head = None

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw embeddings ``B x D`` of normalised image batches ``B x 3 x H x W``."""
        return self.session(inputs)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``predict`` or plain embedding (``tensor``); there is no ``loss``."""
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'OnnxRecognizer runs mode "predict" or "tensor", not "{mode}"')
