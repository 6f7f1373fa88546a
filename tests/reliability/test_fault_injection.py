"""Fault injection: every corrupt input ends in its documented error (or skip), with a one-line
message that names the file and the offset, line or key (docs/reliability.md).

Inputs are built with the package's own writers (``write_insightface_rec``,
``MXIndexedRecordIOWriter``, ``write_bin``, ``write_teacher_bank``, ``save_relations``) and
the IJB fixture of ``tests/_ijb_fixture.py``, then damaged one way each.
"""
import os
import os.path as osp
import pickle
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from coupleface.datasets.bin_io import BinFormatError, UnsafeFileError, read_bin, write_bin
from coupleface.datasets.ijb import IJBDataset, IJBFormatError
from coupleface.datasets.mx_face_dataset import MXFaceDataset
from coupleface.datasets.mx_record import MXIndexedRecordIO
from coupleface.datasets.mx_record_codec import RecordIOError
from coupleface.datasets.mx_record_writer import write_insightface_rec
from coupleface.datasets.samplers import RelationSampler
from coupleface.datasets.transforms import ImageDecodeError, LoadFaceImage, PackFaceInputs
from coupleface.engine.hooks import ConfigCheckHook
from coupleface.mining import load_relations, save_relations
from coupleface.models.distillers.teacher_bank import TeacherBank, write_teacher_bank
from coupleface.utils.checkpoint_load import (
    CheckpointFormatError,
    UnsafeCheckpointError,
    safe_torch_load,
)
from coupleface.utils.checkpoint_state_dict import CheckpointKeyError, load_state_dict_flexible

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
from _ijb_fixture import copy_fixture, replace_line, shared_ijb_fixture  # noqa: E402

LABELS = [0, 0, 0, 1, 1, 1]


def _one_line(exc_info, *parts):
    message = str(exc_info.value)
    assert '\n' not in message, message
    for part in parts:
        assert str(part) in message, (part, message)
    return message


def _jpegs(n, seed=0, size=16):
    rng = np.random.default_rng(seed)
    return [cv2.imencode('.jpg', rng.integers(0, 256, (size, size, 3), dtype=np.uint8))[1]
            .tobytes() for _ in range(n)]


@pytest.fixture
def rec_set(tmp_path):
    """A valid insightface RecordIO set: 2 identities x 3 JPEGs (keys 1..6)."""
    info = write_insightface_rec(str(tmp_path / 'train'), zip(LABELS, _jpegs(len(LABELS))))
    with open(info['idx_path']) as f:
        offsets = {int(k): int(o) for k, o in (ln.split('\t') for ln in f.read().split('\n')
                                                if ln)}
    return tmp_path, info, offsets


