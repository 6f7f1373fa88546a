"""OnnxRecognizer: an ONNX graph with the head-less FaceRecognizer API (predict, test_step)."""
import os.path as osp
import sys

import pytest
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from _onnx_fixture import SIZE, write_model_files  # noqa: E402

from coupleface.registry import MODELS  # noqa: E402


def test_predict_and_test_step_equal_the_pytorch_recognizer(tmp_path):
    files = write_model_files(tmp_path)
    model = files['model']
    onnx_model = MODELS.build(dict(type='OnnxRecognizer', path=files['onnx'], flip_test=True))
    assert (onnx_model.input_size, onnx_model.embedding_size) == (SIZE, 64)
    data = dict(inputs=[torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8)
                        for _ in range(4)])
    model.flip_test = True
    with torch.no_grad():
        got = torch.stack([s.embedding for s in onnx_model.test_step(data)])
        expected = torch.stack([s.embedding for s in model.test_step(data)])
    assert torch.max(torch.abs(got - expected)) < 1e-4
    with pytest.raises(RuntimeError, match='not "loss"'):
        onnx_model(torch.zeros(1, 3, SIZE, SIZE), mode='loss')
    assert list(onnx_model.parameters()) == []
