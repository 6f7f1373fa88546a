"""Worker for ``test_world_size_8.py``: ``torchrun --nproc_per_node 8 THIS OUT_DIR``.

One launch of 8 gloo processes runs every check of the test module (so that the 8 Python
start-ups are paid once): the collectives of ``coupleface.utils.dist``, PartialFC with 21
classes (uneven shards) and under DDP with 11 classes, RAD/FCD on the global
batch, ``mine_relations`` over uneven shards (two of them empty), the verification metrics
with DDP padding, the three samplers' shards, and an ``ExactResumeHook`` resume from a
2-rank checkpoint record. Each rank saves what it saw to ``OUT_DIR/rank{r}.pt``; the test
recomputes everything in one process. The helpers the test shares live here.
"""
import datetime
import importlib.util
import math
import os.path as osp
import sys
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist

HERE = osp.dirname(osp.abspath(__file__))
TESTS = osp.dirname(HERE)
WORLD_SIZE = 8


def load(name, *parts):
    """A test helper module by path (the test directories are not packages)."""
    spec = importlib.util.spec_from_file_location(name, osp.join(TESTS, *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pfc = load('_partial_fc_worker', 'models', 'heads', '_partial_fc_worker.py')
rad = load('_rad_dist_worker', 'models', 'losses', '_rad_dist_worker.py')
verification = load('_verification_tests', 'evaluation', 'metrics',
                    'test_verification_metric.py')
dist_utils = load('_dist_worker', 'utils', '_dist_worker.py')

# ---------------------------------------------------------------------------- PartialFC
PFC_CLASSES = 21  # 21 // 8 = 2, 21 % 8 = 5: ranks 0-4 hold 3 centers, ranks 5-7 hold 2


def partial_fc(rank):
    out = dict(dense=pfc.dense_equality(rank, WORLD_SIZE, PFC_CLASSES),
               ddp=pfc.ddp_step(rank, WORLD_SIZE))  # 11 classes: 2 or 1 per rank
    head = pfc.build_head(pfc.HEADS['arcface'], PFC_CLASSES)
    head.load_state_dict({'weight': pfc.full_weight(PFC_CLASSES)}, strict=False)
    state = head.state_dict()  # collective: every rank gathers the full matrix
    fresh = pfc.build_head(pfc.HEADS['arcface'], PFC_CLASSES)
    fresh.load_state_dict(state)
    out.update(state_weight=state['weight'], shard=head.weight.detach().clone(),
               round_trip_shard=fresh.weight.detach().clone())
    return out


# ---------------------------------------------------------------------------- RAD / FCD
def relation_losses(rank):
    student, teacher, labels, bank_t, bank_y = rad.global_batch(WORLD_SIZE)
    mine = slice(rank * rad.LOCAL_BATCH, (rank + 1) * rad.LOCAL_BATCH)
    out = {}
    for name in rad.CASES:
        local = student[mine].clone().requires_grad_()
        value = rad.compute(name, local, teacher[mine], labels[mine], bank_t, bank_y)
        value.backward()
        out[name] = dict(loss=value.detach(), grad=local.grad)
    return out


# ---------------------------------------------------------------------------- mining
MINE_CLASSES, MINE_K, MINE_HARD = 9, 3, 2  # 9 identities: ranks 5-7 mine no row
MINE_SHARD_SIZES = (7, 1, 5, 0, 6, 3, 8, 0)  # 30 samples, two empty shards


def mining_inputs():
    """Embeddings, labels and each rank's (shuffled) sample indices."""
    gen = torch.Generator().manual_seed(4)
    num = sum(MINE_SHARD_SIZES)
    labels = torch.arange(num) % MINE_CLASSES
    protos = torch.randn(MINE_CLASSES, 6, generator=gen, dtype=torch.float64)
    emb = (protos[labels] + 0.6 * torch.randn(num, 6, generator=gen, dtype=torch.float64))
    order = torch.randperm(num, generator=gen)
    bounds = np.cumsum((0,) + MINE_SHARD_SIZES)
    shards = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return emb.float(), labels.numpy(), shards


def mine(rank):
    from coupleface.mining.pipeline import mine_relations
    emb, labels, shards = mining_inputs()
    mined = mine_relations(emb[shards[rank]], labels, MINE_CLASSES, MINE_K,
                           sample_indices=shards[rank].numpy(), hard_positives=MINE_HARD,
                           chunk_size=2, progress=False, distributed=True)
    return dict(neighbours=torch.from_numpy(mined.neighbours),
                similarities=torch.from_numpy(mined.similarities),
                centers=torch.from_numpy(mined.centers),
                hard_positives=torch.from_numpy(mined.hard_positives))


# ---------------------------------------------------------------------------- metrics
def ddp_shard(items, rank):
    """mmengine ``DefaultSampler(shuffle=False)``: pad by repeating from the start, stride."""
    total = math.ceil(len(items) / WORLD_SIZE) * WORLD_SIZE
    indices = (list(range(len(items))) * 2)[:total]
    return [items[i] for i in indices[rank:total:WORLD_SIZE]]


def all_pairs_samples():
    """123 images of 20 identities (123 % 8 = 3: five padded repeats)."""
    from mmpretrain.structures import DataSample
    rng = np.random.default_rng(0)
    labels = np.arange(123) % 20
    emb = (rng.normal(size=(20, 16))[labels] + rng.normal(size=(123, 16))).astype(np.float32)
    out = []
    for i in rng.permutation(123):
        s = DataSample().set_gt_label(int(labels[i]))
        s.set_field(torch.from_numpy(emb[i]), 'embedding')
        s.set_metainfo(dict(sample_idx=int(i)))
        out.append(s.to_dict())
    return out


def all_pairs_metric():
    from coupleface.registry import METRICS
    return METRICS.build(dict(type='AllPairsVerificationMetric', fars=(1e-2, 1e-3),
                              chunk_size=17, prefix='synth_all'))


def metrics(rank):
    samples, meta = verification._two_sets()  # 600 images: 600 % 8 = 0, add one
    samples = samples + [samples[-1]]
    shard = ddp_shard(samples, rank)
    metric = verification._metric(meta)
    for start in range(0, len(shard), 16):
        metric.process(None, shard[start:start + 16])
    pairs = all_pairs_metric()
    pairs.process({}, ddp_shard(all_pairs_samples(), rank))
    return dict(verification=_floats(metric.evaluate(len(samples))),
                all_pairs=_floats(pairs.evaluate(123)))


def _floats(results):
    return {key: float(value) for key, value in results.items()}


# ---------------------------------------------------------------------------- samplers
class Identities:
    """A dataset stand-in with ``class_to_indices``: identity ``c`` has ``SIZES[c]`` images
    at scattered indices."""

    SIZES = (5, 3, 6, 4, 2, 7, 5, 3, 4, 6, 5, 3)  # 53 images, 12 identities

    def __init__(self):
        labels = np.repeat(np.arange(len(self.SIZES)), self.SIZES)
        self.labels = np.random.default_rng(1).permutation(labels)
        self.class_to_indices = [np.flatnonzero(self.labels == c)
                                 for c in range(len(self.SIZES))]

    def __len__(self):
        return len(self.labels)


SEED, EPOCH = 11, 2
RELATION = dict(group_size=2, images_per_identity=2)  # 4 samples a group
PARTNER_NEIGHBOURS = (np.arange(12)[:, None] + np.arange(0, 4)[None, :]) % 12


NUM_SAMPLES = sum(Identities.SIZES)


def resumable(seed=SEED):
    """A ResumableSampler over 53 samples (rank and world size: MMEngine's dist info)."""
    from coupleface.datasets.samplers import ResumableSampler
    return ResumableSampler(list(range(NUM_SAMPLES)), seed=seed)


def relation(batch_size, seed=SEED, rank=None, world_size=None):
    from coupleface.datasets.samplers import RelationSampler
    return RelationSampler(Identities(), batch_size=batch_size, seed=seed, rank=rank,
                           world_size=world_size, **RELATION)


def partner(batch_size, num_partners, seed=SEED, rank=None, world_size=None):
    from coupleface.datasets.samplers import PartnerSampler
    sampler = PartnerSampler(Identities(), batch_size=batch_size, num_partners=num_partners,
                             seed=seed, rank=rank, world_size=world_size)
    sampler.set_neighbours(PARTNER_NEIGHBOURS)
    return sampler


def epoch_stream(sampler, epoch=EPOCH):
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


def sampler_shards():
    return dict(resumable=epoch_stream(resumable()), relation=epoch_stream(relation(4)),
                partner=epoch_stream(partner(3, 1)))


# ---------------------------------------------------------------------------- resume
# A 2-rank run (per-rank batch SAVED_BATCH[name]) checkpointed SAVED_ITERS[name] iterations
# into epoch EPOCH; 8 ranks resume it with per-rank batch BATCH[name].
SAVED_ITERS = dict(resumable=5, relation=3, partner=5)
SAVED_BATCH = dict(resumable=4, relation=8, partner=6)
BATCH = dict(resumable=3, relation=4, partner=3)


def _fake_runner(sampler, batch_size, iteration):
    from mmengine.runner import EpochBasedTrainLoop
    loop = EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)

    class Loader:
        def __init__(self):
            self.sampler, self.batch_size = sampler, batch_size

        def __len__(self):
            return math.ceil(len(sampler) / batch_size)

    return SimpleNamespace(train_dataloader=Loader(), epoch=EPOCH, iter=iteration,
                           train_loop=loop, work_dir='/nonexistent', seed=0)


def resume(name, sampler):
    """What the hook makes of a 2-rank record on 8 ranks: the rank's rest of the epoch."""
    from coupleface.engine.hooks import ExactResumeHook
    saved_length = 10  # iterations per epoch of the 2-rank run (only logged)
    iteration = EPOCH * saved_length + SAVED_ITERS[name]
    hook = ExactResumeHook()
    hook.after_load_checkpoint(None, dict(
        meta=dict(epoch=EPOCH, iter=iteration),
        exact_resume=dict(epoch=EPOCH, epoch_iters=SAVED_ITERS[name], world_size=2,
                          batch_size=SAVED_BATCH[name], epoch_length=saved_length,
                          sampler_seed=SEED)))
    hook.before_train(_fake_runner(sampler, BATCH[name], iteration))
    sampler.set_epoch(EPOCH)  # DistSamplerSeedHook: the same epoch keeps the position
    return dict(state=sampler.state_dict(), rest=torch.tensor(list(sampler), dtype=torch.long),
                epoch_iters=hook._epoch_iters)


def resumes():
    # seed=None: each sampler syncs a random seed over the 8 ranks; the record's wins
    return dict(resumable=resume('resumable', resumable(seed=None)),
                relation=resume('relation', relation(BATCH['relation'], seed=None)),
                partner=resume('partner', partner(BATCH['partner'], 1, seed=None)))


def main(out_dir):
    from coupleface.utils.dist import get_dist_info, init_cpu_distributed
    init_cpu_distributed(timeout_s=120)
    if not dist.is_initialized():  # a CUDA machine: gloo here all the same
        dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=120))
    rank, world_size = get_dist_info()
    torch.set_num_threads(1)
    result = dict(rank=rank, world_size=world_size, utils=dist_utils.collect(rank, world_size),
                  partial_fc=partial_fc(rank),
                  relation_losses=relation_losses(rank), mining=mine(rank),
                  metrics=metrics(rank), samplers=sampler_shards(), resume=resumes())
    torch.save(result, f'{out_dir}/rank{rank}.pt')
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
