"""Behaviour shared by every margin head (base class ``MarginHead``)."""
import copy
import inspect
import math
import re

import numpy as np
import pytest
import torch

from coupleface.models.heads import (
    AdaFaceHead,
    ArcFaceHead,
    CombinedMarginHead,
    CosFaceHead,
    CurricularFaceHead,
    MarginHead,
)
from coupleface.registry import MODELS

# 5 samples x 4 classes in 3-D. Row 2 points away from its class (theta_y ~ 3.09 rad);
# row 4's cosine argmax is its class but ArcFace's margin makes class 1 win.
W = [[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.5], [1.0, 1.0, 1.0]]
X = [[1.0, 0.3, -0.2], [0.2, -0.5, 2.0], [0.1, -2.0, 0.05], [-1.0, -0.2, 0.3],
     [0.6, 0.8, 0.05]]
Y = [0, 2, 1, 3, 3]

HEADS = [
    dict(type='ArcFaceHead'),
    dict(type='ArcFaceHead', easy_margin=True),
    dict(type='CosFaceHead'),
    dict(type='CombinedMarginHead', m1=0.9, m2=0.4, m3=0.15),
    dict(type='CurricularFaceHead'),
    dict(type='AdaFaceHead'),
]
IDS = ['arcface', 'arcface_easy', 'cosface', 'combined', 'curricularface', 'adaface']


def build(cfg, num_classes=4, in_channels=3, weight=W):
    head = MODELS.build(dict(cfg, num_classes=num_classes, in_channels=in_channels))
    if weight is not None:
        with torch.no_grad():
            head.weight.copy_(torch.tensor(weight))
    if isinstance(head, AdaFaceHead):
        # Statistics that put the example's norms inside the unsaturated range.
        head.batch_mean.fill_(1.5)
        head.batch_std.fill_(0.5)
    if isinstance(head, CurricularFaceHead):
        head.t.fill_(0.2)
    return head


def ref_cos(x, w):
    x, w = np.asarray(x, float), np.asarray(w, float)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
        w / np.linalg.norm(w, axis=1, keepdims=True)).T


def test_all_heads_registered_and_exported():
    for name in ['ArcFaceHead', 'CosFaceHead', 'CombinedMarginHead', 'CurricularFaceHead',
                 'AdaFaceHead']:
        cls = MODELS.get(name)
        assert cls is not None and issubclass(cls, MarginHead)
        assert cls.__doc__ and 'Examples:' in cls.__doc__ and 'Args:' in cls.__doc__


@pytest.mark.parametrize('cfg', HEADS, ids=IDS)
def test_weight_shape_and_default_init(cfg):
    torch.manual_seed(0)
    head = build(cfg, num_classes=1000, in_channels=64, weight=None)
    assert head.weight.shape == (1000, 64)
    assert abs(head.weight.std().item() - 0.01) < 0.0005
    with torch.no_grad():
        head.weight.fill_(1.0)
    head.init_weights()  # the default init_cfg draws N(0, 0.01^2) again
    assert abs(head.weight.std().item() - 0.01) < 0.0005
    assert abs(head.weight.mean().item()) < 0.001


