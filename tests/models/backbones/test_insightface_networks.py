"""insightface_networks: the backbone a bare backbone.pth holds, read from its shapes."""
import pytest
import torch
from mmengine.config import Config

from coupleface.models.backbones import IResNet, MobileFaceNet
from coupleface.models.backbones.insightface_networks import (
    NETWORKS,
    backbone_config_from_state_dict,
    recognizer_config_from_state_dict,
)
from coupleface.utils.config_scope import config_root


def _shapes(cls, **kwargs):
    """The state dict of a backbone on the meta device: shapes only, no memory, no time."""
    with torch.device('meta'):
        return cls(**kwargs).state_dict()


@pytest.mark.parametrize('network,cls,kwargs', [
    ('r18', IResNet, dict(arch=18)),
    ('r34', IResNet, dict(arch=34)),
    ('r50', IResNet, dict(arch=50)),
    ('r100', IResNet, dict(arch=100)),
    ('r200', IResNet, dict(arch=200)),
    ('mbf', MobileFaceNet, dict(arch='mbf')),
    ('mbf_large', MobileFaceNet, dict(arch='mbf_large')),
])
def test_the_arcface_torch_networks_are_read_from_112px_shapes(network, cls, kwargs):
    state = _shapes(cls, **kwargs)
    cfg = backbone_config_from_state_dict(state)
    assert cfg == dict(NETWORKS[network], **cfg) and cfg['input_size'] == 112
    assert cfg['embedding_size'] == 512
    # the named network agrees; another one is a one-line error
    assert backbone_config_from_state_dict(state, network) == cfg
    other = 'r18' if network != 'r18' else 'r50'
    with pytest.raises(ValueError, match=f'not {other}$'):
        backbone_config_from_state_dict(state, other)
    # and the config rebuilds exactly these shapes
    rebuilt = _shapes({'IResNet': IResNet, 'MobileFaceNet': MobileFaceNet}[cfg.pop('type')],
                      **cfg)
    assert {k: v.shape for k, v in rebuilt.items()} == {k: v.shape for k, v in state.items()}


def test_width_embedding_and_small_inputs_come_from_the_weights():
    state = _shapes(IResNet, arch=18, base_channels=8, embedding_size=64, input_size=56)
    with pytest.raises(ValueError, match=r'4x4 feature map \(inputs of 49\.\.64 px'):
        backbone_config_from_state_dict(state)
    cfg = backbone_config_from_state_dict({'backbone.' + k: v for k, v in state.items()},
                                          'r18', input_size=56)
    assert cfg == dict(type='IResNet', arch=18, base_channels=8, embedding_size=64,
                       input_size=56)
    with pytest.raises(ValueError, match='takes 49..64 px inputs, not 112'):
        backbone_config_from_state_dict(state, input_size=112)
    mbf = _shapes(MobileFaceNet, input_size=56, embedding_size=128)
    assert backbone_config_from_state_dict(mbf, input_size=56) == dict(
        type='MobileFaceNet', arch='mbf', embedding_size=128, input_size=56)
    odd = _shapes(MobileFaceNet, blocks=(1, 2, 2, 1), scale=1, input_size=64)
    assert backbone_config_from_state_dict(odd, input_size=64)['blocks'] == (1, 2, 2, 1)
    # shape-only uses (the converter): the largest fitting side instead of the error
    assert backbone_config_from_state_dict(state, fit_input_size=True)['input_size'] == 64
    rec = recognizer_config_from_state_dict(state, input_size=56, flip_test=True)
    assert rec['type'] == 'FaceRecognizer' and rec['flip_test'] is True
    assert rec['data_preprocessor'] == dict(type='FaceDataPreprocessor')


def test_unknown_networks_and_foreign_state_dicts_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown network 'vit_t'"):
        backbone_config_from_state_dict({}, 'vit_t')
    with pytest.raises(ValueError, match='neither an IResNet nor a MobileFaceNet'):
        backbone_config_from_state_dict({'conv.weight': torch.zeros(1)})


@pytest.mark.parametrize('network,base', [('r18', 'iresnet18_arcface.py'),
                                          ('r50', 'iresnet50_arcface.py'),
                                          ('r100', 'iresnet100_arcface.py'),
                                          ('mbf', 'mobilefacenet_arcface.py')])
def test_networks_are_the_base_configs_backbones(network, base):
    backbone = Config.fromfile(f'{config_root()}/_base_/models/{base}').model.backbone
    # MobileFaceNet's default arch is 'mbf', which the base config leaves implicit
    assert dict(type=backbone.type, arch=backbone.get('arch', 'mbf')) == NETWORKS[network]
