"""Every SynthFaces method config builds its datasets and trains two iterations.

The configs run as shipped (model widths, 56 px pipelines, losses, samplers, hooks), through
``tools/train.py``, changed only where a tiny test set requires it: the data folder (a tiny
SynthFaces set of 10 identities), the class count, the loader sizes (batch 16, no workers:
two iterations per epoch), one epoch with validation at its end, and the teacher they point
at: a checkpoint of the SynthFaces teacher config trained here first, or a teacher bank
extracted from it with ``tools/extract_embeddings.py``. New SynthFaces configs are picked up
by their file name.

Each config trains on the CPU's native oneDNN code path with one thread (as every tool run
of the suite); the configs with a channels-last model (student, teacher or recognizer) train
once more on the AVX2 path (``ONEDNN_MAX_CPU_ISA=AVX2``, forcing the kernels of AVX2-only
CPUs such as AMD Zen 3 on any x86 CPU) with two threads: there torch's channels-last
convolution backward corrupted the heap (``coupleface/models/recognizers/memory_format.py``).
oneDNN's kernel choice depends on the thread count too, so the online-teacher CoupleFace
config trains on all four (code path, 1 or 2 threads) combinations.
"""
import glob
import os.path as osp
import re
import sys

import numpy as np
import pytest
from mmengine.config import Config

import coupleface  # noqa: F401
from coupleface.utils import config_root

E2E = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'e2e')
if E2E not in sys.path:
    sys.path.insert(0, E2E)

from _e2e_helpers import run_tool  # noqa: E402

NUM_IDS, IMGS_PER_ID, BATCH = 10, 3, 16  # 30 images: 2 iterations of 16 (RelationSampler too)
TEACHER = 'arcface/iresnet18-w32_1xb128_synthfaces-56px.py'
CONFIGS = sorted(osp.relpath(p, config_root())
                 for p in glob.glob(osp.join(config_root(), '*', '*synthfaces*.py')))

pytestmark = pytest.mark.slow
AVX2 = {'ONEDNN_MAX_CPU_ISA': 'AVX2', 'OMP_NUM_THREADS': '2'}
#: The online-teacher CoupleFace config (channels-last student and teacher, mining, RAD)
#: also trains on the other two (code path, threads) combinations.
ONLINE = 'coupleface/iresnet18-w8_coupleface-iresnet18-w32_1xb128_synthfaces-56px.py'
EXTRA = {'native-2threads': {'OMP_NUM_THREADS': '2'},
         'avx2-1thread': {'ONEDNN_MAX_CPU_ISA': 'AVX2', 'OMP_NUM_THREADS': '1'}}


def _uses_channels_last(config: str) -> bool:
    model = Config.fromfile(osp.join(config_root(), config)).model
    parts = [model, model.get('student'), (model.get('teacher') or {}).get('model')]
    return any(part and part.get('channels_last') for part in parts)


CODE_PATHS = [pytest.param(config, None, id=f'{config}-native') for config in CONFIGS] + [
    pytest.param(config, AVX2, id=f'{config}-avx2') for config in CONFIGS
    if _uses_channels_last(config)] + [
    pytest.param(ONLINE, env, id=f'{ONLINE}-{name}') for name, env in EXTRA.items()]


def _model_overrides(cfg, teacher_ckpt: str, bank: str) -> str:
    """The ``model`` keys a tiny run changes, as config text."""
    model = cfg.model
    if model.type == 'FaceRecognizer':
        return f'model = dict(head=dict(num_classes={NUM_IDS}))\n'
    assert 'student' in model, f'unknown model type {model.type}: teach this test about it'
    parts = [f'student=dict(head=dict(num_classes={NUM_IDS}))']
    if model.get('teacher'):
        parts.append(f"teacher=dict(checkpoint='{teacher_ckpt}')")
    if model.get('teacher_bank'):
        parts.append(f"teacher_bank=dict(path='{bank}')")
    if model.get('partner_samples'):  # one partner: 15 + 1 keeps 2 iterations of 30 images
        parts.append('partner_samples=1')
    return f"model = dict({', '.join(parts)})\n"


