"""coupleface.utils.onnx_export: a dynamic-batch graph of ``extract_feat`` with the
insightface contract in its metadata; old opsets refused."""
import numpy as np
import pytest
import torch


class TinyRecognizer(torch.nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
        self.fc = torch.nn.Linear(4 * 3 * 3, 8)

    def extract_feat(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def test_export_is_dynamic_in_batch_and_matches_torch(tmp_path):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    from coupleface.utils.onnx_export import export_onnx

    torch.manual_seed(0)
    model = TinyRecognizer()
    out = export_onnx(model, str(tmp_path / 'sub' / 'tiny.onnx'), 8, metadata=dict(k='v'))
    proto = onnx.load(out)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props['k'] == 'v' and props['input_size'] == '8'
    assert props['input_normalisation'] == '(x - 127.5) / 127.5'
    assert proto.producer_name == 'coupleface'
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    x = np.random.default_rng(0).uniform(-1, 1, (5, 3, 8, 8)).astype(np.float32)
    (y, ) = session.run(None, {'input': x})
    assert y.shape == (5, 8)
    np.testing.assert_allclose(y, model.extract_feat(torch.from_numpy(x)).detach().numpy(),
                               atol=1e-5)


def test_old_opset_refused(tmp_path):
    from coupleface.utils.onnx_export import MIN_OPSET, export_onnx
    with pytest.raises(ValueError, match=f'>= {MIN_OPSET}'):
        export_onnx(TinyRecognizer(), str(tmp_path / 'x.onnx'), 8, opset=MIN_OPSET - 1)
