"""Config to recognizer: config reading, the deployed model config, input size, strict loading."""
import copy

import pytest
import torch
from mmengine.config import Config

from coupleface.apis.model_loading import (
    build_recognizer,
    configured_image_loader,
    configured_input_size,
    init_recognizer,
    load_config,
    load_recognizer_checkpoint,
    recognizer_model_config,
)
from coupleface.datasets.transforms import LoadFaceImage
from coupleface.utils.checkpoint_state_dict import CheckpointKeyError

BACKBONE = dict(type='MobileFaceNet', input_size=32, embedding_size=16)
HEAD = dict(type='ArcFaceHead', num_classes=3, in_channels=16)
PRE = dict(type='FaceDataPreprocessor')


def _cfg(model, size=None):
    cfg = dict(model=model)
    if size is not None:
        pipeline = [dict(type='LoadFaceImage', size=size, interpolation='area'),
                    dict(type='PackFaceInputs')]
        cfg['test_dataloader'] = dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(type='VerificationBinDataset', pipeline=pipeline)]))
    return cfg


def test_load_config_forms_and_errors(tmp_path):
    cfg = load_config(_cfg(dict(type='FaceRecognizer', backbone=BACKBONE)))
    assert isinstance(cfg, Config) and cfg.model.type == 'FaceRecognizer'
    assert load_config(cfg) is cfg
    path = tmp_path / 'model.py'
    path.write_text(f'model = dict(type="FaceRecognizer", backbone={BACKBONE!r})\n')
    assert load_config(str(path)).model.backbone.type == 'MobileFaceNet'
    with pytest.raises(FileNotFoundError, match='missing.py'):
        load_config(str(tmp_path / 'missing.py'))
    with pytest.raises(ValueError, match='has no model'):
        load_config(dict(train_cfg=dict()))
    with pytest.raises(ValueError, match='got int'):
        load_config(3)


def test_recognizer_model_config_of_a_distiller():
    student = dict(type='FaceRecognizer', backbone=BACKBONE, head=HEAD,
                   init_cfg=dict(type='Pretrained', checkpoint='x.pth'))
    distiller = dict(type='CoupleFaceDistiller', student=student, data_preprocessor=PRE,
                     teacher=dict(model=dict(type='FaceRecognizer'), checkpoint='t.pth'))
    cfg = Config(dict(model=copy.deepcopy(distiller)))
    model_cfg = recognizer_model_config(cfg)
    assert model_cfg['type'] == 'FaceRecognizer' and model_cfg['data_preprocessor'] == PRE
    assert 'head' not in model_cfg and 'init_cfg' not in model_cfg
    assert recognizer_model_config(cfg, with_head=True)['head'] == HEAD
    assert cfg.model.student.init_cfg is not None  # the config itself is not changed


def test_configured_input_size_and_loader():
    model = dict(type='FaceRecognizer', backbone=BACKBONE)
    cfg = Config(_cfg(model, size=24))
    assert configured_input_size(cfg) == 24  # nested dataset pipeline found
    loader = configured_image_loader(cfg)
    assert isinstance(loader, LoadFaceImage)
    assert loader.size == 24 and loader.on_error == 'raise'
    assert configured_input_size(Config(_cfg(model))) == 32  # the backbone's input_size
    bare = dict(type='FaceRecognizer', backbone=dict(type='MobileFaceNet'))
    assert configured_input_size(Config(_cfg(bare))) == 112


def test_build_and_strict_load(tmp_path):
    torch.manual_seed(0)
    cfg = _cfg(dict(type='FaceRecognizer', backbone=BACKBONE, head=HEAD), size=32)
    trained = build_recognizer(cfg, with_head=True)
    assert trained.head is not None and build_recognizer(cfg).head is None
    path = str(tmp_path / 'epoch_1.pth')
    torch.save({'state_dict': trained.state_dict(), 'meta': {'epoch': 1}}, path)

    model = build_recognizer(cfg)
    info = load_recognizer_checkpoint(model, path)
    assert info['kind'] == 'recognizer' and info['meta'] == {'epoch': 1}
    assert info['dropped'] and all(k.startswith('head.') for k in info['dropped'])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, trained.state_dict()[key])

    loaded = init_recognizer(cfg, path)
    assert not loaded.training and loaded.input_size == 32
    assert loaded.checkpoint_info['source'] == path

    state = {k: v for k, v in trained.state_dict().items() if not k.endswith('running_var')}
    with pytest.raises(CheckpointKeyError, match='does not fit the configured MobileFaceNet'):
        load_recognizer_checkpoint(build_recognizer(cfg), {'state_dict': state}, source='mem')
