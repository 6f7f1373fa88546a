"""Worker for ``test_relation_aware_dist.py``.

Run as ``torchrun --nproc_per_node 2 _rad_dist_worker.py OUT``.
Each rank takes its shard of a fixed global batch, computes every loss of ``CASES`` with
backward on its local student tensor, and saves the loss values and gradients to
``OUT/rank{r}.pt``; the test recomputes everything in one process on the whole batch.
"""
import sys

import torch
import torch.distributed as dist

from coupleface.models.losses import FeatureConsistencyLoss, RelationAwareDistillationLoss
from coupleface.utils.dist import get_dist_info, init_cpu_distributed

LOCAL_BATCH, DIM, NUM_IDS, BANK = 6, 5, 4, 3

# name -> (loss class, kwargs, uses the bank)
CASES = {
    'rad_default': (RelationAwareDistillationLoss, dict(num_negatives=2), False),
    'rad_cross_l2': (RelationAwareDistillationLoss,
                     dict(relation='cross', distance='l2', num_negatives=2), False),
    'rad_student_smooth_l1_uniform': (RelationAwareDistillationLoss,
                                      dict(relation='student', distance='smooth_l1',
                                           weighting='uniform', num_negatives=None), False),
    'rad_student_l2_hard3': (RelationAwareDistillationLoss,
                             dict(relation='student', distance='l2', num_negatives=3,
                                  weight_temperature=0.3), False),
    'rad_l1_keep_self': (RelationAwareDistillationLoss,
                         dict(relation='cross', distance='l1', exclude_self=False,
                              num_negatives=4), False),
    'rad_kl': (RelationAwareDistillationLoss, dict(relation='cross', distance='kl',
                                                    num_negatives=3,
                                                    temperature=0.5), False),
    'rad_student_kl': (RelationAwareDistillationLoss,
                       dict(relation='student', distance='kl', num_negatives=None), False),
    'rad_bank': (RelationAwareDistillationLoss, dict(relation='cross', num_negatives=3),
                 True),
    'fcd_l2': (FeatureConsistencyLoss, dict(mode='l2'), False),
    'fcd_mse': (FeatureConsistencyLoss, dict(mode='mse', loss_weight=2.0), False),
}


def global_batch(world_size):
    """Student, teacher, labels of the global batch (identities spread over ranks) + bank."""
    gen = torch.Generator().manual_seed(0)
    n = world_size * LOCAL_BATCH
    teacher = torch.randn(n, DIM, generator=gen, dtype=torch.float64)
    student = teacher + 0.7 * torch.randn(n, DIM, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, NUM_IDS, (n,), generator=gen)
    bank_t = torch.randn(BANK, DIM, generator=gen, dtype=torch.float64)
    bank_y = torch.randint(0, NUM_IDS, (BANK,), generator=gen)
    return student, teacher, labels, bank_t, bank_y


def compute(name, student, teacher, labels, bank_t, bank_y):
    cls, kwargs, use_bank = CASES[name]
    loss = cls(**kwargs)
    if cls is FeatureConsistencyLoss:
        return loss(student, teacher)
    if use_bank:
        return loss(student, teacher, labels, bank_teacher=bank_t, bank_labels=bank_y)
    return loss(student, teacher, labels)


def main(out_dir):
    init_cpu_distributed()
    if not dist.is_initialized():  # a CUDA machine: MMEngine would init nccl; gloo here
        dist.init_process_group('gloo')
    rank, world_size = get_dist_info()
    student, teacher, labels, bank_t, bank_y = global_batch(world_size)
    mine = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    results = {}
    for name in CASES:
        local = student[mine].clone().requires_grad_()
        value = compute(name, local, teacher[mine], labels[mine], bank_t, bank_y)
        value.backward()
        results[name] = dict(loss=value.detach(), grad=local.grad)
    torch.save(dict(rank=rank, world_size=world_size, results=results),
               f'{out_dir}/rank{rank}.pt')
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
