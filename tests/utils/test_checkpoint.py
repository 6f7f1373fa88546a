"""Checkpoints in a real MMEngine run: safe loading (resume under torch >= 2.6), refused
pickles, atomic saving by CheckpointHook. State dicts: test_checkpoint_state_dict.py;
atomic_save alone: test_checkpoint_save.py."""
import builtins
import os
import os.path as osp
import pickle
import shutil
import uuid

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner import checkpoint as mm_ckpt
from torch.utils.data import Dataset

import coupleface.utils.checkpoint_load as load_mod
import coupleface.utils.checkpoint_save as save_mod
from coupleface.utils.checkpoint_load import (
    SAFE_GLOBALS,
    CheckpointFormatError,
    UnsafeCheckpointError,
    install_safe_checkpoint_loading,
    safe_torch_load,
)
from coupleface.utils.checkpoint_save import install_atomic_checkpoint_saving

ITERS_PER_EPOCH = 2


# ---------------------------------------------------------------------------
# A tiny real MMEngine training setup
# ---------------------------------------------------------------------------

class ToyDataset(Dataset):
    def __len__(self):
        return 4 * ITERS_PER_EPOCH

    def __getitem__(self, idx):
        gen = torch.Generator().manual_seed(idx)
        return dict(inputs=torch.randn(4, generator=gen), label=torch.tensor(idx % 2))


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, label=None, mode='tensor'):
        logits = self.fc(self.bn(inputs))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, label))
        return logits


class EpochRecorder(Hook):
    def __init__(self):
        self.epochs, self.lrs = [], []

    def before_train_epoch(self, runner):
        self.epochs.append(runner.epoch)
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def make_runner(work_dir, max_epochs=2, resume=False, custom_hooks=None):
    torch.manual_seed(0)  # the model is built before the Runner seeds anything
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'ckpt_test_{uuid.uuid4().hex[:8]}',
        train_dataloader=dict(
            dataset=ToyDataset(), batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
            dict(type='MultiStepLR', milestones=[1, 2], gamma=0.5, by_epoch=True),
        ],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=custom_hooks,
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmengine',
    )


@pytest.fixture(scope='module', autouse=True)
def keep_default_scope():
    """Runners here use the 'mmengine' scope; later tests get back the current one."""
    before = set(DefaultScope._instance_dict)
    yield
    for name in set(DefaultScope._instance_dict) - before:
        DefaultScope._instance_dict.pop(name)


class Interrupt(Hook):
    """Kills training after the second epoch's checkpoint is written (CheckpointHook is
    VERY_LOW, this hook LOWEST)."""
    priority = 'LOWEST'

    def after_train_epoch(self, runner):
        if runner.epoch == 1:
            raise KeyboardInterrupt('simulated crash')


@pytest.fixture(scope='module')
def trained_work_dir(tmp_path_factory):
    """A 3-epoch run interrupted after epoch 2 (checkpoints epoch_1/2.pth)."""
    install_safe_checkpoint_loading()
    install_atomic_checkpoint_saving()
    work_dir = tmp_path_factory.mktemp('interrupted')
    with pytest.raises(KeyboardInterrupt):
        make_runner(work_dir, max_epochs=3, custom_hooks=[Interrupt()]).train()
    return work_dir


def _payload_checkpoint(path, reduce_value):
    class Payload:
        def __reduce__(self):
            return reduce_value

    torch.save({'state_dict': ToyModel().state_dict(), 'meta': Payload()}, str(path))


# ---------------------------------------------------------------------------
# Resume under weights_only
# ---------------------------------------------------------------------------

def test_mmengine_checkpoint_needs_the_allow_list(trained_work_dir):
    """Documents the gap: torch's default weights_only load rejects MMEngine checkpoints."""
    path = trained_work_dir / 'epoch_2.pth'
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(str(path), weights_only=True)
    checkpoint = safe_torch_load(path)
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.data[0].size == 2 * ITERS_PER_EPOCH
    assert isinstance(checkpoint['message_hub']['runtime_info']['eta'], np.floating)
    assert checkpoint['meta']['epoch'] == 2
    # OrderedDict metadata survives (BatchNorm versioning needs it).
    assert checkpoint['state_dict']._metadata['bn']['version'] == 2


