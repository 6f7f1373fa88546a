"""load_state_dict_flexible: key mapping (module., prefixes, bare backbones) and key errors."""
import pytest
import torch
import torch.nn as nn

from coupleface.utils.checkpoint_load import CheckpointFormatError
from coupleface.utils.checkpoint_state_dict import (
    CheckpointKeyError,
    extract_state_dict,
    load_state_dict_flexible,
    strip_module_prefix,
)


class TinyBackbone(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3)
        self.bn1 = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, 8)


class TinyRecognizer(nn.Module):
    def __init__(self, with_head=False):
        super().__init__()
        self.backbone = TinyBackbone()
        if with_head:
            self.head = nn.Linear(8, 3)


def _randomised(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen))
            else:
                tensor.fill_(seed)
    return module


def _assert_loaded(model, state_dict, prefix=''):
    model_state = model.state_dict()
    for key, value in state_dict.items():
        assert torch.equal(model_state[prefix + key], value), key


def test_bare_backbone_into_recognizer_auto_prefix(tmp_path):
    source = _randomised(TinyBackbone(), seed=1).state_dict()  # insightface backbone.pth keys
    path = tmp_path / 'backbone.pth'
    torch.save(source, str(path))
    model = TinyRecognizer()
    load_state_dict_flexible(model, path)
    _assert_loaded(model, source, prefix='backbone.')
    assert model.backbone.bn1.num_batches_tracked.item() == 1

    explicit = TinyRecognizer()
    load_state_dict_flexible(explicit, source, prefix_map={'': 'backbone.'})
    _assert_loaded(explicit, source, prefix='backbone.')

    # A recognizer with a head: the backbone loads, the head is reported missing.
    with_head = TinyRecognizer(with_head=True)
    with pytest.raises(CheckpointKeyError, match=r'2 missing keys: head.weight, head.bias'):
        load_state_dict_flexible(with_head, path, prefix_map={'': 'backbone.'})
    head_before = with_head.head.weight.clone()
    load_state_dict_flexible(with_head, path, strict=False, prefix_map={'': 'backbone.'})
    _assert_loaded(with_head, source, prefix='backbone.')
    assert torch.equal(with_head.head.weight, head_before)


def test_module_prefix_and_full_checkpoint(tmp_path):
    source = _randomised(TinyRecognizer(), seed=2).state_dict()
    ddp_style = {f'module.{k}': v for k, v in source.items()}
    model = TinyRecognizer()
    load_state_dict_flexible(model, ddp_style)
    _assert_loaded(model, source)

    path = tmp_path / 'epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': source, 'message_hub': {}}, str(path))
    model = TinyRecognizer()
    load_state_dict_flexible(model, path)
    _assert_loaded(model, source)

    # Old BatchNorm checkpoints without num_batches_tracked still load strictly.
    old = {k: v for k, v in source.items() if not k.endswith('num_batches_tracked')}
    load_state_dict_flexible(TinyRecognizer(), old)


def test_key_errors_list_the_keys_and_name_the_file(tmp_path):
    source = _randomised(TinyRecognizer(), seed=3).state_dict()
    broken = dict(source)
    del broken['backbone.fc.bias']
    broken.update({f'extra.layer{i}.weight': torch.zeros(1) for i in range(30)})
    broken['backbone.conv1.weight'] = torch.zeros(5, 3, 3, 3)
    path = tmp_path / 'broken.pth'
    torch.save({'state_dict': broken}, str(path))

    model = TinyRecognizer()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointKeyError) as err:
        load_state_dict_flexible(model, path)
    message = str(err.value)
    assert str(path) in message
    assert '1 missing keys: backbone.fc.bias' in message
    assert '30 unexpected keys: extra.layer0.weight' in message and '(+10 more)' in message
    assert 'extra.layer19.weight' in message and 'extra.layer29.weight' not in message
    assert 'backbone.conv1.weight (checkpoint (5, 3, 3, 3) vs model (4, 3, 3, 3))' in message
    assert isinstance(err.value, KeyError)
    for key, value in model.state_dict().items():  # nothing was loaded
        assert torch.equal(value, before[key]), key

    load_state_dict_flexible(model, path, strict=False)
    assert torch.equal(model.backbone.bn1.weight, source['backbone.bn1.weight'])
    assert torch.equal(model.backbone.conv1.weight, before['backbone.conv1.weight'])


def test_not_a_state_dict(tmp_path):
    with pytest.raises(CheckpointFormatError, match='no state dict'):
        load_state_dict_flexible(TinyRecognizer(), {'meta': {'epoch': 1}})


def test_extract_state_dict_and_strip_module_prefix():
    sd = {'a.w': torch.ones(1)}
    assert extract_state_dict({'state_dict': sd, 'meta': {}}, 'x') is sd
    assert extract_state_dict({'state_dict_backbone': sd}, 'x') is sd
    assert extract_state_dict(sd, 'x') is sd
    with pytest.raises(CheckpointFormatError, match='x holds no state dict'):
        extract_state_dict({'meta': 1}, 'x')
    assert strip_module_prefix('module.backbone.w') == 'backbone.w'
    assert strip_module_prefix('backbone.module.w') == 'backbone.module.w'
