"""The channels-last guard: narrow convolutions keep NCHW weights and CPU inputs."""
import torch
from torch import nn

from coupleface.models.recognizers.memory_format import (
    MIN_CHANNELS_LAST_IN_CHANNELS,
    has_nchw_strides,
    is_guarded_conv,
    to_channels_last,
)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # stem: guarded
        nn.Conv2d(4, 4, 1, stride=2),  # the faulty shape on the AVX2 path: guarded
        nn.Conv2d(4, 16, 3, padding=1),  # guarded (4 input channels)
        nn.Conv2d(16, 8, 1, stride=2),  # 16 input channels: channels-last
    )


def test_has_nchw_strides_sees_through_size_one_dims():
    w = torch.randn(4, 4, 1, 1)
    assert has_nchw_strides(w)
    cl = w.to(memory_format=torch.channels_last)
    # is_contiguous() ignores size-1 dims, oneDNN does not: the strides tell them apart
    assert cl.is_contiguous() and not has_nchw_strides(cl)
    assert not has_nchw_strides(torch.randn(2, 3, 5, 5).to(memory_format=torch.channels_last))


def test_narrow_convolutions_stay_nchw_and_the_rest_goes_channels_last():
    assert MIN_CHANNELS_LAST_IN_CHANNELS == 16  # AVX-512's fp32 width (8 fails there)
    net = to_channels_last(_net())
    guarded = [is_guarded_conv(m) for m in net]
    assert guarded == [True, True, True, False]
    for m, g in zip(net, guarded):
        if g:
            assert has_nchw_strides(m.weight)
        else:
            assert m.weight.is_contiguous(memory_format=torch.channels_last)
            assert not has_nchw_strides(m.weight)
    to_channels_last(net)  # idempotent: one hook per convolution
    assert [len(m._forward_pre_hooks) for m in net] == [1, 1, 1, 0]


def test_guarded_convolutions_receive_nchw_inputs_on_cpu_and_values_do_not_change():
    plain = _net()
    net = to_channels_last(_net())
    seen = []
    for m in net:
        m.register_forward_pre_hook(lambda mod, args: seen.append(has_nchw_strides(args[0])))
    x = torch.randn(2, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    out = net(x)
    # the guard's hook ran first: guarded layers see NCHW; the last, unguarded one gets
    # the NCHW output of the guarded layer before it
    assert seen == [True, True, True, True]
    # the reference runs NCHW throughout: fed the channels-last x, its unguarded 4-channel
    # 1x1 stride-2 convolution would itself hit the bug (it did, on the AVX2 path)
    ref_x = x.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
    ref = plain(ref_x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    g = torch.randn_like(ref)
    out.backward(g)
    ref.backward(g)
    torch.testing.assert_close(x.grad, ref_x.grad, atol=1e-5, rtol=0)
    for m, r in zip(net, plain):
        torch.testing.assert_close(m.weight.grad, r.weight.grad, atol=1e-4, rtol=1e-5)