def test_resume_continues_at_the_right_epoch(trained_work_dir, tmp_path, monkeypatch):
    work_dir = tmp_path / 'resumed'
    shutil.copytree(trained_work_dir, work_dir)
    assert osp.basename((work_dir / 'last_checkpoint').read_text().strip()) == 'epoch_2.pth'
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_2.pth'))
    saved = safe_torch_load(work_dir / 'epoch_2.pth')

    loaded = []
    real_load = load_mod.safe_torch_load
    monkeypatch.setattr(load_mod, 'safe_torch_load',
                        lambda f, **kw: loaded.append(str(f)) or real_load(f, **kw))
    recorder = EpochRecorder()
    runner = make_runner(work_dir, max_epochs=3, resume=True, custom_hooks=[recorder])
    runner.train()
    monkeypatch.undo()

    assert loaded == [str(work_dir / 'epoch_2.pth')]  # resumed through the safe loader
    assert recorder.epochs == [2]  # only the third epoch ran
    assert runner.epoch == 3 and runner.iter == 3 * ITERS_PER_EPOCH
    # MultiStepLR(milestones 1, 2, gamma 0.5) from lr 0.1: epoch index 2 runs at 0.025.
    assert recorder.lrs[0] == pytest.approx(0.025)
    resumed = safe_torch_load(work_dir / 'epoch_3.pth')
    assert resumed['meta']['epoch'] == 3
    assert resumed['message_hub']['log_scalars']['train/loss'].data[0].size == \
        3 * ITERS_PER_EPOCH
    momentum_before = saved['optimizer']['state'][0]['momentum_buffer']
    assert not torch.equal(resumed['optimizer']['state'][0]['momentum_buffer'], momentum_before)

    # Interrupted + resumed == uninterrupted (weights, BN stats, momentum, schedulers).
    straight_dir = tmp_path / 'straight'
    make_runner(straight_dir, max_epochs=3).train()
    straight = safe_torch_load(straight_dir / 'epoch_3.pth')
    for key, value in straight['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][key], value, rtol=0, atol=1e-7)
    assert resumed['param_schedulers'] == straight['param_schedulers']


# ---------------------------------------------------------------------------
# Refusing pickled code
# ---------------------------------------------------------------------------

PAYLOADS = {
    'os.system': lambda marker: (os.system, (f'touch {marker}',)),
    'builtins.exec': lambda marker: (builtins.exec, (f'open({str(marker)!r}, "w").close()',)),
}


@pytest.mark.parametrize('name', sorted(PAYLOADS))
def test_pickle_payload_is_refused(tmp_path, name):
    install_safe_checkpoint_loading()
    marker = tmp_path / 'MARKER'
    path = tmp_path / 'evil.pth'
    _payload_checkpoint(path, PAYLOADS[name](marker))
    refused = 'posix.system' if name == 'os.system' else name

    with pytest.raises(UnsafeCheckpointError) as err:
        safe_torch_load(path)
    message = str(err.value)
    assert str(path) in message and refused in message and '\n' not in message

    runner = Runner(model=ToyModel(), work_dir=str(tmp_path / 'wd'), default_scope='mmengine',
                    experiment_name=f'evil_{uuid.uuid4().hex[:8]}')
    with pytest.raises(UnsafeCheckpointError, match=str(path)):
        runner.load_checkpoint(str(path))
    with pytest.raises(UnsafeCheckpointError, match=str(path)):
        mm_ckpt.load_checkpoint(ToyModel(), str(path))
    assert not marker.exists()


def test_getattr_stand_in_only_returns_history_buffer_statistics(tmp_path):
    for target, attr in ((HistoryBuffer, 'register_statistics'), (HistoryBuffer, '__init__'),
                         (torch.Tensor, 'add_')):
        path = tmp_path / f'getattr_{attr}.pth'
        _payload_checkpoint(path, (getattr, (target, attr)))
        with pytest.raises(UnsafeCheckpointError, match=f"getattr.*{attr}"):
            safe_torch_load(path)


def test_allow_list_holds_nothing_that_runs_code():
    dangerous = {builtins.getattr, builtins.eval, builtins.exec, builtins.compile,
                 builtins.__import__, builtins.open, os.system}
    for entry in SAFE_GLOBALS:
        obj = entry[0] if isinstance(entry, tuple) else entry
        assert obj not in dangerous
        assert getattr(obj, '__module__', '') not in ('os', 'posix', 'subprocess', 'sys')
        assert obj.__module__ == 'coupleface.utils.checkpoint_load' or \
            obj.__module__.split('.')[0] in ('numpy', 'torch', 'mmengine')
    classes = {e for e in SAFE_GLOBALS if isinstance(e, type)}
    assert type(np.dtype('float64')) in classes and type(np.dtype('int64')) in classes
    assert type(np.dtype(object)) not in classes


def test_numpy1_names_and_torch_version_load(tmp_path):
    """Checkpoints written under numpy 1 name numpy.core.multiarray; both names load."""
    obj = {'arr': np.arange(3, dtype=np.float32), 'scalar': np.float64(2.5),
           'version': torch.__version__}
    path = tmp_path / 'np.pth'
    torch.save(obj, str(path), _use_new_zipfile_serialization=False)  # plain pickle stream
    data = path.read_bytes()
    assert b'numpy._core.multiarray' in data
    path.write_bytes(data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray'))
    loaded = safe_torch_load(path)
    np.testing.assert_array_equal(loaded['arr'], obj['arr'])
    assert loaded['scalar'] == 2.5 and loaded['version'] == torch.__version__


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_torch_load(tmp_path / 'nope.pth')
    good = tmp_path / 'good.pth'
    torch.save({'w': torch.ones(64, 64)}, str(good))
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:200])
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint' * 8)
    for path in (truncated, junk):
        with pytest.raises(CheckpointFormatError, match=path.name):
            safe_torch_load(path)