# ---------------------------------------------------------------------------
# RecordIO (.rec / .idx)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('cut', ['last record', 'half'])
def test_truncated_rec(rec_set, cut):
    root, info, offsets = rec_set
    size = osp.getsize(info['rec_path'])
    last = max(offsets, key=offsets.get)
    with open(info['rec_path'], 'r+b') as f:
        f.truncate(size - 6 if cut == 'last record' else size // 2)
    with pytest.raises(RecordIOError) as err:
        MXFaceDataset(str(root), property_file=None)
    if cut == 'last record':  # the last record's payload runs past the end of the file
        _one_line(err, info['rec_path'], f'record key {last} at offset {offsets[last]}',
                  'is truncated')
    else:  # records are indexed past the end: found when the index is opened
        _one_line(err, info['idx_path'], f'key {last} has offset {offsets[last]}',
                  'past the end', 'truncated .rec')


def test_idx_offset_past_the_end(rec_set):
    root, info, offsets = rec_set
    size = osp.getsize(info['rec_path'])
    with open(info['idx_path'], 'a') as f:
        f.write(f'99\t{size + 64}\n')
    with pytest.raises(RecordIOError) as err:
        MXIndexedRecordIO(info['idx_path'], info['rec_path'])
    _one_line(err, info['idx_path'], 'key 99', f'offset {size + 64}', 'past the end')


def test_wrong_magic(rec_set):
    root, info, offsets = rec_set
    with open(info['rec_path'], 'r+b') as f:
        f.seek(offsets[3])
        f.write(b'JUNK')
    with pytest.raises(RecordIOError) as err:
        MXFaceDataset(str(root), property_file=None)  # the header scan reads every record
    _one_line(err, info['rec_path'], 'wrong magic 0x4b4e554a', f'offset {offsets[3]}',
              'record key 3')


@pytest.mark.parametrize('line', ['3 100', '3\t10x', '3\t-8', '3\t6', '3\t1\t2',
                                  '99999999999999999999\t0'])
def test_malformed_idx_line(rec_set, line):
    root, info, _ = rec_set
    with open(info['idx_path']) as f:
        lines = f.read().splitlines()
    lines[3] = line
    with open(info['idx_path'], 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with pytest.raises(RecordIOError) as err:
        MXIndexedRecordIO(info['idx_path'], info['rec_path'])
    _one_line(err, info['idx_path'], 'line 4:', repr(line)[:20])


def test_corrupt_jpeg_in_a_valid_record_is_skipped_counted_then_fatal(tmp_path, monkeypatch):
    import coupleface.datasets.transforms.loading as loading
    images = _jpegs(len(LABELS))
    images[2] = images[2][:40]  # a valid record holding a truncated JPEG
    images[4] = b'\xff\xd8\xff\xe0' + b'\x00' * 64
    write_insightface_rec(str(tmp_path / 'train'), zip(LABELS, images))
    logs = []
    monkeypatch.setattr(loading, 'print_log', lambda msg, **kw: logs.append(msg))
    load = LoadFaceImage(size=None, on_error='skip', max_failures=1)
    ds = MXFaceDataset(str(tmp_path), property_file=None, pipeline=[load, PackFaceInputs()])
    ds._rand_another = lambda: 0  # mmengine re-fetches a random sample: make it a good one
    out = ds[2]  # record key 3: skipped, another sample is fetched
    assert out['data_samples'].sample_idx != 2
    assert load.num_failures == 1 and len(logs) == 1
    assert 'record key 3 (sample 2)' in logs[0] and '1/1 allowed' in logs[0]
    with pytest.raises(ImageDecodeError) as err:  # record key 5: past max_failures
        ds[4]
    _one_line(err, 'more than max_failures=1', 'record key 5 (sample 4)')
    # evaluation never skips: the first bad record is an error naming it
    test_ds = MXFaceDataset(str(tmp_path), property_file=None, test_mode=True,
                            pipeline=[LoadFaceImage(size=None), PackFaceInputs()])
    with pytest.raises(ImageDecodeError) as err:
        test_ds[2]
    _one_line(err, 'record key 3 (sample 2)', 'does not decode')


# ---------------------------------------------------------------------------
# .bin pair sets
# ---------------------------------------------------------------------------

@pytest.fixture
def bin_path(tmp_path):
    path = str(tmp_path / 'pairs.bin')
    write_bin(path, _jpegs(4), [True, False])
    return path


def test_bin_odd_image_count(tmp_path):
    path = str(tmp_path / 'odd.bin')
    with open(path, 'wb') as f:
        pickle.dump((_jpegs(3), [True]), f, protocol=4)
    with pytest.raises(BinFormatError) as err:
        read_bin(path)
    _one_line(err, path, 'odd number of images (3)')


def test_bin_truncated_pickle(bin_path):
    size = osp.getsize(bin_path)
    with open(bin_path, 'r+b') as f:
        f.truncate(size // 2)
    with pytest.raises(BinFormatError) as err:
        read_bin(bin_path)
    _one_line(err, bin_path, 'not a readable pickle')


def test_bin_malicious_global_does_not_run(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    path = str(tmp_path / 'evil.bin')
    with open(path, 'wb') as f:
        pickle.dump(([Payload(), b'x'], [True]), f, protocol=2)
    with pytest.raises(UnsafeFileError) as err:
        read_bin(path)
    _one_line(err, path, 'refused to load global posix.system')
    assert not marker.exists()


# ---------------------------------------------------------------------------
# IJB meta files
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('kind,lineno,text,expect', [
    ('template_pair_label', 4, '1000 999999 1',
     'ijbc_template_pair_label.txt:4: template_id2 999999 is not a template'),
    ('face_tid_mid', 2, '2.jpg only-two', 'ijbc_face_tid_mid.txt:2: expected'),
    ('name_5pts_score', 3, '3.jpg 1 2 3', 'ijbc_name_5pts_score.txt:3: expected'),
])
def test_ijb_meta_errors_name_file_and_line(tmp_path, kind, lineno, text, expect):
    bad = copy_fixture(shared_ijb_fixture(), str(tmp_path / 'bad'))
    replace_line(bad.meta_path(kind), lineno, text)
    with pytest.raises(IJBFormatError) as err:
        IJBDataset(bad.root, name='ijbc')
    _one_line(err, expect)


def test_ijb_missing_image_names_file_and_line(tmp_path):
    fx = shared_ijb_fixture()
    bad = copy_fixture(fx, str(tmp_path / 'bad'), copy_images=True)
    os.remove(osp.join(bad.root, 'loose_crop', fx.images[3]['name']))
    with pytest.raises(FileNotFoundError) as err:
        IJBDataset(bad.root)
    _one_line(err, 'ijbc_face_tid_mid.txt:4', fx.images[3]['name'], 'missing')


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------

def test_truncated_checkpoint(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'state_dict': nn.Linear(4, 4).state_dict(), 'meta': {'iter': 3}}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointFormatError) as err:
        safe_torch_load(str(path))
    _one_line(err, str(path), 'cannot read checkpoint')


def test_checkpoint_with_pickle_payload_does_not_run(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': nn.Linear(2, 2).state_dict(), 'meta': Payload()}, path)
    with pytest.raises(UnsafeCheckpointError) as err:
        safe_torch_load(str(path))
    _one_line(err, str(path), 'system', 'allow-list')
    assert not marker.exists()


def test_teacher_keys_missing_and_unexpected_are_listed(tmp_path):
    class Teacher(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4, 8)

    state = Teacher().state_dict()
    state.pop('fc.bias')
    state['head.weight'] = torch.zeros(3, 8)
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointKeyError) as err:
        load_state_dict_flexible(Teacher(), str(path))
    first, *listing = str(err.value).splitlines()  # one line, then the key listing
    assert str(path) in first and 'does not match Teacher' in first
    assert any('missing keys: fc.bias' in ln for ln in listing)
    assert any('unexpected keys: head.weight' in ln for ln in listing)


# ---------------------------------------------------------------------------
# Config mistakes
# ---------------------------------------------------------------------------

class _Head(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes

    def margin_logits(self, *args):  # marks a margin head
        raise NotImplementedError


def _config_runner(head_classes, data_classes, loader_bs=8, sampler_bs=None):
    model = nn.Module()
    model.head = _Head(head_classes)
    dataset = SimpleNamespace(num_classes=data_classes, data_root='data/x')
    loader = SimpleNamespace(batch_size=loader_bs, dataset=dataset,
                             sampler=SimpleNamespace(batch_size=sampler_bs or loader_bs))
    return SimpleNamespace(train_dataloader=loader, model=model, hooks=[])


def test_num_classes_mismatch():
    with pytest.raises(ValueError) as err:
        ConfigCheckHook().before_train(_config_runner(head_classes=10, data_classes=8))
    _one_line(err, 'num_classes=10', '8 identities', 'data/x')


def test_sampler_batch_arithmetic():
    class Ids:
        class_to_indices = [np.arange(4 * c, 4 * c + 4) for c in range(8)]

        def __len__(self):
            return 32

    with pytest.raises(ValueError) as err:
        RelationSampler(Ids(), batch_size=24, group_size=4, images_per_identity=4, seed=0,
                        rank=0, world_size=1)
    _one_line(err, 'batch_size=24', '4 x images_per_identity=4 = 16', 'multiple of 16')
    with pytest.raises(ValueError) as err:  # dataloader and sampler disagree
        ConfigCheckHook().before_train(_config_runner(8, 8, loader_bs=32, sampler_bs=16))
    _one_line(err, 'train_dataloader.batch_size=32', 'sampler.batch_size=16')


def test_teacher_bank_from_another_dataset(tmp_path):
    prefix = str(tmp_path / 'bank')
    emb = np.random.default_rng(0).standard_normal((10, 2, 4)).astype(np.float32)
    write_teacher_bank(prefix, emb, dict(teacher_sha256='sha256:aa',
                                         dataset='MXFaceDataset:/data/ms1m:10'))
    with pytest.raises(ValueError) as err:
        TeacherBank(prefix, expect_meta=dict(dataset='MXFaceDataset:/data/glint:10'))
    _one_line(err, 'bank.json', 'dataset', '/data/glint')


def test_relations_from_another_dataset(tmp_path):
    path = str(tmp_path / 'relations.npz')
    rng = np.random.default_rng(0)
    save_relations(path, rng.integers(0, 5, (5, 2)), rng.random((5, 2)), rng.random((5, 3)),
                   dict(teacher_sha256='aa', dataset_len=40, num_classes=5, k=2))
    with pytest.raises(ValueError) as err:
        load_relations(path, expect_meta=dict(teacher_sha256='aa', dataset_len=41,
                                              num_classes=5, k=2))
    _one_line(err, path, 'dataset_len=40', '41')


def test_corrupt_relations_file_is_one_line(tmp_path):
    path = str(tmp_path / 'relations.npz')
    rng = np.random.default_rng(0)
    save_relations(path, rng.integers(0, 5, (5, 2)), rng.random((5, 2)), rng.random((5, 3)),
                   dict(dataset_len=40))
    with open(path, 'r+b') as f:
        f.truncate(osp.getsize(path) // 2)
    with pytest.raises(ValueError) as err:
        load_relations(path)
    _one_line(err, path)
