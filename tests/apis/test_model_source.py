"""model_source: config + checkpoint, .onnx and config-less backbone.pth embed alike."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from _onnx_fixture import CONFIG, SIZE, write_model_files  # noqa: E402

from coupleface.apis import FaceEmbedder  # noqa: E402
from coupleface.apis.model_source import is_onnx, load_embedding_model  # noqa: E402


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    return write_model_files(tmp_path_factory.mktemp('model_source'))


def _faces(n=6, side=70):
    return np.random.default_rng(0).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def test_onnx_embedder_equals_the_pth_one(files):
    reference = FaceEmbedder(CONFIG, files['ckpt'])
    expected = reference.embed(_faces(), raw=True)
    onnx_embedder = FaceEmbedder(files['onnx'], flip_test=reference.flip_test)
    got = onnx_embedder.embed(_faces(), raw=True)
    delta = float(np.max(np.abs(got - expected)))
    print(f'FaceEmbedder .onnx vs .pth: max |delta| = {delta:.2e}')
    assert delta < 1e-4
    assert onnx_embedder.checkpoint_info['kind'] == 'onnx'
    assert (onnx_embedder.input_size, onnx_embedder.embedding_size) == (SIZE, 64)
    # a config with an .onnx model gives the config's loader and flip_test
    with_config = FaceEmbedder(CONFIG, files['onnx'])
    assert with_config.flip_test == reference.flip_test
    assert np.max(np.abs(with_config.embed(_faces(), raw=True) - expected)) < 1e-4


def test_bare_backbone_embeds_without_a_config(files):
    expected = FaceEmbedder(CONFIG, files['ckpt'], flip_test=False).embed(_faces(), raw=True)
    for network in ('r18', None):  # named, or read from the weights' shapes
        embedder = FaceEmbedder(checkpoint=files['backbone'], network=network, input_size=SIZE)
        got = embedder.embed(_faces(), raw=True)
        delta = float(np.max(np.abs(got - expected)))
        print(f'backbone.pth network={network} vs config: max |delta| = {delta:.2e}')
        assert delta < 1e-4
        assert embedder.checkpoint_info['kind'] == 'backbone'
        assert embedder.checkpoint_info['backbone'] == dict(
            type='IResNet', arch=18, base_channels=8, embedding_size=64, input_size=SIZE)
    with pytest.raises(ValueError, match='not r50'):
        FaceEmbedder(files['backbone'], network='r50', input_size=SIZE)
    with pytest.raises(ValueError, match='give the input size'):
        FaceEmbedder(files['backbone'])


def test_embedding_model_maps_normalised_batches_to_raw_embeddings(files):
    x = torch.rand(3, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        expected = files['model'].extract_feat(x)
    for source in (load_embedding_model(files['onnx']),
                   load_embedding_model(files['ckpt'], CONFIG),
                   load_embedding_model(files['backbone'], input_size=SIZE)):
        assert source.input_size == SIZE and source.embedding_size == 64
        assert torch.max(torch.abs(source(x) - expected)) < 1e-4
    assert is_onnx('a/B.ONNX') and not is_onnx('b.pth') and not is_onnx({})
    with pytest.raises(ValueError, match='names a PyTorch backbone'):
        load_embedding_model(files['onnx'], network='r18')
    with pytest.raises(ValueError, match='needs a model'):
        FaceEmbedder(CONFIG)