@pytest.mark.parametrize('cfg', [c for c in HEADS if c['type'] != 'CurricularFaceHead'])
def test_negatives_untouched_by_margin_except_curricularface(cfg):
    head = build(cfg).eval()
    logits = head(torch.tensor(X), torch.tensor(Y)).detach().numpy()
    cos = ref_cos(X, W)
    neg = np.ones_like(cos, bool)
    neg[np.arange(len(Y)), Y] = False
    np.testing.assert_allclose(logits[neg], 64.0 * cos[neg], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize('cfg', HEADS, ids=IDS)
def test_column_subset_equals_full_columns(cfg):
    head = build(cfg).eval()  # fixed buffers: both calls see the same statistics
    feats, labels = torch.tensor(X), torch.tensor(Y)
    full = head(feats, labels)
    cos, norms = head.cosine(feats)
    cols = torch.tensor([3, 0, 2])  # class 1 is not sampled: row 2 has no positive column
    remap = {3: 0, 0: 1, 2: 2}
    sub_labels = torch.tensor([remap.get(y, -1) for y in Y])
    assert (sub_labels == -1).sum() == 1
    sub = head.margin_logits(cos[:, cols], sub_labels, norms)
    has_pos = sub_labels >= 0
    torch.testing.assert_close(sub[has_pos], full[:, cols][has_pos], rtol=1e-6, atol=1e-5)
    # A row without its positive column only has negatives: plain scaled cosines
    # (CurricularFace cannot tell hard negatives without the positive).
    if cfg['type'] != 'CurricularFaceHead':
        torch.testing.assert_close(sub[~has_pos], full[:, cols][~has_pos])
    torch.testing.assert_close(sub[~has_pos], 64.0 * cos[:, cols][~has_pos])


@pytest.mark.parametrize('cfg', HEADS, ids=IDS)
def test_autocast_bf16_gives_fp32_logits_equal_to_fp32(cfg):
    head = build(cfg).eval()
    feats, labels = torch.tensor(X), torch.tensor(Y)
    ref = head(feats, labels)
    ref_loss = head.loss(feats, labels)['loss_cls']
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = head(feats, labels)
        loss = head.loss(feats, labels)['loss_cls']
        cos, norms = head.cosine(feats)
        sub = head.margin_logits(cos.bfloat16(), labels, norms.bfloat16())
    assert out.dtype == torch.float32 and loss.dtype == torch.float32
    assert sub.dtype == torch.float32 and torch.isfinite(sub).all()
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=1e-5)
    # bf16 embeddings (a bf16 backbone) still give finite fp32 logits.
    out_bf16 = head(feats.bfloat16(), labels)
    assert out_bf16.dtype == torch.float32 and torch.isfinite(out_bf16).all()


@pytest.mark.parametrize('cfg', HEADS, ids=IDS)
def test_gradients_nonzero_and_sgd_step_lowers_loss(cfg):
    head = build(cfg).train()
    feats = torch.tensor(X, requires_grad=True)
    labels = torch.tensor(Y)
    loss = head.loss(feats, labels)['loss_cls']
    loss.backward()
    assert feats.grad.abs().sum() > 0 and head.weight.grad.abs().sum() > 0
    assert torch.isfinite(feats.grad).all() and torch.isfinite(head.weight.grad).all()
    head.eval()
    before = head.loss(feats, labels)['loss_cls'].item()
    with torch.no_grad():
        feats -= 1e-3 * feats.grad
    after = head.loss(feats, labels)['loss_cls'].item()
    assert after < before


def test_loss_is_weighted_smoothed_cross_entropy_and_acc_uses_cosine():
    head = MODELS.build(dict(type='ArcFaceHead', num_classes=4, in_channels=3,
                             label_smoothing=0.1, loss_weight=0.5))
    with torch.no_grad():
        head.weight.copy_(torch.tensor(W))
    feats, labels = torch.tensor(X), torch.tensor(Y)
    out = head.loss(feats, labels)
    assert set(out) == {'loss_cls', 'acc_top1'}
    logits = head(feats, labels).detach().double().numpy()
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    nll = -logp[np.arange(len(Y)), Y]
    smooth = -logp.mean(1)
    expected = 0.5 * np.mean(0.9 * nll + 0.1 * smooth)
    assert out['loss_cls'].item() == pytest.approx(expected, rel=1e-5)
    # Cosine argmax is right for rows 0, 1 and 4; the margin logits would say 0, 1 only.
    assert out['acc_top1'].item() == pytest.approx(60.0)
    assert not out['acc_top1'].requires_grad
    assert (logits.argmax(1) == np.array(Y)).mean() * 100 == pytest.approx(40.0)


