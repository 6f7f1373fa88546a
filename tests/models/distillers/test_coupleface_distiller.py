"""CoupleFaceDistiller: frozen hidden teacher, safe loading, connector, loss terms."""
import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.structures import DataSample

from coupleface.models.distillers import CoupleFaceDistiller
from coupleface.registry import MODELS
from coupleface.utils.checkpoint_state_dict import CheckpointKeyError
from coupleface.utils.file_hash import file_sha256

SIZE = 16


def _backbone(base, emb):
    return dict(type='IResNet', arch=18, input_size=SIZE, base_channels=base,
                embedding_size=emb)


def _student(emb=8):
    return dict(type='FaceRecognizer', backbone=_backbone(4, emb),
                head=dict(type='ArcFaceHead', num_classes=3, in_channels=emb))


def _teacher_ckpt(tmp_path, bare=False, emb=16):
    torch.manual_seed(1)
    rec = MODELS.build(dict(type='FaceRecognizer', backbone=_backbone(8, emb),
                            head=dict(type='ArcFaceHead', num_classes=5, in_channels=emb)))
    path = tmp_path / ('backbone.pth' if bare else 'teacher.pth')
    state = rec.backbone.state_dict() if bare else {'state_dict': rec.state_dict()}
    torch.save(state, path)
    return str(path), rec


def _distiller(tmp_path, bare=True, **kw):
    path, rec = _teacher_ckpt(tmp_path, bare=bare)
    cfg = dict(student=_student(),
               teacher=dict(model=dict(type='FaceRecognizer', backbone=_backbone(8, 16)),
                            checkpoint=path),
               connector=dict(type='LinearConnector', in_channels=8, out_channels=16),
               fcd_loss=dict(type='FeatureConsistencyLoss'),
               rad_loss=dict(type='RelationAwareDistillationLoss'))
    cfg.update(kw)
    return CoupleFaceDistiller(**cfg), rec, path


def _batch(n=4, teacher_view=False):
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 255, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    samples = []
    for i in range(n):
        sample = DataSample().set_gt_label(i % 3)
        sample.set_metainfo(dict(sample_idx=i, flip=False))
        samples.append(sample)
    data = dict(inputs=inputs, data_samples=samples)
    if teacher_view:
        data['teacher_inputs'] = [255 - x for x in inputs]
    return data


@pytest.mark.parametrize('bare', [True, False])
def test_teacher_loaded_frozen_hidden(tmp_path, bare):
    model, rec, path = _distiller(tmp_path, bare=bare)
    teacher = model.teacher
    for k, v in rec.backbone.state_dict().items():
        torch.testing.assert_close(teacher.backbone.state_dict()[k], v, rtol=0, atol=0)
    assert teacher.head is None
    assert all(not p.requires_grad for p in teacher.parameters())
    assert not any('teacher' in n for n, _ in model.named_parameters())
    state = model.state_dict()
    assert not any(k.startswith('_teacher') or k.startswith('teacher.') for k in state)
    assert state['_extra_state'] == dict(teacher_checkpoint=str(tmp_path / path.split('/')[-1]),
                                         teacher_sha256=file_sha256(path))
    model.train()
    assert model.student.training and not teacher.training


def test_teacher_from_a_distillers_checkpoint_is_its_student(tmp_path):
    # a distilled student can teach the next one: the teacher reads the `student.*` keys
    path, _ = _teacher_ckpt(tmp_path, bare=True)
    torch.manual_seed(2)
    first = CoupleFaceDistiller(
        student=dict(type='FaceRecognizer', backbone=_backbone(8, 16),
                     head=dict(type='ArcFaceHead', num_classes=3, in_channels=16)),
        teacher=dict(model=dict(type='FaceRecognizer', backbone=_backbone(8, 16)),
                     checkpoint=path),
        fcd_loss=dict(type='FeatureConsistencyLoss'))
    distilled = tmp_path / 'distilled.pth'
    torch.save({'state_dict': first.state_dict()}, distilled)
    second, _, _ = _distiller(tmp_path, teacher=dict(
        model=dict(type='FaceRecognizer', backbone=_backbone(8, 16)),
        checkpoint=str(distilled)))
    for k, v in first.student.backbone.state_dict().items():
        torch.testing.assert_close(second.teacher.backbone.state_dict()[k], v, rtol=0, atol=0)


def test_training_steps_leave_teacher_bit_identical(tmp_path):
    model, _, _ = _distiller(tmp_path)
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(2):
        losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        opt.step()
        opt.zero_grad()
    for k, v in model.teacher.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert set(losses) >= {'loss_cls', 'loss_fcd', 'loss_rad'}


@MODELS.register_module(force=True)
class _LabelProbe(torch.nn.Module):
    """Records whether the distiller handed it labels (declared with needs_labels)."""

    needs_labels = True

    def forward(self, student, teacher, labels=None):
        self.seen = None if labels is None else labels.tolist()
        return student.sum() * 0


