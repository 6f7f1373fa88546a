"""2-process DDP on CPU (gloo, torchrun) equals 1 process on the same global batch.

BatchNorm statistics are frozen (``freeze_bn=True``) so per-rank batch statistics
cannot differ from the global ones; the pipeline has no random flip.
"""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from _e2e_helpers import REPO, run_tool, write_tiny_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.dist
def test_ddp_matches_single_process(tiny_synthfaces, tmp_path):
    from coupleface.utils.checkpoint_load import safe_torch_load

    # a small learning rate keeps float rounding (gloo sums in another order) from being
    # amplified by the 4 SGD steps; the weights still move (checked at the end)
    common = ['--no-validate', '--cfg-options', 'model.freeze_bn=True',
              'randomness.seed=3', 'optim_wrapper.optimizer.lr=0.01']
    single_cfg = write_tiny_config(str(tmp_path / 'single.py'), tiny_synthfaces,
                                   batch_size=8)
    ddp_cfg = write_tiny_config(str(tmp_path / 'ddp.py'), tiny_synthfaces, batch_size=4)
    run_tool('train.py', single_cfg, '--work-dir', str(tmp_path / 'single'), *common)

    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_addr', '127.0.0.1', '--master_port', str(_free_port()),
           osp.join(REPO, 'tools', 'train.py'), ddp_cfg, '--launcher', 'pytorch',
           '--work-dir', str(tmp_path / 'ddp'), *common]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Distributed training: True' in proc.stdout + proc.stderr

    a = safe_torch_load(str(tmp_path / 'single' / 'epoch_1.pth'))
    b = safe_torch_load(str(tmp_path / 'ddp' / 'epoch_1.pth'))
    assert a['meta']['iter'] == b['meta']['iter'] == 4  # 32 images / global batch 8
    sa, sb = a['state_dict'], b['state_dict']
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sb[key], sa[key], atol=1e-5, rtol=0, msg=key)
    # the agreement means something only if training moved the weights: a run with
    # lr=0 keeps the (identically seeded) initial weights
    run_tool('train.py', single_cfg, '--work-dir', str(tmp_path / 'frozen'),
             *common[:-1], 'optim_wrapper.optimizer.lr=0.0')
    s0 = safe_torch_load(str(tmp_path / 'frozen' / 'epoch_1.pth'))['state_dict']
    for key in ('head.weight', 'backbone.fc.weight'):
        assert (sa[key] - s0[key]).abs().max() > 1e-4, key
