"""PartialFCHead in one process: the dense head at sample_rate=1, sampling, sharding,
checkpoints, autocast, and the DDP/checkpoint helpers (2 ranks: test_partial_fc_dist.py;
sharding maths and autograd functions: test_partial_fc_functions.py)."""
import pytest
import torch
from torch import nn

from coupleface.models.heads import ArcFaceHead, PartialFCHead
from coupleface.models.heads.partial_fc import partial_fc_heads
from coupleface.registry import MODELS
from coupleface.utils.dist import mark_rank_local_params_for_ddp

C, D, B = 13, 6, 9
HEADS = {
    'arcface': dict(type='ArcFaceHead'),
    'arcface_smooth': dict(type='ArcFaceHead', label_smoothing=0.1, loss_weight=0.5),
    'cosface': dict(type='CosFaceHead'),
    'combined': dict(type='CombinedMarginHead', m1=0.9, m2=0.4, m3=0.15),
    'curricularface': dict(type='CurricularFaceHead', momentum=0.5),
    'adaface': dict(type='AdaFaceHead', t_alpha=0.5),
}


def data(num_classes=C, n=B, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, D, generator=gen, dtype=dtype)
    feats = feats * torch.linspace(0.5, 3.0, n, dtype=dtype).unsqueeze(1)
    labels = torch.randint(0, num_classes, (n,), generator=gen)
    return feats, labels


def pair(cfg, num_classes=C, sample_rate=1.0, seed=1):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(num_classes, D, generator=gen, dtype=torch.float64)
    dense = MODELS.build(dict(cfg, num_classes=num_classes, in_channels=D)).double()
    with torch.no_grad():
        dense.weight.copy_(weight)
    head = PartialFCHead(dict(cfg, num_classes=num_classes, in_channels=D),
                         sample_rate=sample_rate).double()
    head.load_state_dict({'weight': weight}, strict=False)
    return dense, head