@MODELS.register_module(force=True)
class _Undeclared(_LabelProbe):
    needs_labels = False  # a `labels` parameter alone does not make the distiller pass them


def test_labels_go_to_the_losses_that_declare_them(tmp_path):
    model, _, _ = _distiller(tmp_path, extra_losses=dict(probe=dict(type='_LabelProbe'),
                                                         other=dict(type='_Undeclared')))
    model.train()
    losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
    assert {'loss_probe', 'loss_other'} <= set(losses)
    assert model.extra_losses['probe'].seen == [0, 1, 2, 0]
    assert model.extra_losses['other'].seen is None


def test_teacher_view_and_predict_student_only(tmp_path):
    model, _, _ = _distiller(tmp_path)
    model.eval()
    data = model.data_preprocessor(_batch(teacher_view=True), False)
    t_view = model.teacher_embeddings(data['inputs'], data['data_samples'],
                                      data['teacher_inputs'])
    torch.testing.assert_close(t_view, model.teacher.extract_feat(data['teacher_inputs']))
    assert not torch.allclose(t_view, model.teacher.extract_feat(data['inputs']))
    preds = model(data['inputs'], data['data_samples'], mode='predict')
    emb = torch.stack([p.embedding for p in preds])
    assert emb.shape == (4, 8)  # the student's 8-d, not the teacher's 16-d
    torch.testing.assert_close(emb, model.student.embed(data['inputs']))


def test_errors_before_training(tmp_path):
    path, _ = _teacher_ckpt(tmp_path)
    teacher = dict(model=dict(type='FaceRecognizer', backbone=_backbone(8, 16)), checkpoint=path)
    with pytest.raises(ValueError, match='add connector'):
        CoupleFaceDistiller(student=_student(), teacher=teacher)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        CoupleFaceDistiller(student=_student(), teacher=dict(teacher, checkpoint='nope.pth'))
    wrong = dict(teacher, model=dict(type='FaceRecognizer', backbone=_backbone(4, 16)))
    with pytest.raises(CheckpointKeyError, match='shape mismatches'):
        CoupleFaceDistiller(student=_student(16), teacher=wrong)
    with pytest.raises(ValueError, match='exactly one'):
        CoupleFaceDistiller(student=_student())


def test_distillation_warmup_and_stop(tmp_path):
    model, _, _ = _distiller(tmp_path, distill_warmup_iters=4, distill_stop_iter=10)
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    assert model.distill_factor() == pytest.approx(0.25)
    hub.update_info('iter', 5)
    assert model.distill_factor() == 1.0
    hub.update_info('iter', 10)
    assert model.distill_factor() == 0.0
    losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
    assert float(losses['loss_fcd']) == 0.0 and float(losses['loss_cls']) > 0
    hub.update_info('iter', 0)


def test_bank_gives_the_online_teachers_losses(tmp_path):
    """Un-augmented views: bank lookup by (sample_idx, flip) == online teacher forward."""
    from coupleface.models.distillers import write_teacher_bank

    online, _, path = _distiller(tmp_path)
    online.eval()
    raw = _batch(4)
    # samples 1 and 3 arrive mirrored (as RandomFlip would give them), flagged flip=True
    images = [x.flip(-1) if i % 2 else x for i, x in enumerate(raw['inputs'])]
    for i, sample in enumerate(raw['data_samples']):
        sample.set_metainfo(dict(flip=bool(i % 2)))
    originals = online.data_preprocessor(dict(inputs=_batch(4)['inputs']), False)['inputs']
    with torch.no_grad():
        views = torch.stack([online.teacher.extract_feat(originals),
                             online.teacher.extract_feat(originals.flip(-1))], dim=1)
    prefix = str(tmp_path / 'bank')
    write_teacher_bank(prefix, views, dict(teacher_sha256='x', dataset='tiny'))

    bank_model = CoupleFaceDistiller(
        student=_student(), teacher_bank=dict(path=prefix),
        connector=dict(type='LinearConnector', in_channels=8, out_channels=16),
        fcd_loss=dict(type='FeatureConsistencyLoss'),
        rad_loss=dict(type='RelationAwareDistillationLoss'))
    bank_model.load_state_dict({k: v for k, v in online.state_dict().items()
                                if k != '_extra_state'}, strict=False)
    bank_model.eval()
    data = dict(inputs=images, data_samples=raw['data_samples'])
    with torch.no_grad():
        a = online(**online.data_preprocessor(data, False), mode='loss')
        b = bank_model(**bank_model.data_preprocessor(data, False), mode='loss')
    assert float(a['loss_fcd']) > 0 and float(a['loss_rad']) > 0
    for key in ('loss_cls', 'loss_fcd', 'loss_rad'):
        # the bank stores float16: equal up to its rounding
        torch.testing.assert_close(b[key], a[key], rtol=2e-3, atol=1e-4, msg=key)
