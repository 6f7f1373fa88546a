"""Helpers for tiny end-to-end runs: run a tool, write a tiny config inheriting ours."""
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_IDS = 8


def run_tool(script: str, *args: str, timeout: int = 300, env_extra=None,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run a tools/ script with this interpreter; fail with its output on error."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', script), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f'{script} {args} exited {proc.returncode}\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}')
    return proc



def _data_and_schedule(data_root: str, batch_size: int, max_epochs: int) -> str:
    """The tiny configs' dataloaders (no workers) and short schedule, as config text."""
    return f'''
train_dataloader = dict(batch_size={batch_size}, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root='{data_root}', pipeline=tr))
val_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{data_root}', pipeline=te))
test_dataloader = dict(batch_size=16, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root='{data_root}', pipeline=te))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='PolyLR', power=2.0, by_epoch=True, begin=1, end=3, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs={max_epochs}, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
'''

def write_tiny_config(path: str, data_root: str, *, max_epochs: int = 1, batch_size: int = 8,
                      extra: str = '') -> str:
    """A config inheriting the repo's IResNet-18 SynthFaces config, shrunk to 32 px."""
    text = f'''
_base_ = 'coupleface::arcface/iresnet18-w8_1xb128_synthfaces-56px.py'
size = 32
tr = [dict(type='LoadFaceImage', size=size), dict(type='PackFaceInputs')]
te = [dict(type='LoadFaceImage', size=size), dict(type='PackFaceInputs')]
model = dict(backbone=dict(input_size=size, base_channels=8, embedding_size=16),
             head=dict(num_classes={TINY_IDS}, in_channels=16))
{_data_and_schedule(data_root, batch_size, max_epochs)}{extra}
'''
    with open(path, 'w') as f:
        f.write(text)
    return path


def write_tiny_distill_config(path: str, data_root: str, *, teacher: str = '',
                              bank: str = '',
                              base: str = 'coupleface/iresnet18-w8_coupleface-iresnet18-w32_'
                                          '1xb128_synthfaces-56px.py',
                              max_epochs: int = 1, extra: str = '') -> str:
    """A distillation config inheriting one of ours, shrunk to 32 px and 8 identities.

    The teacher is the tiny recognizer of :func:`write_tiny_config` (w8, 16-d), given
    as a checkpoint (``teacher``) or as a teacher bank prefix (``bank``).
    """
    source = (f"teacher_bank=dict(path='{bank}')" if bank else
              f"teacher=dict(model=teacher_model, checkpoint='{teacher}')")
    text = f'''
_base_ = 'coupleface::{base}'
size = 32
tr = [dict(type='LoadFaceImage', size=size), dict(type='PackFaceInputs')]
te = [dict(type='LoadFaceImage', size=size), dict(type='PackFaceInputs')]
teacher_model = dict(type='FaceRecognizer',
                     backbone=dict(type='IResNet', arch=18, input_size=size, base_channels=8,
                                   embedding_size=16))
model = dict(
    student=dict(backbone=dict(input_size=size, base_channels=4, embedding_size=8),
                 head=dict(num_classes={TINY_IDS}, in_channels=8)),
    connector=dict(in_channels=8, out_channels=16),
    {source})
{_data_and_schedule(data_root, 8, max_epochs)}{extra}
'''
    with open(path, 'w') as f:
        f.write(text)
    return path
