"""CoupleFaceDistiller hands the teacher embeddings to a head that asks for them
(AdaDistillHead), online or from a teacher bank; other heads are called as before; the
EKD-style loss runs as an extra loss."""
import pytest
import torch
from mmpretrain.structures import DataSample

from coupleface.models.distillers import CoupleFaceDistiller, write_teacher_bank
from coupleface.models.heads import AdaDistillHead
from coupleface.registry import MODELS

SIZE = 16


def _backbone(base, emb):
    return dict(type='IResNet', arch=18, input_size=SIZE, base_channels=base,
                embedding_size=emb)


def _teacher(tmp_path, emb=16):
    torch.manual_seed(1)
    rec = MODELS.build(dict(type='FaceRecognizer', backbone=_backbone(8, emb)))
    path = tmp_path / 'backbone.pth'
    torch.save(rec.backbone.state_dict(), path)
    return dict(model=dict(type='FaceRecognizer', backbone=_backbone(8, emb)),
                checkpoint=str(path))


def _ada_student(emb=16, in_channels=16):
    return dict(type='FaceRecognizer', backbone=_backbone(4, emb),
                head=dict(type='AdaDistillHead', num_classes=5, in_channels=in_channels,
                          scale=16.0))


def _batch(n=4):
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 255, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    samples = []
    for i in range(n):
        sample = DataSample().set_gt_label(i % 3)
        sample.set_metainfo(dict(sample_idx=i, flip=False))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


class _Spy:
    """Wrap ``head.loss`` and record its keyword arguments."""

    def __init__(self, head):
        self.calls = []
        self._loss = head.loss
        head.loss = self

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self._loss(*args, **kwargs)


def test_head_gets_the_teacher_embeddings(tmp_path):
    model = CoupleFaceDistiller(student=_ada_student(), teacher=_teacher(tmp_path))
    head = model.student.head
    assert isinstance(head, AdaDistillHead)
    # the centers are not trained by the optimizer
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert 'student.head.weight' not in trainable and trainable
    spy = _Spy(head)
    data = model.data_preprocessor(_batch(), True)
    before = head.weight.detach().clone()
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'acc_top1', 'ada_alpha'}
    (teacher,) = [call['teacher'] for call in spy.calls]
    expected = model.teacher_embeddings(data['inputs'], data['data_samples'])
    torch.testing.assert_close(teacher, expected, rtol=0, atol=0)
    # the batch's classes (0, 1, 2) moved towards the teacher, the others did not
    assert not torch.equal(head.weight[:3], before[:3])
    torch.testing.assert_close(head.weight[3:], before[3:], rtol=0, atol=0)
    losses['loss_cls'].backward()
    grads = [p.grad for p in model.student.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_head_gets_the_bank_embeddings(tmp_path):
    g = torch.Generator().manual_seed(5)
    views = torch.randn(4, 2, 16, generator=g)
    prefix = str(tmp_path / 'bank')
    write_teacher_bank(prefix, views, dict(teacher_sha256='x', dataset='tiny'))
    model = CoupleFaceDistiller(student=_ada_student(), teacher_bank=dict(path=prefix),
                                extra_losses=dict(ekd=dict(type='EvaluationRankLoss',
                                                           target_fars=(0.2,))))
    spy = _Spy(model.student.head)
    losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
    (teacher,) = [call['teacher'] for call in spy.calls]
    # float16 storage: the bank's rounding of slot 0 (flip=False)
    torch.testing.assert_close(teacher, views[:, 0].half().float(), rtol=0, atol=0)
    assert torch.isfinite(losses['loss_ekd']) and 'loss_cls' in losses


def test_other_heads_are_called_without_teacher(tmp_path):
    student = dict(type='FaceRecognizer', backbone=_backbone(4, 16),
                   head=dict(type='ArcFaceHead', num_classes=5, in_channels=16))
    model = CoupleFaceDistiller(
        student=student, teacher=_teacher(tmp_path),
        extra_losses=dict(ekd=dict(type='EvaluationRankLoss', target_fars=(0.2,),
                                   selection='all', loss_weight=2.0)))
    spy = _Spy(model.student.head)
    losses = model(**model.data_preprocessor(_batch(), True), mode='loss')
    assert spy.calls == [{}]
    assert set(losses) == {'loss_cls', 'acc_top1', 'loss_ekd'}
    assert float(losses['loss_ekd']) > 0
    losses['loss_ekd'].backward()
    grads = [p.grad for p in model.student.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_head_outside_the_teacher_space_is_refused(tmp_path):
    # an 8-d student projected to 16 for the other losses: the head would see 8-d feats
    with pytest.raises(ValueError, match="teacher's embedding space") as info:
        CoupleFaceDistiller(student=_ada_student(emb=8, in_channels=8),
                            teacher=_teacher(tmp_path),
                            connector=dict(type='LinearConnector', in_channels=8,
                                           out_channels=16))
    assert '\n' not in str(info.value)


def test_narrow_student_reaches_the_head_through_the_connector(tmp_path):
    """An 8-d student, a 16-d teacher: the head gets connector(feats), the evaluated
    embedding stays the raw 8-d one, and the connector is trained by the head's loss."""
    model = CoupleFaceDistiller(student=_ada_student(emb=8, in_channels=16),
                                teacher=_teacher(tmp_path),
                                connector=dict(type='LinearConnector', in_channels=8,
                                               out_channels=16))
    assert model.head_through_connector
    head = model.student.head
    received = []
    loss_fn = head.loss
    head.loss = lambda feats, labels, **kw: received.append(feats) or loss_fn(feats, labels, **kw)
    data = model.data_preprocessor(_batch(), True)
    losses = model(**data, mode='loss')
    (feats,) = received
    raw = model.student.extract_feat(data['inputs'])
    assert raw.shape == (4, 8) and feats.shape == (4, 16)
    torch.testing.assert_close(feats, model.connector(raw), rtol=1e-5, atol=1e-6)
    losses['loss_cls'].backward()
    assert model.connector.proj.weight.grad is not None \
        and model.connector.proj.weight.grad.abs().sum() > 0
    assert model(**data, mode='tensor').shape == (4, 8)


def test_narrow_student_without_connector_is_refused(tmp_path):
    with pytest.raises(ValueError, match='add connector') as info:
        CoupleFaceDistiller(student=_ada_student(emb=8, in_channels=16),
                            teacher=_teacher(tmp_path))
    assert '\n' not in str(info.value)