@pytest.mark.parametrize('name', list(HEADS))
@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_sample_rate_1_equals_dense_head(name, mode):
    dense, head = pair(HEADS[name])
    dense.train(mode == 'train')
    head.train(mode == 'train')
    feats, labels = data()
    results = []
    for module in (dense, head):
        x = feats.clone().requires_grad_()
        losses = module.loss(x, labels)
        losses['loss_cls'].backward()
        results.append((losses, x.grad, module.weight.grad))
    (dense_losses, dense_gx, dense_gw), (losses, gx, gw) = results
    torch.testing.assert_close(losses['loss_cls'], dense_losses['loss_cls'], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(losses['acc_top1'], dense_losses['acc_top1'])
    torch.testing.assert_close(gx, dense_gx, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(gw, dense_gw, rtol=1e-6, atol=1e-9)
    for key, value in head.margin_head.named_buffers():
        torch.testing.assert_close(value, getattr(dense, key))
    assert dense_gx.abs().sum() > 0 and dense_losses['loss_cls'] > 0


def test_fp32_equals_dense_head_within_1e6():
    dense, head = pair(HEADS['arcface'])
    dense, head = dense.float(), head.float()
    feats, labels = data(dtype=torch.float32)
    out = []
    for module in (dense, head):
        x = feats.clone().requires_grad_()
        loss = module.loss(x, labels)['loss_cls']
        loss.backward()
        out.append((loss, x.grad, module.weight.grad))
    for a, b in zip(*out):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


def test_sampling_keeps_positives_and_counts():
    head = PartialFCHead(dict(type='ArcFaceHead', num_classes=50, in_channels=D), sample_rate=0.2)
    assert head.num_sample == 10
    labels = torch.tensor([3, 41, 3, 17, 8, 41])
    torch.manual_seed(0)
    index, columns = head.sample(labels)
    assert len(index) == 10 and torch.equal(index, torch.unique(index))
    assert {3, 8, 17, 41} <= set(index.tolist())
    assert torch.equal(index[columns], labels)
    # Different draws pick different negatives, never dropping a positive.
    torch.manual_seed(1)
    index2, columns2 = head.sample(labels)
    assert not torch.equal(index, index2) and torch.equal(index2[columns2], labels)

    # More distinct positives than num_sample: exactly the positives.
    many = torch.arange(0, 48, 4)  # 12 classes
    index, columns = head.sample(many)
    assert torch.equal(index, many) and torch.equal(columns, torch.arange(12))

    full = PartialFCHead(dict(type='ArcFaceHead', num_classes=50, in_channels=D))
    index, columns = full.sample(labels)
    assert index is None and torch.equal(columns, labels)
    tiny = PartialFCHead(dict(type='ArcFaceHead', num_classes=4, in_channels=D), sample_rate=0.1)
    assert tiny.num_sample == 1  # int(0.4) = 0 would leave no column


def test_sampled_loss_equals_dense_on_sampled_centers_and_grads_only_sampled_rows():
    dense, head = pair(HEADS['arcface'], num_classes=40, sample_rate=0.25)
    feats, labels = data(num_classes=40)
    torch.manual_seed(5)
    index, columns = head.sample(labels)
    torch.manual_seed(5)  # loss() draws the same sample
    x = feats.clone().requires_grad_()
    losses = head.loss(x, labels)
    losses['loss_cls'].backward()
    assert torch.isfinite(losses['loss_cls'])

    sub = ArcFaceHead(num_classes=len(index), in_channels=D).double()
    with torch.no_grad():
        sub.weight.copy_(dense.weight[index])
    x2 = feats.clone().requires_grad_()
    expected = sub.loss(x2, columns)
    expected['loss_cls'].backward()
    torch.testing.assert_close(losses['loss_cls'], expected['loss_cls'])
    torch.testing.assert_close(losses['acc_top1'], expected['acc_top1'])
    torch.testing.assert_close(x.grad, x2.grad)
    grad = head.weight.grad
    torch.testing.assert_close(grad[index], sub.weight.grad)
    unsampled = torch.ones(40, dtype=torch.bool)
    unsampled[index] = False
    assert unsampled.any() and torch.equal(grad[unsampled], torch.zeros_like(grad[unsampled]))


def test_label_smoothing_spreads_over_sampled_columns():
    dense, head = pair(HEADS['arcface_smooth'])
    assert head.margin_head.label_smoothing == 0.1
    feats, labels = data()
    expected = dense.loss(feats, labels)['loss_cls']
    torch.testing.assert_close(head.loss(feats, labels)['loss_cls'], expected)
    no_smooth = pair(HEADS['arcface'])[1].loss(feats, labels)['loss_cls']
    assert not torch.allclose(no_smooth * 0.5, expected)


def test_autocast_bf16_keeps_margin_and_ce_fp32(monkeypatch):
    _, head = pair(HEADS['arcface'])
    head = head.float()
    feats, labels = data(dtype=torch.float32)
    feats_bf16 = feats.bfloat16()  # what a backbone gives under autocast
    seen = []
    margin_logits = head.margin_head.margin_logits

    def spy(cos, columns, norms=None):
        logits = margin_logits(cos, columns, norms)
        seen.append((cos.dtype, logits.dtype, torch.is_autocast_enabled('cpu')))
        return logits

    monkeypatch.setattr(head.margin_head, 'margin_logits', spy)
    x = feats_bf16.clone().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(x, labels)
    losses['loss_cls'].backward()
    assert seen == [(torch.float32, torch.float32, False)]
    assert losses['loss_cls'].dtype == torch.float32 and torch.isfinite(losses['loss_cls'])
    assert x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad.float()).all()
    # The same fp32 maths as without autocast (a bf16 CE would be off by ~1e-2).
    reference = head.loss(feats_bf16.float(), labels)['loss_cls']
    torch.testing.assert_close(losses['loss_cls'], reference, rtol=1e-6, atol=1e-6)


def test_state_dict_is_dense_compatible_and_rejects_shards():
    dense, head = pair(HEADS['arcface'])
    state = head.state_dict()
    assert list(state) == ['weight'] and state['weight'].shape == (C, D)
    back = ArcFaceHead(num_classes=C, in_channels=D).double()
    back.load_state_dict(state)
    torch.testing.assert_close(back.weight, dense.weight, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match=r'full \[13, 6\] class-center matrix'):
        head.load_state_dict({'weight': torch.zeros(7, D)})


def test_built_margin_head_seeds_the_shard():
    dense = ArcFaceHead(num_classes=C, in_channels=D)
    weight = dense.weight.detach().clone()
    head = PartialFCHead(dense)
    torch.testing.assert_close(head.weight.detach(), weight, rtol=0, atol=0)
    assert 'weight' not in dict(head.margin_head.named_parameters())
    assert list(dict(head.named_parameters())) == ['weight']


def test_init_is_reproducible_and_insightface_scaled():
    torch.manual_seed(3)
    a = PartialFCHead(dict(type='CosFaceHead', num_classes=3000, in_channels=16))
    torch.manual_seed(3)
    b = PartialFCHead(dict(type='CosFaceHead', num_classes=3000, in_channels=16))
    torch.manual_seed(4)
    c = PartialFCHead(dict(type='CosFaceHead', num_classes=3000, in_channels=16))
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    assert abs(a.weight.std().item() - 0.01) < 5e-4
    assert not torch.equal(a.weight[:1024], a.weight[1024:2048])  # blocks differ
    a.init_weights()  # MMEngine's init does not redraw the shard
    assert torch.equal(a.weight, b.weight)


def test_argument_errors():
    cfg = dict(type='ArcFaceHead', num_classes=C, in_channels=D)
    with pytest.raises(ValueError, match='sample_rate'):
        PartialFCHead(cfg, sample_rate=0.0)
    with pytest.raises(ValueError, match='num_classes'):
        PartialFCHead(dict(type='ArcFaceHead', in_channels=D))
    with pytest.raises(TypeError, match='MarginHead'):
        PartialFCHead(dict(type='LinearClsHead', num_classes=C, in_channels=D))
    head = PartialFCHead(cfg)
    feats, labels = data()
    with pytest.raises(ValueError, match=r'labels must be in \[0, 13\)'):
        head.loss(feats.float(), torch.full((B,), C))
    with pytest.raises(ValueError, match='feats must have shape'):
        head.loss(feats[:, :3].float(), labels)
    with pytest.raises(NotImplementedError, match='use loss'):
        head(feats.float(), labels)


def test_registry_builds_and_loss_keys():
    head = MODELS.build(dict(type='PartialFCHead', sample_rate=0.5,
                             margin_head=dict(type='AdaFaceHead', num_classes=C, in_channels=D)))
    assert isinstance(head, PartialFCHead) and head.num_classes == C
    assert head.margin_head.num_classes == C
    losses = head.loss(*data(dtype=torch.float32))
    assert set(losses) == {'loss_cls', 'acc_top1'} and not losses['acc_top1'].requires_grad


def test_mark_shards_for_ddp_names_nested_heads():
    cfg = dict(type='ArcFaceHead', num_classes=C, in_channels=D)
    model = nn.Module()
    model.student = nn.Module()
    model.student.head = PartialFCHead(cfg)
    model.extra = PartialFCHead(cfg)
    model._ddp_params_and_buffers_to_ignore = ['teacher.x']
    assert PartialFCHead.rank_local_params == ('weight',)
    assert mark_rank_local_params_for_ddp(model) == [
        'teacher.x', 'student.head.weight', 'extra.weight']
    assert mark_rank_local_params_for_ddp(model) == [
        'teacher.x', 'student.head.weight', 'extra.weight']  # idempotent
    assert model.student.head.weight._ddp_ignored
    assert mark_rank_local_params_for_ddp(model.student.head) == ['weight']
    assert [name for name, _ in partial_fc_heads(model)] == ['student.head', 'extra']


def test_recognizer_and_distiller_keep_ddp_off_the_shard(tmp_path):
    """Both models learn it from the head (rank_local_params), not by knowing PartialFC."""
    backbone = dict(type='IResNet', arch=18, input_size=16, base_channels=4,
                    embedding_size=D)
    student = dict(type='FaceRecognizer', backbone=backbone,
                   head=dict(type='PartialFCHead', margin_head=dict(
                       type='ArcFaceHead', num_classes=C, in_channels=D)))
    recognizer = MODELS.build(student)
    assert recognizer._ddp_params_and_buffers_to_ignore == ['head.weight']
    dense = MODELS.build(dict(student, head=dict(type='ArcFaceHead', num_classes=C,
                                                 in_channels=D)))
    assert dense._ddp_params_and_buffers_to_ignore == []
    teacher = MODELS.build(dict(type='FaceRecognizer', backbone=backbone))
    torch.save({'state_dict': teacher.state_dict()}, tmp_path / 'teacher.pth')
    distiller = MODELS.build(dict(
        type='CoupleFaceDistiller', student=student,
        teacher=dict(model=dict(type='FaceRecognizer', backbone=backbone),
                     checkpoint=str(tmp_path / 'teacher.pth')),
        fcd_loss=dict(type='FeatureConsistencyLoss')))
    assert distiller._ddp_params_and_buffers_to_ignore == ['student.head.weight']
