"""CoupleFace end to end on tiny SynthFaces: teacher → mining → distillation → resume → bank."""
import os.path as osp

import numpy as np
import pytest
import torch
from _e2e_helpers import run_tool, write_tiny_config, write_tiny_distill_config

SAMPLER = ("train_dataloader['sampler'] = dict(batch_size=8, group_size=2, "
           "images_per_identity=2)\n")
MINING = ("custom_hooks = [dict(type='ConfigCheckHook'), dict(type='AugmentSeedHook'), "
          "dict(type='RelationMiningHook', num_neighbours=2, batch_size=16, num_workers=0)]\n")
BANK_BASE = 'coupleface/iresnet18-w8_coupleface-bank-iresnet18-w32_1xb128_synthfaces-56px.py'


@pytest.fixture(scope='module')
def tiny_teacher(tiny_synthfaces, tmp_path_factory) -> str:
    work = tmp_path_factory.mktemp('teacher')
    cfg = write_tiny_config(str(work / 'teacher.py'), tiny_synthfaces, extra='val_cfg = None\n'
                            'val_dataloader = None\nval_evaluator = None')
    run_tool('train.py', cfg, '--work-dir', str(work))
    return str(work / 'epoch_1.pth')


def test_coupleface_online_then_resume_then_bank(tiny_synthfaces, tiny_teacher, tmp_path):
    from coupleface.utils.checkpoint_load import safe_torch_load
    from coupleface.utils.file_hash import file_sha256

    cfg = write_tiny_distill_config(str(tmp_path / 'cf.py'), tiny_synthfaces,
                                    teacher=tiny_teacher, extra=SAMPLER + MINING)
    work = str(tmp_path / 'cf')
    proc = run_tool('train.py', cfg, '--work-dir', work)
    log = proc.stdout + proc.stderr
    for key in ('loss_cls:', 'loss_fcd:', 'loss_rad:'):
        assert key in log, key
    assert 'mined 2 neighbours for 8 identities' in log
    relations = osp.join(work, 'relations.npz')
    with np.load(relations) as rel:
        assert rel['neighbours'].shape == (8, 2)
        assert not (rel['neighbours'] == np.arange(8)[:, None]).any()  # never itself

    ckpt = safe_torch_load(osp.join(work, 'epoch_1.pth'))
    state = ckpt['state_dict']
    assert not any(k.startswith(('teacher', '_teacher')) for k in state)
    assert state['_extra_state']['teacher_sha256'] == file_sha256(tiny_teacher)
    assert any(k.startswith('student.backbone.') for k in state)

    # resume reloads the mined relations instead of mining again
    mtime = osp.getmtime(relations)
    proc = run_tool('train.py', cfg, '--work-dir', work, '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2')
    log = proc.stdout + proc.stderr
    assert 'relations reloaded from' in log and 'mined 2 neighbours' not in log
    assert osp.getmtime(relations) == mtime and osp.isfile(osp.join(work, 'epoch_2.pth'))

    # teacher bank: same teacher, looked up instead of run
    bank = str(tmp_path / 'bank' / 'tiny')
    run_tool('extract_embeddings.py', cfg, tiny_teacher, '--out', bank, '--workers', '0',
             '--batch-size', '16')
    arr = np.load(bank + '.npy')
    assert arr.shape == (32, 2, 16) and arr.dtype == np.float16
    bank_cfg = write_tiny_distill_config(str(tmp_path / 'bank.py'), tiny_synthfaces, bank=bank,
                                         base=BANK_BASE, extra=SAMPLER + MINING)
    proc = run_tool('train.py', bank_cfg, '--work-dir', str(tmp_path / 'bankrun'))
    assert 'loss_rad:' in proc.stdout + proc.stderr
    assert osp.isfile(str(tmp_path / 'bankrun' / 'epoch_1.pth'))


def test_bad_teacher_inputs_are_one_line_errors(tiny_synthfaces, tiny_teacher, tmp_path):
    cfg = write_tiny_distill_config(str(tmp_path / 'missing.py'), tiny_synthfaces,
                                    teacher=str(tmp_path / 'nope.pth'), extra=SAMPLER + MINING)
    proc = run_tool('train.py', cfg, '--work-dir', str(tmp_path / 'w1'), check=False)
    assert proc.returncode == 1 and 'teacher checkpoint not found' in proc.stderr
    # a teacher checkpoint of another architecture: the mismatched keys are listed
    wrong = torch.load(tiny_teacher, weights_only=False)  # our own file, written by the test
    wrong['state_dict'] = {k: v for k, v in wrong['state_dict'].items() if 'layer4' not in k}
    path = str(tmp_path / 'wrong.pth')
    torch.save({'state_dict': wrong['state_dict']}, path)
    cfg = write_tiny_distill_config(str(tmp_path / 'wrong.py'), tiny_synthfaces, teacher=path,
                                    extra=SAMPLER + MINING)
    proc = run_tool('train.py', cfg, '--work-dir', str(tmp_path / 'w2'), check=False)
    assert proc.returncode == 1 and 'missing keys' in proc.stderr and 'layer4' in proc.stderr
    # a bank from another dataset size
    from coupleface.models.distillers.teacher_bank import write_teacher_bank
    bank = str(tmp_path / 'small_bank')
    write_teacher_bank(bank, np.zeros((5, 2, 16), np.float32), dict(dataset='x'))
    cfg = write_tiny_distill_config(str(tmp_path / 'badbank.py'), tiny_synthfaces, bank=bank,
                                    base=BANK_BASE, extra=SAMPLER + MINING)
    proc = run_tool('train.py', cfg, '--work-dir', str(tmp_path / 'w3'), check=False)
    assert proc.returncode == 1 and 'extract_embeddings' in proc.stderr
