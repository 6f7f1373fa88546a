"""Worker for ``test_dist.py``: run with ``torchrun --nproc_per_node 2 _dist_worker.py OUT_DIR``.

Each rank gathers its shard of a fixed global batch with ``all_gather_with_grad``, takes
the gradient of ``sum((gathered * w_rank) ** 2)`` (a different ``w`` per rank, so the
cross-rank gradient sum matters) and saves what it saw to ``OUT_DIR/rank{r}.pt``; the
test recomputes everything in one process.
"""
import sys

import torch
import torch.distributed as dist

from coupleface.utils.dist import (
    all_gather_no_grad,
    all_gather_with_grad,
    all_reduce,
    all_reduce_sum,
    get_dist_info,
    init_cpu_distributed,
)

LOCAL_BATCH, DIM = 3, 5


def global_batch(world_size):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(world_size * LOCAL_BATCH, DIM, generator=gen, dtype=torch.float64)


def rank_weights(rank, world_size):
    gen = torch.Generator().manual_seed(100 + rank)
    return torch.randn(world_size * LOCAL_BATCH, DIM, generator=gen, dtype=torch.float64)


def main(out_dir):
    initialised = init_cpu_distributed()
    if not dist.is_initialized():  # a CUDA machine: MMEngine would init nccl; gloo here
        dist.init_process_group('gloo')
    rank, world_size = get_dist_info()
    torch.save(dict(collect(rank, world_size), initialised=initialised),
               f'{out_dir}/rank{rank}.pt')
    dist.barrier()
    dist.destroy_process_group()


def collect(rank, world_size):
    """Run the collectives on this rank's shard; what the test checks (a dict)."""
    x = global_batch(world_size)[rank * LOCAL_BATCH:(rank + 1) * LOCAL_BATCH].clone()
    x.requires_grad_()
    gathered = all_gather_with_grad(x)
    ((gathered * rank_weights(rank, world_size)) ** 2).sum().backward()
    no_grad = all_gather_no_grad(x)

    try:
        all_gather_with_grad(torch.zeros(rank + 1, 2))
        unequal_error = ''
    except ValueError as err:
        unequal_error = str(err)

    reduced = {}
    for op in ('sum', 'max', 'min', 'product'):
        value = torch.tensor([rank + 1.0, -rank - 1.0])
        assert all_reduce(value, op) is value
        reduced[f'reduced_{op}'] = value
    source = torch.tensor([rank + 1.0, -rank - 1.0], requires_grad=True)
    summed = all_reduce_sum(source)

    return dict(**reduced, summed_copy=summed, summed_source=source.detach(),
                summed_copy_requires_grad=summed.requires_grad, rank=rank,
                world_size=world_size, x=x.detach(), gathered=gathered.detach(), grad=x.grad,
                gathered_requires_grad=gathered.requires_grad, no_grad=no_grad,
                no_grad_requires_grad=no_grad.requires_grad, unequal_error=unequal_error)


if __name__ == '__main__':
    main(sys.argv[1])
