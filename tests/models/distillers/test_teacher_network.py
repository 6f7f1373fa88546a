"""build_frozen_teacher: a bare arcface_torch backbone.pth as teacher without a model config."""
import pytest
import torch

from coupleface.models.backbones import IResNet
from coupleface.models.distillers.teacher import build_frozen_teacher
from coupleface.registry import MODELS


def test_network_teacher_equals_the_configured_teacher(tmp_path):
    torch.manual_seed(0)
    backbone_cfg = dict(type='IResNet', arch=18, base_channels=8, embedding_size=32,
                        input_size=56)
    path = str(tmp_path / 'backbone.pth')
    torch.save(MODELS.build(backbone_cfg).state_dict(), path)  # arcface_torch's layout
    configured, info = build_frozen_teacher(dict(
        model=dict(type='FaceRecognizer', backbone=backbone_cfg), checkpoint=path))
    for network in ('r18', None):
        teacher, net_info = build_frozen_teacher(dict(network=network, checkpoint=path,
                                                      input_size=56))
        assert net_info == info and isinstance(teacher.backbone, IResNet)
        assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
        x = torch.rand(2, 3, 56, 56) * 2 - 1
        with torch.no_grad():
            assert torch.equal(teacher.extract_feat(x), configured.extract_feat(x))
    with pytest.raises(ValueError, match='not r50'):
        build_frozen_teacher(dict(network='r50', checkpoint=path, input_size=56))
    with pytest.raises(ValueError, match='dict\\(network=..., checkpoint=...'):
        build_frozen_teacher(dict(model={}, network='r18', checkpoint=path))
