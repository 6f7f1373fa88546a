"""PartialFC's maths: class shards, rank-count-independent init, the autograd functions."""
import pytest
import torch
import torch.nn.functional as F

from coupleface.models.heads.partial_fc_functions import (
    INIT_BLOCK,
    DistributedSoftmaxCrossEntropy,
    ScaleGradient,
    draw_shard,
    shard_range,
)


@pytest.mark.parametrize('world_size', [1, 2, 3])
@pytest.mark.parametrize('num_classes', [10, 11])
def test_class_shards_cover_every_class_once(world_size, num_classes):
    classes, sizes = [], []
    for rank in range(world_size):
        start, num_local = shard_range(num_classes, world_size, rank)
        assert start == num_classes // world_size * rank + min(rank, num_classes % world_size)
        classes.extend(range(start, start + num_local))
        sizes.append(num_local)
    assert classes == list(range(num_classes))
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize('world_size', [1, 2, 3])
def test_draw_shard_rows_do_not_depend_on_the_number_of_ranks(world_size):
    num_classes, dim = INIT_BLOCK + 7, 3  # two init blocks
    torch.manual_seed(4)
    full = draw_shard(num_classes, dim, 0, num_classes, std=0.01)
    assert full.shape == (num_classes, dim) and full.dtype == torch.float32
    assert 0.005 < float(full.std()) < 0.015
    parts = []
    for rank in range(world_size):
        torch.manual_seed(4)
        parts.append(draw_shard(num_classes, dim, *shard_range(num_classes, world_size, rank),
                                std=0.01))
    torch.testing.assert_close(torch.cat(parts), full, rtol=0, atol=0)


def test_scale_gradient_is_identity_forward_and_scales_backward():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = ScaleGradient.apply(x, 3.0)
    torch.testing.assert_close(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 3.0))


@pytest.mark.parametrize('smoothing', [0.0, 0.1])
def test_one_rank_softmax_cross_entropy_is_torchs(smoothing):
    """All columns on one rank (every row owned): F.cross_entropy's value and gradient."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 7, generator=gen, dtype=torch.float64) * 4
    labels = torch.randint(0, 7, (5,), generator=gen)
    ours_in = logits.clone().requires_grad_()
    ref_in = logits.clone().requires_grad_()
    ours = DistributedSoftmaxCrossEntropy.apply(ours_in, labels, smoothing, 7)
    ref = F.cross_entropy(ref_in, labels, label_smoothing=smoothing)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad)
    assert torch.autograd.gradcheck(
        lambda z: DistributedSoftmaxCrossEntropy.apply(z, labels, smoothing, 7),
        (logits.clone().requires_grad_(),))
