"""Every shipped config's trained network takes a training step on both oneDNN code paths.

The SynthFaces configs train end to end in ``test_synthfaces_configs_train.py``; the MS1M
recipes have no data here, so this runs one forward + backward + SGD step of each config's
backbone (the recognizer, or the distiller's student: the teacher is never trained) as
shipped (input size, width, channels-last setting), in a subprocess per code path: the
CPU's native kernels and the AVX2 ones (``ONEDNN_MAX_CPU_ISA=AVX2``), where torch's
channels-last convolution backward corrupted the heap. A crash or hang fails the test
instead of the suite.
"""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest

from coupleface.utils import config_root

HERE = osp.dirname(osp.abspath(__file__))
CONFIGS = sorted(p for p in glob.glob(osp.join(config_root(), '*', '*.py'))
                 if '_base_' not in p)


@pytest.mark.slow
@pytest.mark.parametrize('isa', ['native', 'AVX2'])
def test_every_config_takes_a_training_step(isa):
    env = dict(os.environ, PYTHONFAULTHANDLER='1')
    if isa != 'native':
        env['ONEDNN_MAX_CPU_ISA'] = isa
    proc = subprocess.run([sys.executable, osp.join(HERE, '_train_step_worker.py'), *CONFIGS],
                          env=env, capture_output=True, text=True, timeout=600)
    done = [line[3:] for line in proc.stdout.splitlines() if line.startswith('ok ')]
    assert proc.returncode == 0, (f'exit {proc.returncode} after {len(done)} configs\n'
                                  f'{proc.stderr[-3000:]}')
    assert done == CONFIGS
    assert len(CONFIGS) >= 20