def _write_tiny(path: str, config: str, data_root: str, model: str = '') -> str:
    """A config inheriting ``config`` with the tiny set's data, sizes and one epoch."""
    cfg = Config.fromfile(osp.join(config_root(), config))
    sampler = ''
    if cfg.train_dataloader.sampler.type == 'RelationSampler':
        sampler = f', sampler=dict(batch_size={BATCH})'  # must equal the loader's
    elif cfg.train_dataloader.sampler.type == 'PartnerSampler':
        sampler = f', sampler=dict(batch_size={BATCH}, num_partners=1)'
    text = f'''
_base_ = '{osp.join(config_root(), config)}'
loader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root='{data_root}'))
train_dataloader = dict(loader, batch_size={BATCH}{sampler})
val_dataloader = dict(loader, batch_size=32)
test_dataloader = dict(loader, batch_size=32)
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
custom_hooks = [dict(h, batch_size=32, num_workers=0) if h['type'] == 'RelationMiningHook'
                else h for h in _base_.custom_hooks]
{model}'''
    with open(path, 'w') as f:
        f.write(text)
    return path


def _train(config: str, data_root: str, work: str, model: str = '', env=None) -> str:
    tiny = _write_tiny(osp.join(work, 'tiny_config.py'), config, data_root, model)
    proc = run_tool('train.py', tiny, '--work-dir', work, env_extra=env)
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('synthfaces'))
    run_tool('make_synthfaces.py', root, '--num-ids', str(NUM_IDS), '--imgs-per-id',
             str(IMGS_PER_ID), '--val-pairs', '40', '--test-pairs', '40', '--size', '112',
             '--workers', '1')
    return root


@pytest.fixture(scope='module')
def teacher(data_root, tmp_path_factory):
    """The SynthFaces teacher config trained on the tiny set: (checkpoint, log, bank)."""
    work = str(tmp_path_factory.mktemp('teacher'))
    log = _train(TEACHER, data_root, work,
                 model=f'model = dict(head=dict(num_classes={NUM_IDS}))\n')
    ckpt = osp.join(work, 'epoch_1.pth')
    bank = osp.join(work, 'bank', 'synthfaces')
    run_tool('extract_embeddings.py', osp.join(work, 'tiny_config.py'), ckpt, '--out', bank,
             '--workers', '0', '--batch-size', '32', '--device', 'cpu')
    return ckpt, log, bank


def test_synthfaces_configs_found():
    assert TEACHER in CONFIGS
    assert {'arcface', 'fcd', 'coupleface', 'rkd'} <= {c.split('/')[0] for c in CONFIGS}
    avx2 = {p.values[0] for p in CODE_PATHS if p.values[1] is AVX2}
    # the online-teacher CoupleFace config, channels-last student and teacher, is among them
    assert ONLINE in avx2 and TEACHER in avx2
    assert len([p for p in CODE_PATHS if p.values[0] == ONLINE]) == 4  # 2 paths x 2 threads


def test_teacher_bank_covers_the_training_set(teacher):
    ckpt, _, bank = teacher
    emb = np.load(bank + '.npy')
    assert emb.shape == (NUM_IDS * IMGS_PER_ID, 2, 256) and emb.dtype == np.float16


@pytest.mark.parametrize('config,env', CODE_PATHS)
def test_config_trains_two_iterations(config, env, data_root, teacher, tmp_path):
    ckpt, teacher_log, bank = teacher
    cfg = Config.fromfile(osp.join(config_root(), config))
    if config == TEACHER and env is None:  # trained once by the fixture
        log, work = teacher_log, osp.dirname(ckpt)
    else:
        work = str(tmp_path)
        log = _train(config, data_root, work, _model_overrides(cfg, ckpt, bank), env)
    assert re.search(r'Epoch\(train\) +\[1\]\[2/2\]', log), log[-3000:]
    assert 'loss_cls:' in log
    model = cfg.model
    if model.get('fcd_loss'):
        assert 'loss_fcd:' in log
    if model.get('rad_loss'):
        assert 'loss_rad:' in log
    for name in model.get('extra_losses') or {}:
        assert f'loss_{name}:' in log, name
    sampler = cfg.train_dataloader.sampler
    if any(h['type'] == 'RelationMiningHook' for h in cfg.get('custom_hooks', [])):
        if sampler.get('random_groups'):
            assert 'mining skipped' in log and not osp.exists(osp.join(work, 'relations.npz'))
        else:
            assert f'for {NUM_IDS} identities' in log
            assert osp.isfile(osp.join(work, 'relations.npz'))
    assert 'synth_val/accuracy:' in log  # validation ran on the .bin pairs
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
