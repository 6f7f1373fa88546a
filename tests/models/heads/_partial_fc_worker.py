"""Worker for ``test_partial_fc_dist.py``; run as ``torchrun --nproc_per_node 2 THIS OUT``.

Each rank runs :class:`PartialFCHead` on its slice of fixed global batches and saves what it
saw to ``OUT/rank{r}.pt``; the test recomputes everything with the dense heads in one
process. ``OUT/dense_weight.pt`` (written by the test) is a full center matrix to load.
"""
import datetime
import sys

import torch
import torch.distributed as dist
from torch import nn

from coupleface.engine.hooks import PartialFCCheckpointHook
from coupleface.models.heads import PartialFCHead
from coupleface.models.heads.partial_fc import gather_partial_fc_weights
from coupleface.utils.dist import (
    get_dist_info,
    init_cpu_distributed,
    mark_rank_local_params_for_ddp,
)

LOCAL_BATCH, DIM, NUM_CLASSES = 4, 8, 11
HEADS = {
    'arcface': dict(type='ArcFaceHead'),
    'arcface_smooth': dict(type='ArcFaceHead', label_smoothing=0.1, loss_weight=0.5),
    'cosface': dict(type='CosFaceHead'),
    'combined': dict(type='CombinedMarginHead', m1=0.9, m2=0.4, m3=0.15),
    'curricularface': dict(type='CurricularFaceHead', momentum=0.5),
    'adaface': dict(type='AdaFaceHead', t_alpha=0.5),
}
# Sampling: 40 classes (20 per rank), sample_rate 0.25 -> 5 centers per rank.
SAMPLE_CLASSES, SAMPLE_RATE = 40, 0.25
SAMPLE_LABELS = {
    # rank 0 owns 2 positive classes (1 and 7, 7 twice), rank 1 owns 3 (21, 30, 39)
    'few': [1, 21, 7, 30, 7, 39, 21, 1],
    # rank 0 owns 7 distinct positives (> 5 sampled), rank 1 owns 1
    'many': [0, 2, 4, 6, 8, 10, 12, 25],
}
INIT_CLASSES = 2100  # 1050 per rank: the shard boundary falls inside an init block
INIT_SEED = 123


