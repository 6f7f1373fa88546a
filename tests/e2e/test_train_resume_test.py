"""tools/train.py on a tiny SynthFaces config: checkpoint, --resume, tools/test.py."""
import json
import os.path as osp

import torch
from _e2e_helpers import run_tool, write_tiny_config


def test_train_resume_then_test(tiny_synthfaces, tmp_path):
    cfg = write_tiny_config(str(tmp_path / 'tiny.py'), tiny_synthfaces, max_epochs=1)
    work = str(tmp_path / 'work')
    run_tool('train.py', cfg, '--work-dir', work)
    ckpt1 = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt1)
    assert open(osp.join(work, 'last_checkpoint')).read().strip().endswith('epoch_1.pth')

    # resume continues to the next epoch (not from scratch)
    proc = run_tool('train.py', cfg, '--work-dir', work, '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1' in (proc.stdout + proc.stderr)
    ckpt2 = osp.join(work, 'epoch_2.pth')
    assert osp.isfile(ckpt2)
    from coupleface.utils.checkpoint_load import safe_torch_load
    meta1, meta2 = safe_torch_load(ckpt1)['meta'], safe_torch_load(ckpt2)['meta']
    assert (meta1['epoch'], meta2['epoch']) == (1, 2)
    assert meta2['iter'] == 2 * meta1['iter']
    sd1, sd2 = safe_torch_load(ckpt1)['state_dict'], safe_torch_load(ckpt2)['state_dict']
    assert not torch.equal(sd1['head.weight'], sd2['head.weight'])

    out_dir = str(tmp_path / 'results')
    proc = run_tool('test.py', cfg, ckpt2, '--work-dir', work, '--out-dir', out_dir)
    assert 'synth_test/accuracy' in proc.stdout
    metrics = json.load(open(osp.join(out_dir, 'metrics.json')))
    assert 0.0 <= metrics['synth_test/accuracy'] <= 100.0


def test_bad_config_errors_are_one_line(tiny_synthfaces, tmp_path):
    # num_classes disagrees with the dataset
    cfg = write_tiny_config(str(tmp_path / 'bad.py'), tiny_synthfaces,
                            extra='model = dict(head=dict(num_classes=9))')
    proc = run_tool('train.py', cfg, '--work-dir', str(tmp_path / 'w'), check=False)
    assert proc.returncode != 0
    assert 'num_classes=9' in proc.stderr and '8 identities' in proc.stderr
    # missing checkpoint path
    proc = run_tool('test.py', cfg, str(tmp_path / 'nope.pth'), check=False)
    assert proc.returncode != 0 and 'checkpoint not found' in proc.stderr
    # unknown backbone arch
    cfg = write_tiny_config(str(tmp_path / 'arch.py'), tiny_synthfaces,
                            extra="model['backbone']['arch'] = 19")
    proc = run_tool('train.py', cfg, '--work-dir', str(tmp_path / 'w2'), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith('error:') and '19' in proc.stderr
    # --amp on CPU
    proc = run_tool('train.py', cfg, '--amp', check=False)
    assert proc.returncode != 0 and 'needs a CUDA GPU' in proc.stderr
