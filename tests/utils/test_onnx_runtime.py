"""onnx_runtime: ONNX graphs run on coupleface-normalised torch batches."""
import onnx
import pytest
import torch
from torch import nn

from coupleface.utils.onnx_runtime import OnnxEmbeddingSession, graph_normalisation


class _Net(nn.Module):
    """A linear 'recognizer' over 3 x 8 x 8 inputs; with ``raw_pixels`` the normalisation
    ``(x - 127.5) * (1 / 127.5)`` is inside the graph (insightface's mxnet-converted models)."""

    def __init__(self, raw_pixels=False):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 8 * 8, 4)
        self.raw_pixels = raw_pixels

    def forward(self, x):
        if self.raw_pixels:
            x = (x - 127.5) * (1 / 127.5)
        return self.fc(x.flatten(1))


def _export(net, path, shape=(1, 3, 8, 8), dynamic_hw=False):
    axes = {0: 'batch', 2: 'h', 3: 'w'} if dynamic_hw else {0: 'batch'}
    torch.onnx.export(net, (torch.zeros(*shape), ), str(path), dynamo=False, opset_version=17,
                      input_names=['input'], output_names=['embedding'],
                      dynamic_axes={'input': axes, 'embedding': {0: 'batch'}})
    return str(path)


def test_default_normalisation_passes_the_batch_through(tmp_path):
    net = _Net().eval()
    session = OnnxEmbeddingSession(_export(net, tmp_path / 'a.onnx'))
    assert (session.input_size, session.embedding_size) == (8, 4)
    assert (session.input_mean, session.input_std) == (127.5, 127.5)
    x = torch.rand(5, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.max(torch.abs(session(x) - net(x))) < 1e-5


def test_normalisation_inside_the_graph_is_detected_and_fed_raw_pixels(tmp_path):
    path = _export(_Net(raw_pixels=True).eval(), tmp_path / 'raw.onnx')
    assert graph_normalisation(path) == (0.0, 1.0)
    session = OnnxEmbeddingSession(path)
    x = torch.rand(3, 3, 8, 8) * 2 - 1  # coupleface-normalised
    with torch.no_grad():
        expected = _Net().eval()(x)  # the same weights on the normalised batch
    assert torch.max(torch.abs(session(x) - expected)) < 1e-4
    # explicit arguments win over the graph
    assert OnnxEmbeddingSession(path, input_mean=127.5, input_std=127.5).input_mean == 127.5


def test_recorded_metadata_is_read(tmp_path):
    path = _export(_Net().eval(), tmp_path / 'm.onnx')
    proto = onnx.load(path)
    for key, value in (('input_mean', '0.5'), ('input_std', '2')):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, path)
    assert graph_normalisation(path) == (0.5, 2.0)


def test_input_size_from_argument_when_the_graph_leaves_it_open(tmp_path):
    path = _export(_Net().eval(), tmp_path / 'dyn.onnx', dynamic_hw=True)
    with pytest.raises(ValueError, match='no fixed size; give the input size'):
        OnnxEmbeddingSession(path)
    assert OnnxEmbeddingSession(path, input_size=8).input_size == 8
    with pytest.raises(ValueError, match='takes 8 px inputs, not 16'):
        OnnxEmbeddingSession(_export(_Net().eval(), tmp_path / 'f.onnx'), input_size=16)


def test_a_graph_that_is_not_n3hw_is_refused_in_one_line(tmp_path):
    class Flat(nn.Module):
        def forward(self, x):
            return x * 2

    path = _export(Flat(), tmp_path / 'flat.onnx', shape=(1, 192))
    with pytest.raises(ValueError) as err:
        OnnxEmbeddingSession(path)
    assert 'takes one N x 3 x H x W input' in str(err.value) and '\n' not in str(err.value)
    with pytest.raises(FileNotFoundError):
        OnnxEmbeddingSession(str(tmp_path / 'missing.onnx'))