def test_fp64_stays_fp64():
    head = build(dict(type='ArcFaceHead')).double()
    out = head(torch.tensor(X, dtype=torch.float64), torch.tensor(Y))
    assert out.dtype == torch.float64


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_classes=1), 'num_classes must be an integer >= 2, got 1'),
    (dict(in_channels=0), 'in_channels must be a positive integer, got 0'),
    (dict(scale=0.0), 'scale must be > 0, got 0.0'),
    (dict(label_smoothing=1.0), r'label_smoothing must be in \[0, 1\), got 1.0'),
])
def test_bad_constructor_args(kwargs, match):
    cfg = dict(type='CosFaceHead', num_classes=4, in_channels=3)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


@pytest.mark.parametrize('name', ['ArcFaceHead', 'CosFaceHead', 'CombinedMarginHead',
                                  'CurricularFaceHead', 'AdaFaceHead', 'AdaDistillHead'])
def test_hparam_ranges_are_checked_constructor_args(name):
    """Each head's declared ranges name its own arguments, stored as floats, and NaN fails."""
    cls = MODELS.get(name)
    params = inspect.signature(cls.__init__).parameters
    assert cls.hparam_ranges and set(cls.hparam_ranges) <= set(params)
    head = cls(4, 3)
    for key in cls.hparam_ranges:
        assert getattr(head, key) == float(params[key].default)
        with pytest.raises(ValueError, match=f'{key} must be '):
            cls(4, 3, **{key: float('nan')})


def test_check_range():
    assert MarginHead.check_range('m', 1, '>= 0') == 1.0
    assert isinstance(MarginHead.check_range('m', 1, '>= 0'), float)
    for valid, bad in [('> 0', 0.0), ('>= 0', -1e-9), ('in [0, 1]', 1.5),
                       ('in [0, 1)', 1.0), ('in [0, pi)', math.pi)]:
        with pytest.raises(ValueError, match=re.escape(f'x must be {valid}, got {bad}')):
            MarginHead.check_range('x', bad, valid)


def test_bad_labels():
    head = build(dict(type='CosFaceHead'))
    feats = torch.tensor(X)
    with pytest.raises(ValueError, match=r'labels must be in \[0, 4\), got 4'):
        head.loss(feats, torch.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r'labels must be in \[0, 4\), got -1'):
        head.loss(feats, torch.tensor([0, 1, 2, 3, -1]))
    with pytest.raises(ValueError, match=r'labels must be in \[0, 4\), got 7'):
        head(feats, torch.tensor([0, 7, 2, 3, 1]))
    with pytest.raises(ValueError, match=r'labels must have shape \[5\]'):
        head.loss(feats, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'feats must have shape \[B, 3\]'):
        head.loss(torch.zeros(5, 4), torch.tensor(Y))
    cos = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r'labels must be in \[-1, 3\), got -2'):
        head.margin_logits(cos, torch.tensor([-2, 0]), torch.ones(2))
    with pytest.raises(ValueError, match='labels must be an integer tensor'):
        head.margin_logits(cos, torch.tensor([0.0, 1.0]), torch.ones(2))


def test_state_dict_holds_buffers():
    assert set(build(dict(type='CurricularFaceHead')).state_dict()) == {'weight', 't'}
    assert set(build(dict(type='AdaFaceHead')).state_dict()) == {
        'weight', 'batch_mean', 'batch_std'}
    head = build(dict(type='AdaFaceHead'))
    clone = copy.deepcopy(head)
    head.batch_mean.fill_(3.0)
    clone.load_state_dict(head.state_dict())
    assert clone.batch_mean.item() == 3.0


def test_exports():
    for cls in (ArcFaceHead, CosFaceHead, CombinedMarginHead, CurricularFaceHead, AdaFaceHead):
        assert issubclass(cls, MarginHead)
    assert math.isclose(ArcFaceHead(4, 3).scale, 64.0)