def global_batch(world_size, num_classes=NUM_CLASSES, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n = world_size * LOCAL_BATCH
    # Rows with larger norms too, so that AdaFace's margin scaler is not constant.
    feats = torch.randn(n, DIM, generator=gen, dtype=torch.float64)
    feats = feats * torch.linspace(0.5, 3.0, n, dtype=torch.float64).unsqueeze(1)
    labels = torch.randint(0, num_classes, (n,), generator=gen)
    return feats, labels


def full_weight(num_classes=NUM_CLASSES, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_classes, DIM, generator=gen, dtype=torch.float64)


def backbone_weight():
    gen = torch.Generator().manual_seed(2)
    return torch.randn(DIM, 6, generator=gen, dtype=torch.float64) * 0.5


def backbone_inputs(world_size):
    gen = torch.Generator().manual_seed(3)
    return torch.randn(world_size * LOCAL_BATCH, 6, generator=gen, dtype=torch.float64)


def build_head(cfg, num_classes=NUM_CLASSES, sample_rate=1.0):
    head = PartialFCHead(dict(cfg, num_classes=num_classes, in_channels=DIM),
                         sample_rate=sample_rate).double()
    return head


class TinyRecognizer(nn.Module):
    """A linear 'backbone' and a PartialFC head, the shape DDP sees in training."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(6, DIM, bias=False).double()
        self.head = build_head(HEADS['arcface'])
        with torch.no_grad():
            self.backbone.weight.copy_(backbone_weight())
        self.head.load_state_dict({'weight': full_weight()}, strict=False)
        mark_rank_local_params_for_ddp(self)

    def forward(self, x, y):
        return self.head.loss(self.backbone(x), y)['loss_cls']


def dense_equality(rank, world_size, num_classes=NUM_CLASSES):
    feats, labels = global_batch(world_size, num_classes)
    mine = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    out = {}
    for name, cfg in HEADS.items():
        head = build_head(cfg, num_classes).train()
        head.load_state_dict({'weight': full_weight(num_classes)}, strict=False)
        x = feats[mine].clone().requires_grad_()
        losses = head.loss(x, labels[mine])
        losses['loss_cls'].backward()
        out[name] = dict(loss=losses['loss_cls'].detach(), acc=losses['acc_top1'],
                         feat_grad=x.grad, weight_grad=head.weight.grad,
                         buffers={k: v.clone() for k, v in head.margin_head.named_buffers()},
                         class_start=head.class_start, num_local=head.num_local)
    return out


def sampling(rank, world_size):
    feats, _ = global_batch(world_size, SAMPLE_CLASSES)
    mine = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    out = {}
    for case, label_list in SAMPLE_LABELS.items():
        labels = torch.tensor(label_list)
        head = build_head(HEADS['arcface'], SAMPLE_CLASSES, SAMPLE_RATE)
        head.load_state_dict({'weight': full_weight(SAMPLE_CLASSES)}, strict=False)
        torch.manual_seed(1000 + rank)
        index, columns = head.sample(labels)
        torch.manual_seed(1000 + rank)  # loss() draws the same sample
        x = feats[mine].clone().requires_grad_()
        losses = head.loss(x, labels[mine])
        losses['loss_cls'].backward()
        out[case] = dict(index=index, columns=columns, num_sample=head.num_sample,
                         class_start=head.class_start, loss=losses['loss_cls'].detach(),
                         acc=losses['acc_top1'], feat_grad=x.grad, weight_grad=head.weight.grad)
    return out


class _FakeRunner:
    """What PartialFCCheckpointHook uses of MMEngine's Runner; save is rank-0-only."""

    def __init__(self, model, optimizer):
        from mmengine.optim import OptimWrapper

        self.model = model
        self.optim_wrapper = OptimWrapper(optimizer)
        self.saved = None

    def save_checkpoint(self, *args, **kwargs):
        if dist.get_rank() == 0:  # mmengine's @master_only
            self.saved = self.model.state_dict()


def checkpoints(rank, world_size, out_dir):
    out = {}
    # Every rank calls state_dict(): the shards are gathered into the full matrix.
    head = build_head(HEADS['curricularface'])
    head.load_state_dict({'weight': full_weight()}, strict=False)
    state = head.state_dict()
    out['state_keys'] = sorted(state)
    out['state_weight'] = state['weight']
    out['shard'] = head.weight.detach().clone()
    # A dense (1-process) checkpoint loads into the shards.
    dense = torch.load(f'{out_dir}/dense_weight.pt', weights_only=True)
    other = build_head(HEADS['arcface'])
    other.load_state_dict({'weight': dense})
    out['loaded_dense_shard'] = other.weight.detach().clone()
    # Round trip at this world size: save from these ranks, load into fresh heads.
    fresh = build_head(HEADS['curricularface'])
    fresh.load_state_dict(state)
    out['round_trip_shard'] = fresh.weight.detach().clone()

    # Rank-0-only state_dict() after gather_partial_fc_weights (what the hook does).
    model = nn.ModuleDict(dict(head=build_head(HEADS['arcface'])))
    model['head'].load_state_dict({'weight': full_weight()}, strict=False)
    gather_partial_fc_weights(model)
    if rank == 0:
        out['cached_state_weight'] = model.state_dict()['head.weight']
    dist.barrier()
    with torch.no_grad():  # the shard changes: the cached matrix is stale
        model['head'].weight.add_(1.0)
    out['after_update_state_weight'] = model.state_dict()['head.weight']  # collective again

    # The hook: every rank calls runner.save_checkpoint, rank 0 saves the full matrix.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model['head'].weight.grad = torch.ones_like(model['head'].weight)
    optimizer.step()
    runner = _FakeRunner(model, optimizer)
    hook = PartialFCCheckpointHook()
    hook.before_run(runner)
    hook.before_run(runner)  # idempotent
    runner.save_checkpoint('unused_dir', 'epoch_1.pth')
    if rank == 0:
        out['hook_saved_weight'] = runner.saved['head.weight']
    out['hook_expected_shard'] = model['head'].weight.detach().clone()
    out['momentum_before'] = model['head'].weight in optimizer.state
    hook.before_train(runner)  # more than one rank: the shard's optimizer state is dropped
    out['momentum_after'] = model['head'].weight in optimizer.state

    # The initial matrix does not depend on the number of ranks.
    torch.manual_seed(INIT_SEED)
    init_head = PartialFCHead(dict(type='ArcFaceHead', num_classes=INIT_CLASSES, in_channels=4))
    out['init_full'] = init_head.gather_weight()
    return out


def ddp_step(rank, world_size):
    x_all = backbone_inputs(world_size)
    _, labels = global_batch(world_size)
    mine = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    model = TinyRecognizer()
    ignored = list(model._ddp_params_and_buffers_to_ignore)
    ddp = nn.parallel.DistributedDataParallel(model)  # CPU: no device_ids
    loss = ddp(x_all[mine], labels[mine])
    loss.backward()
    return dict(ignored=ignored, loss=loss.detach(),
                backbone_grad=model.backbone.weight.grad.clone(),
                shard_grad=model.head.weight.grad.clone(),
                shard_unchanged=model.head.weight.detach().clone())


def main(out_dir):
    init_cpu_distributed(timeout_s=60)
    if not dist.is_initialized():  # a CUDA machine: gloo here all the same
        dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=60))
    rank, world_size = get_dist_info()
    torch.set_num_threads(1)
    result = dict(rank=rank, world_size=world_size,
                  dense=dense_equality(rank, world_size),
                  sampling=sampling(rank, world_size),
                  checkpoints=checkpoints(rank, world_size, out_dir),
                  ddp=ddp_step(rank, world_size))
    torch.save(result, f'{out_dir}/rank{rank}.pt')
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
