"""CoupleFaceDistiller(partner_samples=P): classification on the shuffled part only, the
distillation terms on the whole batch (partners appended by PartnerSampler)."""
import pytest
import torch
from mmpretrain.structures import DataSample

from coupleface.models.distillers import CoupleFaceDistiller, write_teacher_bank

SIZE = 16


def _model(tmp_path, partner_samples):
    views = torch.randn(8, 2, 16, generator=torch.Generator().manual_seed(0))
    prefix = str(tmp_path / 'bank')
    write_teacher_bank(prefix, views, dict(teacher_sha256='x', dataset='tiny'))
    torch.manual_seed(0)
    return CoupleFaceDistiller(
        student=dict(type='FaceRecognizer',
                     backbone=dict(type='IResNet', arch=18, input_size=SIZE, base_channels=4,
                                   embedding_size=16),
                     head=dict(type='ArcFaceHead', num_classes=4, in_channels=16)),
        teacher_bank=dict(path=prefix), fcd_loss=dict(type='FeatureConsistencyLoss'),
        rad_loss=dict(type='RelationAwareDistillationLoss', relation='student',
                      distance='kl', num_negatives=None),
        partner_samples=partner_samples)


def _data(model, n=8):
    g = torch.Generator().manual_seed(1)
    samples = []
    for i in range(n):
        sample = DataSample().set_gt_label(i % 4)
        sample.set_metainfo(dict(sample_idx=i, flip=False))
        samples.append(sample)
    inputs = [torch.randint(0, 255, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)


def test_head_sees_the_shuffled_part_other_losses_the_whole_batch(tmp_path):
    model = _model(tmp_path, partner_samples=3)
    model.eval()  # BatchNorm statistics of the batch are not what is tested here
    data = _data(model)
    seen = []
    head_loss = model.student.head.loss
    model.student.head.loss = lambda f, y, **kw: seen.append((f, y)) or head_loss(f, y, **kw)
    losses = model(**data, mode='loss')
    (feats, labels), = seen
    assert feats.shape[0] == 5 and labels.tolist() == [0, 1, 2, 3, 0]
    # the classification loss equals the head's on the first 5 samples alone
    full = model.student.extract_feat(data['inputs'])
    torch.testing.assert_close(losses['loss_cls'], head_loss(full[:5], labels)['loss_cls'])
    # FCD is over all 8 samples
    fcd = model.fcd_loss(model.student.extract_feat(data['inputs']),
                         model.teacher_embeddings(data['inputs'], data['data_samples']))
    torch.testing.assert_close(losses['loss_fcd'], fcd)


def test_partner_samples_checks(tmp_path):
    with pytest.raises(ValueError, match='partner_samples must be an integer >= 0'):
        _model(tmp_path, partner_samples=-1)
    model = _model(tmp_path, partner_samples=8)
    with pytest.raises(ValueError, match='batch of 8 samples but partner_samples=8'):
        model(**_data(model), mode='loss')


def test_grad_norms_of_each_term_on_the_student_embeddings(tmp_path):
    model = _model(tmp_path, partner_samples=0)
    model.grad_norm_interval = 1
    model.eval()
    data = _data(model)
    losses = model(**data, mode='loss')
    assert {'gnorm_cls', 'gnorm_fcd', 'gnorm_rad'} <= set(losses)
    # by hand: the FCD term's gradient on the same embeddings
    feats = model.student.extract_feat(data['inputs']).detach().requires_grad_(True)
    teacher = model.teacher_embeddings(data['inputs'], data['data_samples'])
    grad, = torch.autograd.grad(model.fcd_loss(feats, teacher), feats)
    torch.testing.assert_close(losses['gnorm_fcd'], grad.norm(), rtol=1e-5, atol=1e-7)
    assert float(losses['gnorm_rad']) > 0 and not losses['gnorm_rad'].requires_grad
    # logged, not trained on: MMEngine sums only the keys holding 'loss'
    assert not any('loss' in k for k in losses if k.startswith('gnorm'))
    model.grad_norm_interval = 0
    assert not any(k.startswith('gnorm') for k in model(**data, mode='loss'))
