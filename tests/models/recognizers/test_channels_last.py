"""FaceRecognizer(channels_last=True): same embeddings and gradients, NHWC weights.

Channels-last changes only the memory layout of 4-D weights and of the input batch, so
every number must match the contiguous model; checkpoints move freely between the two.
Convolutions with fewer than 16 input channels (the stem and layer1 here) keep NCHW weights, the
guard against torch's CPU bug (``test_memory_format.py``).
"""
import copy

import pytest
import torch

from coupleface.models.distillers.teacher import build_frozen_teacher
from coupleface.models.recognizers import FaceRecognizer
from coupleface.models.recognizers.memory_format import has_nchw_strides, is_guarded_conv

SIZE = 32
BACKBONES = {
    'iresnet18': dict(type='IResNet', arch=18, input_size=SIZE, base_channels=8,
                      embedding_size=16),
    'mobilefacenet': dict(type='MobileFaceNet', blocks=(1, 1, 1, 1), scale=1,
                          input_size=SIZE, embedding_size=16),
}


def _pair(backbone: dict):
    torch.manual_seed(0)
    plain = FaceRecognizer(backbone=copy.deepcopy(backbone))
    plain.init_weights()
    nhwc = FaceRecognizer(backbone=copy.deepcopy(backbone), channels_last=True)
    nhwc.init_weights()
    nhwc.load_state_dict(plain.state_dict())  # contiguous checkpoint → channels-last model
    return plain, nhwc


def _conv_weights(model):
    return [(n, p) for n, p in model.named_parameters() if p.dim() == 4]


def _guarded_weights(model) -> set:
    return {f'{n}.weight' for n, m in model.named_modules() if is_guarded_conv(m)}


def _assert_channels_last_layout(model) -> None:
    guarded = _guarded_weights(model)
    assert guarded and len(guarded) < len(_conv_weights(model))  # both kinds are present
    for pname, p in _conv_weights(model):
        if pname in guarded:
            assert has_nchw_strides(p), pname
        else:
            assert p.is_contiguous(memory_format=torch.channels_last), pname


def _inputs(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_channels_last_layout_and_same_embeddings(name):
    plain, nhwc = _pair(BACKBONES[name])
    _assert_channels_last_layout(nhwc)
    for pname, p in _conv_weights(nhwc):
        if pname not in _guarded_weights(nhwc) and p.shape[1] > 1 and p.shape[2:].numel() > 1:
            assert not p.is_contiguous(), pname  # else both layouts coincide
    for _, p in _conv_weights(plain):
        assert p.is_contiguous()

    x = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(nhwc.eval().extract_feat(x), plain.eval().extract_feat(x),
                                   atol=1e-5, rtol=0)
        out = nhwc(x, mode='tensor')
        torch.testing.assert_close(out, plain(x, mode='tensor'), atol=1e-5, rtol=0)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_channels_last_same_gradients(name, dtype):
    plain, nhwc = _pair(BACKBONES[name])
    x = _inputs().to(dtype)
    for model in (plain, nhwc):
        model.to(dtype).train()
        model.extract_feat(x).pow(2).sum().backward()
    # float64 shows the math is the same; float32 differs only by summation order
    # (a few 1e-4 of a tensor's largest gradient with batch-statistics BatchNorm)
    tol = 1e-9 if dtype == torch.float64 else 2e-3
    grads = {n: p.grad for n, p in plain.named_parameters() if p.grad is not None}
    scale = max(float(g.abs().max()) for g in grads.values())
    for pname, p in nhwc.named_parameters():
        assert (p.grad is None) == (pname not in grads), pname
        if p.grad is None:
            continue
        torch.testing.assert_close(p.grad, grads[pname], atol=tol * scale, rtol=tol,
                                   msg=pname)
        if p.dim() == 4 and pname not in _guarded_weights(nhwc):
            assert p.grad.is_contiguous(memory_format=torch.channels_last), pname


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_channels_last_state_dict_loads_into_contiguous_model(name):
    _, nhwc = _pair(BACKBONES[name])
    with torch.no_grad():  # weights that differ from a fresh model's
        for p in nhwc.parameters():
            p.add_(0.01 * torch.randn_like(p))
    state = nhwc.state_dict()
    torch.manual_seed(5)
    plain = FaceRecognizer(backbone=copy.deepcopy(BACKBONES[name]))
    plain.load_state_dict(state)
    for pname, p in _conv_weights(plain):
        assert p.is_contiguous(), pname  # the target keeps its own layout
    x = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(plain.eval().extract_feat(x), nhwc.eval().extract_feat(x),
                                   atol=1e-5, rtol=0)


def test_frozen_teacher_config_with_channels_last(tmp_path):
    plain, _ = _pair(BACKBONES['iresnet18'])
    path = str(tmp_path / 'teacher.pth')
    torch.save(dict(state_dict=plain.state_dict()), path)
    teacher, _ = build_frozen_teacher(dict(
        model=dict(type='FaceRecognizer', backbone=BACKBONES['iresnet18'], channels_last=True),
        checkpoint=path))
    _assert_channels_last_layout(teacher)
    x = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(teacher.extract_feat(x), plain.eval().extract_feat(x),
                                   atol=1e-5, rtol=0)
