"""autocast_off and upcast: the fp32 maths of every loss and head under AMP."""
import pytest
import torch

from coupleface.utils.amp import autocast_off, upcast


@pytest.mark.parametrize('device', [torch.device('cpu'), 'cpu'])
def test_autocast_off_computes_in_fp32_under_bf16_autocast(device):
    a, b = torch.randn(4, 3), torch.randn(3, 5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16  # autocast is on outside
        with autocast_off(device):
            inside = a @ b
            assert not torch.is_autocast_enabled('cpu')
        assert torch.is_autocast_enabled('cpu')  # restored on exit
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, a @ b)


def test_autocast_off_is_a_no_op_without_autocast_for_the_device(monkeypatch):
    monkeypatch.setattr(torch.amp, 'is_autocast_available', lambda device_type: False)
    with autocast_off('cpu') as ctx:
        assert ctx is None  # contextlib.nullcontext


@pytest.mark.parametrize('dtype, expected', [
    (torch.float16, torch.float32), (torch.bfloat16, torch.float32),
    (torch.int64, torch.float32), (torch.float32, torch.float32),
    (torch.float64, torch.float64)])
def test_upcast_dtypes(dtype, expected):
    x = torch.arange(6).reshape(2, 3).to(dtype)
    out = upcast(x)
    assert out.dtype == expected
    torch.testing.assert_close(out, x.to(expected))
    if dtype in (torch.float32, torch.float64):
        assert out is x  # no copy


def test_upcast_keeps_the_gradient_path_to_half_inputs():
    x = torch.randn(3, dtype=torch.bfloat16, requires_grad=True)
    (upcast(x) * 2).sum().backward()
    assert x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(x.grad, torch.full_like(x, 2.0))
