"""read_recognizer_checkpoint: every checkpoint kind keyed as a FaceRecognizer, in one place."""
import pytest
import torch

from coupleface.utils.checkpoint_load import CheckpointFormatError
from coupleface.utils.recognizer_checkpoint import read_recognizer_checkpoint

W, B = torch.ones(2, 3), torch.zeros(2)


def test_recognizer_checkpoint_keeps_its_keys_and_meta():
    state, info = read_recognizer_checkpoint(
        {'state_dict': {'backbone.fc.weight': W, 'head.weight': B}, 'meta': {'epoch': 8}})
    assert list(state) == ['backbone.fc.weight', 'head.weight']
    assert info['kind'] == 'recognizer' and info['meta'] == {'epoch': 8}
    assert info['dropped'] == [] and info['source'] == '<in-memory checkpoint>'


def test_distiller_checkpoint_gives_its_student_and_teacher_provenance():
    ckpt = {'state_dict': {'module.student.backbone.fc.weight': W,
                           'module.student.head.weight': B,
                           'module.connector.proj.weight': W,
                           'module._extra_state': {'teacher_sha256': 'abc'}}}
    state, info = read_recognizer_checkpoint(ckpt, source='d.pth')
    assert list(state) == ['backbone.fc.weight', 'head.weight']
    assert torch.equal(state['backbone.fc.weight'], W)
    assert info['kind'] == 'distiller' and info['teacher'] == {'teacher_sha256': 'abc'}
    assert info['dropped'] == ['connector.proj.weight', '_extra_state']
    assert info['source'] == 'd.pth'


@pytest.mark.parametrize('ckpt', [
    {'fc.weight': W, 'bn.bias': B},  # insightface backbone.pth
    {'module.fc.weight': W, 'module.bn.bias': B},  # saved from DataParallel
    {'state_dict_backbone': {'fc.weight': W, 'bn.bias': B}, 'epoch': 3},  # training ckpt
])
def test_bare_backbones_go_under_backbone(ckpt):
    state, info = read_recognizer_checkpoint(ckpt)
    assert list(state) == ['backbone.fc.weight', 'backbone.bn.bias']
    assert info['kind'] == 'backbone'


def test_a_file_is_read_safely(tmp_path):
    path = tmp_path / 'r.pth'
    torch.save({'state_dict': {'backbone.fc.weight': W}}, path)
    state, info = read_recognizer_checkpoint(path)
    assert list(state) == ['backbone.fc.weight'] and info['source'] == str(path)


def test_not_a_state_dict_is_a_format_error():
    with pytest.raises(CheckpointFormatError, match='x.pth holds no state dict'):
        read_recognizer_checkpoint({'epoch': 3, 'note': 'no weights'}, source='x.pth')