def test_installed_schemes_route_through_safe_loading(tmp_path, monkeypatch):
    install_safe_checkpoint_loading()
    install_safe_checkpoint_loading()  # idempotent
    loader = mm_ckpt.CheckpointLoader._get_checkpoint_loader
    assert loader('/some/file.pth') is load_mod.load_from_local_safe
    assert loader('https://example.com/a.pth') is load_mod.load_from_http_safe
    assert loader('http://example.com/a.pth') is load_mod.load_from_http_safe

    # http(s): downloaded once into the hub cache, then loaded safely.
    evil, good = tmp_path / 'evil.pth', tmp_path / 'good.pth'
    _payload_checkpoint(evil, (os.system, ('true',)))
    torch.save({'state_dict': {'w': torch.arange(3.)}}, str(good))
    downloads = []

    def fake_download(url, dst, *args, **kwargs):
        downloads.append(url)
        shutil.copy(evil if 'evil' in url else good, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        mm_ckpt._load_checkpoint('https://example.com/evil.pth')
    for _ in range(2):
        out = mm_ckpt._load_checkpoint('https://example.com/good.pth', map_location='cpu')
        assert torch.equal(out['state_dict']['w'], torch.arange(3.))
    assert downloads == ['https://example.com/evil.pth', 'https://example.com/good.pth']


# ---------------------------------------------------------------------------
# Atomic saving by CheckpointHook
# ---------------------------------------------------------------------------

def test_checkpoint_hook_saves_atomically(tmp_path, monkeypatch):
    install_atomic_checkpoint_saving()
    install_atomic_checkpoint_saving()  # idempotent
    saves, pointer_at_save = [], []
    real_atomic_save = save_mod.atomic_save

    def spy(obj, path):
        pointer = tmp_path / 'last_checkpoint'
        pointer_at_save.append(pointer.read_text() if pointer.exists() else None)
        saves.append(str(path))
        real_atomic_save(obj, path)

    monkeypatch.setattr(save_mod, 'atomic_save', spy)
    make_runner(tmp_path).train()
    expected = [osp.join(str(tmp_path), f'epoch_{i}.pth') for i in (1, 2)]
    assert saves == expected
    # The pointer names a checkpoint only after that checkpoint's rename.
    assert pointer_at_save == [None, expected[0]]
    assert (tmp_path / 'last_checkpoint').read_text() == expected[1]
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
