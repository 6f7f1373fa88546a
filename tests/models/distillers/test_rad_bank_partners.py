"""RAD partners from the TeacherBank: labelled banks, the seeded draw, the loss, errors."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from coupleface.models.distillers import CoupleFaceDistiller, TeacherBank, write_teacher_bank
from coupleface.models.distillers.coupleface_distiller import draw_bank_partners
from coupleface.models.losses import RelationAwareDistillationLoss
from coupleface.registry import DATASETS, MODELS

SIZE, DIM, ROWS = 16, 16, 12
META = dict(teacher_sha256='sha256:abcd', dataset='tiny')
REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def _backbone(base, emb):
    return dict(type='IResNet', arch=18, input_size=SIZE, base_channels=base,
                embedding_size=emb)


def _student():
    return dict(type='FaceRecognizer', backbone=_backbone(4, 8),
                head=dict(type='ArcFaceHead', num_classes=3, in_channels=8))


def _bank(tmp_path, labels=True, name='bank'):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(ROWS, 2, DIM)).astype(np.float32)
    bank_labels = rng.integers(0, 3, size=ROWS) if labels else None
    prefix = str(tmp_path / name)
    write_teacher_bank(prefix, emb, META, labels=bank_labels)
    return prefix, emb.astype(np.float16).astype(np.float32), bank_labels


def _distiller(prefix, **kw):
    cfg = dict(student=_student(), teacher_bank=dict(path=prefix),
               connector=dict(type='LinearConnector', in_channels=8, out_channels=DIM),
               rad_loss=dict(type='RelationAwareDistillationLoss', relation='cross',
                             distance='l2', num_negatives=4))
    cfg.update(kw)
    return CoupleFaceDistiller(**cfg)


def _batch(n=4):
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 255, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    samples = []
    for i in range(n):
        sample = DataSample().set_gt_label(i % 3)
        sample.set_metainfo(dict(sample_idx=i, flip=bool(i % 2)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _expected_draw(num_rows, num, seed, iteration):
    """The documented draw, written out again: SeedSequence -> torch.Generator -> Floyd."""
    words = np.random.SeedSequence([seed, iteration, 0xBA4C]).generate_state(2)
    gen = torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))
    uniform = torch.rand(num, generator=gen, dtype=torch.float64)
    rows = []
    for k, j in enumerate(range(num_rows - num, num_rows)):
        row = min(int(float(uniform[k]) * (j + 1)), j)
        rows.append(j if row in rows else row)
    return rows


@pytest.fixture
def hub_iter():
    hub = MessageHub.get_current_instance()
    old = hub.get_info('iter', 0)
    yield lambda it: hub.update_info('iter', it)
    hub.update_info('iter', old)


# -- the bank's labels ---------------------------------------------------------------------
def test_bank_labels_written_recorded_and_read(tmp_path):
    prefix, _, labels = _bank(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ['bank.json', 'bank.labels.npy', 'bank.npy']
    with open(prefix + '.json') as f:
        record = json.load(f)
    assert record == dict(META, num_samples=ROWS, embedding_dim=DIM, dtype='float16',
                          labels='bank.labels.npy')
    raw = np.load(prefix + '.labels.npy')
    assert raw.dtype == np.int64 and np.array_equal(raw, labels)
    bank = TeacherBank(prefix)
    assert np.array_equal(bank.labels, labels) and not bank.labels.flags.writeable
    assert bank.lookup_labels(torch.tensor([3, 0, 3])).tolist() == labels[[3, 0, 3]].tolist()
    with pytest.raises(IndexError, match='out of range'):
        bank.lookup_labels(torch.tensor([ROWS]))

    # a bank written without labels (as before labels existed) opens; labels is None
    old, _, _ = _bank(tmp_path, labels=False, name='old')
    old_bank = TeacherBank(old)
    assert old_bank.labels is None and 'labels' not in old_bank.meta
    assert not osp.exists(old + '.labels.npy')
    with pytest.raises(ValueError, match='old.json has no identity labels'):
        old_bank.lookup_labels(torch.tensor([0]))


def test_bank_label_errors(tmp_path):
    emb = np.zeros((4, 2, DIM), np.float32)
    prefix = str(tmp_path / 'sub' / 'bank')
    with pytest.raises(ValueError, match=r'shape \(4,\)'):
        write_teacher_bank(prefix, emb, META, labels=[0, 1, 2])
    with pytest.raises(ValueError, match='integers'):
        write_teacher_bank(prefix, emb, META, labels=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match='must not set'):
        write_teacher_bank(prefix, emb, dict(META, labels='x'))
    assert not osp.exists(tmp_path / 'sub') or os.listdir(tmp_path / 'sub') == []
    # chunks + labels (a tensor) == array + labels
    write_teacher_bank(prefix, iter([emb[:3], emb[3:]]), META, num_samples=4,
                       labels=torch.tensor([3, 1, 4, 1]))
    assert TeacherBank(prefix).labels.tolist() == [3, 1, 4, 1]
    os.remove(prefix + '.labels.npy')
    with pytest.raises(FileNotFoundError, match='bank.labels.npy'):
        TeacherBank(prefix)
    np.save(prefix + '.labels.npy', np.zeros(5, np.int64))
    with pytest.raises(ValueError, match=r'shape \(4,\)'):
        TeacherBank(prefix)


# -- the draw ------------------------------------------------------------------------------
def test_draw_is_seeded_distinct_and_documented():
    for num_rows, num, seed, it in ((12, 5, 0, 7), (10**7, 64, 123, 0), (6, 6, 1, 2)):
        rows = draw_bank_partners(num_rows, num, seed, it)
        assert rows.dtype == torch.long and rows.tolist() == _expected_draw(num_rows, num,
                                                                             seed, it)
        assert len(set(rows.tolist())) == num and 0 <= min(rows.tolist())
        assert max(rows.tolist()) < num_rows
    a = draw_bank_partners(10**6, 32, 0, 7)
    assert torch.equal(a, draw_bank_partners(10**6, 32, 0, 7))
    assert not torch.equal(a, draw_bank_partners(10**6, 32, 0, 8))
    assert not torch.equal(a, draw_bank_partners(10**6, 32, 1, 7))
    # roughly uniform: every row of a small bank is drawn about equally often
    counts = np.bincount(np.concatenate([draw_bank_partners(10, 3, 0, it).numpy()
                                         for it in range(2000)]), minlength=10)
    assert counts.min() > 0.8 * 600 and counts.max() < 1.2 * 600
    with pytest.raises(ValueError, match='cannot draw 4 distinct rows'):
        draw_bank_partners(3, 4, 0, 0)


# -- the loss ------------------------------------------------------------------------------
def test_rad_with_bank_partners_equals_a_hand_call(tmp_path, hub_iter):
    prefix, emb, bank_labels = _bank(tmp_path)
    model = _distiller(prefix, rad_bank_partners=5)
    assert model.run_seed == 0
    model.set_run_seed(123)  # what AugmentSeedHook does with runner.seed
    plain = _distiller(prefix)
    plain.load_state_dict(model.state_dict())
    assert model.rad_bank_partners == 5 and plain.rad_bank_partners == 0
    model.eval()
    plain.eval()
    data = model.data_preprocessor(_batch(), False)
    rad = RelationAwareDistillationLoss(relation='cross', distance='l2', num_negatives=4)

    hub_iter(7)
    rows = _expected_draw(ROWS, 5, 123, 7)
    assert model.bank_partner_indices().tolist() == rows
    with torch.no_grad():
        losses = model(**data, mode='loss')
        again = model(**data, mode='loss')
        without = plain(**data, mode='loss')
        student = model.connector(model.student.extract_feat(data['inputs'])).float()
        teacher = model.teacher_embeddings(data['inputs'], data['data_samples'])
        labels = torch.tensor([0, 1, 2, 0])
        expected = rad(student, teacher, labels, bank_teacher=torch.from_numpy(emb[rows, 0]),
                       bank_labels=torch.from_numpy(bank_labels[rows]))
        expected_plain = rad(student, teacher, labels)
    torch.testing.assert_close(losses['loss_rad'], expected, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(without['loss_rad'], expected_plain, rtol=1e-6, atol=1e-7)
    assert float(losses['loss_rad']) != pytest.approx(float(without['loss_rad']), rel=1e-3)
    assert torch.equal(losses['loss_rad'], again['loss_rad'])  # same iteration, same rows
    torch.testing.assert_close(losses['loss_cls'], without['loss_cls'])

    # original view, labels from the bank
    bank_t, bank_l = model.bank_partners(torch.device('cpu'))
    assert torch.equal(bank_t, torch.from_numpy(emb[rows, 0]))
    assert bank_l.tolist() == bank_labels[rows].tolist()

    hub_iter(8)  # another iteration: other rows, another loss
    other = model.bank_partner_indices()
    assert other.tolist() == _expected_draw(ROWS, 5, 123, 8) and other.tolist() != rows
    assert model.bank_partner_indices(7).tolist() == rows
    with torch.no_grad():
        later = model(**data, mode='loss')
    assert not torch.equal(later['loss_rad'], losses['loss_rad'])


def test_rad_bank_partners_errors(tmp_path):
    prefix, _, _ = _bank(tmp_path)
    torch.manual_seed(1)
    rec = MODELS.build(dict(type='FaceRecognizer', backbone=_backbone(8, DIM)))
    ckpt = str(tmp_path / 'backbone.pth')
    torch.save(rec.backbone.state_dict(), ckpt)
    online = dict(model=dict(type='FaceRecognizer', backbone=_backbone(8, DIM)),
                  checkpoint=ckpt)
    with pytest.raises(ValueError, match='needs teacher_bank') as err:
        _distiller(None, teacher=online, teacher_bank=None, rad_bank_partners=4)
    assert '\n' not in str(err.value)
    with pytest.raises(ValueError, match='rad_loss is None'):
        _distiller(prefix, rad_loss=None, rad_bank_partners=4)
    with pytest.raises(ValueError, match="relation='cross'"):
        _distiller(prefix, rad_bank_partners=4,
                   rad_loss=dict(type='RelationAwareDistillationLoss', relation='student'))
    with pytest.raises(ValueError, match='exceeds the 12 rows'):
        _distiller(prefix, rad_bank_partners=ROWS + 1)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match='integer >= 0'):
            _distiller(prefix, rad_bank_partners=bad)
    old, _, _ = _bank(tmp_path, labels=False, name='old')
    with pytest.raises(ValueError) as err:
        _distiller(old, rad_bank_partners=4)
    msg = str(err.value)
    assert '\n' not in msg and osp.join(str(tmp_path), 'old.json') in msg and 'labels' in msg
    # an unlabelled bank is fine without partners; the online teacher with 0 as well
    assert _distiller(old).rad_bank_partners == 0
    assert _distiller(None, teacher=online, teacher_bank=None).rad_bank_partners == 0


# -- tools/extract_embeddings.py -----------------------------------------------------------
def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'extract_embeddings', osp.join(REPO, 'tools', 'extract_embeddings.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extract_embeddings_writes_the_datasets_labels(tmp_path):
    root = tmp_path / 'faces'
    rng = np.random.default_rng(0)
    for ident, count in (('a', 2), ('b', 1), ('c', 3)):
        os.makedirs(root / ident)
        for k in range(count):
            cv2.imwrite(str(root / ident / f'{k}.png'),
                        rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))
    torch.manual_seed(0)
    rec = MODELS.build(dict(type='FaceRecognizer', backbone=_backbone(4, 8)))
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': rec.state_dict()}, ckpt)
    dataset_cfg = dict(type='ImageFolderFaceDataset', data_root=str(root), use_cache=False,
                       pipeline=[dict(type='LoadFaceImage', size=SIZE),
                                 dict(type='PackFaceInputs')])
    config = tmp_path / 'teacher_cfg.py'
    config.write_text(
        f'model = dict(type="FaceRecognizer", backbone={_backbone(4, 8)!r})\n'
        f'train_dataloader = dict(batch_size=4, dataset={dataset_cfg!r})\n')
    prefix = str(tmp_path / 'bank' / 'tiny')
    tool = _load_tool()
    tool.main([str(config), ckpt, '--out', prefix, '--workers', '0', '--batch-size', '4',
               '--device', 'cpu'])

    dataset = DATASETS.build(dataset_cfg)
    bank = TeacherBank(prefix)
    assert len(bank) == 6 and bank.meta['labels'] == 'tiny.labels.npy'
    assert bank.labels.tolist() == dataset.get_gt_labels().tolist() == [0, 0, 1, 2, 2, 2]
    assert bank.labels.tolist() == [int(dataset.get_data_info(i)['gt_label'])
                                    for i in range(len(dataset))]

    class NoGetter:  # a dataset without get_gt_labels: labels from its data infos
        def __len__(self):
            return len(dataset)

        def get_data_info(self, i):
            return dataset.get_data_info(i)

    assert tool.dataset_labels(NoGetter()).tolist() == [0, 0, 1, 2, 2, 2]
