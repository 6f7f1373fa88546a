"""atomic_save (temp file, fsync, rename) and the MMEngine save_checkpoint replacement.

CheckpointHook saving through it in a real run: test_checkpoint.py."""
import os

import pytest
import torch
from mmengine.runner import checkpoint as mm_ckpt

import coupleface.utils.checkpoint_save as save_mod
from coupleface.utils.checkpoint_load import safe_torch_load
from coupleface.utils.checkpoint_save import atomic_save, install_atomic_checkpoint_saving
from coupleface.utils.file_hash import file_sha256


def test_atomic_save_survives_a_crash(tmp_path, monkeypatch):
    path = tmp_path / 'ckpt.pth'
    atomic_save({'w': torch.ones(3)}, path)
    digest = file_sha256(path)
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 half a checkpoint')
        raise RuntimeError('disk full')

    monkeypatch.setattr(torch, 'save', crashing_save)
    with pytest.raises(RuntimeError, match='disk full'):
        atomic_save({'w': torch.zeros(3)}, path)
    monkeypatch.setattr(torch, 'save', real_save)
    assert os.listdir(tmp_path) == ['ckpt.pth']
    assert file_sha256(path) == digest
    assert torch.equal(safe_torch_load(path)['w'], torch.ones(3))

    atomic_save({'w': torch.zeros(3)}, path)  # a successful overwrite
    assert torch.equal(safe_torch_load(path)['w'], torch.zeros(3))
    assert os.listdir(tmp_path) == ['ckpt.pth']


def test_non_local_saves_use_mmengine(monkeypatch):
    install_atomic_checkpoint_saving()
    calls = []
    monkeypatch.setattr(save_mod, '_ORIGINAL_SAVE_CHECKPOINT',
                        lambda ckpt, name, **kw: calls.append(name))
    monkeypatch.setattr(save_mod, 'atomic_save', lambda *a: pytest.fail('not local'))
    mm_ckpt.save_checkpoint({}, 'pavi://project/model.pth')
    assert calls == ['pavi://project/model.pth']
