"""Correctness at world size 8: 8 gloo processes on CPU equal one process.

The 2-rank exactness tests (``-m dist``) cannot see what only uneven or empty shards show:
a class count that does not split over the ranks, a rank with no sample to mine or no
identity row, DDP padding of more than one sample, the samplers' strides over 8 ranks and a
resume on a different number of ranks than the checkpoint's. One ``torchrun`` launch of
8 processes (``_world_size_8_worker.py``, ``OMP_NUM_THREADS=1``, tiny tensors) produces
everything; each test checks one part against the single-process computation. The resume
is checked at the ``ExactResumeHook`` + sampler level: each rank's hook loads the
``exact_resume`` record a 2-rank checkpoint holds and places its sampler (a full Runner
per rank would not fit CI), and the test asserts what the hook documents for another
number of ranks: the epoch continues in the same global order, nothing is skipped, fewer
than one global batch is trained twice. Marked ``slow`` and ``dist``: run with
``python -m pytest -m "slow and dist" tests/reliability``.
"""
import importlib.util
import math
import os
import os.path as osp
import socket
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
_spec = importlib.util.spec_from_file_location('_world_size_8_worker',
                                               osp.join(HERE, '_world_size_8_worker.py'))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

W = worker.WORLD_SIZE
LAUNCHER_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK',
                'MASTER_ADDR', 'MASTER_PORT', 'TORCHELASTIC_RUN_ID')
pytestmark = [pytest.mark.slow, pytest.mark.dist]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('world_size_8'))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    for name in LAUNCHER_ENV:
        env.pop(name, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1',
           '--nproc_per_node', str(W), '--master_addr', '127.0.0.1',
           '--master_port', str(_free_port()), osp.join(HERE, '_world_size_8_worker.py'), out]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = [torch.load(osp.join(out, f'rank{r}.pt'), weights_only=True) for r in range(W)]
    assert [r['rank'] for r in res] == list(range(W))
    assert all(r['world_size'] == W for r in res)
    return res


# ---------------------------------------------------------------------------- collectives
def test_collectives_and_all_gather_gradient_over_8_ranks(results):
    du = worker.dist_utils
    x_global = du.global_batch(W).requires_grad_()
    total = sum(((x_global * du.rank_weights(r, W)) ** 2).sum() for r in range(W))
    total.backward()
    b = du.LOCAL_BATCH
    ranks = torch.arange(1, W + 1, dtype=torch.float32)
    for rank, res in enumerate(results):
        got = res['utils']
        torch.testing.assert_close(got['gathered'], x_global.detach(), rtol=0, atol=0)
        torch.testing.assert_close(got['no_grad'], x_global.detach(), rtol=0, atol=0)
        assert got['gathered_requires_grad'] and not got['no_grad_requires_grad']
        torch.testing.assert_close(got['grad'], x_global.grad[rank * b:(rank + 1) * b],
                                   rtol=0, atol=1e-6)
        assert 'same shape on every rank' in got['unequal_error'] and '(8, 2)' in \
            got['unequal_error']
        # rank r holds [r + 1, -(r + 1)]
        torch.testing.assert_close(got['reduced_sum'], torch.tensor([36.0, -36.0]))
        torch.testing.assert_close(got['reduced_max'], torch.tensor([8.0, -1.0]))
        torch.testing.assert_close(got['reduced_min'], torch.tensor([1.0, -8.0]))
        torch.testing.assert_close(got['reduced_product'], ranks.prod().repeat(2))
        torch.testing.assert_close(got['summed_copy'], torch.tensor([36.0, -36.0]))
        torch.testing.assert_close(got['summed_source'], torch.tensor([rank + 1.0, -rank - 1.0]))


# ---------------------------------------------------------------------------- PartialFC
def test_partial_fc_uneven_shards_equal_dense_head_on_global_batch(results):
    pfc, classes = worker.pfc, worker.PFC_CLASSES
    feats, labels = pfc.global_batch(W, classes)
    b = pfc.LOCAL_BATCH
    shards = [(classes // W * r + min(r, classes % W), classes // W + (r < classes % W))
              for r in range(W)]
    assert [n for _, n in shards] == [3, 3, 3, 3, 3, 2, 2, 2]
    for name, cfg in pfc.HEADS.items():
        head = pfc.build_head(cfg, classes).train()  # one process: the dense head
        head.load_state_dict({'weight': pfc.full_weight(classes)}, strict=False)
        x = feats.clone().requires_grad_()
        losses = head.loss(x, labels)
        losses['loss_cls'].backward()
        for rank, res in enumerate(results):
            got = res['partial_fc']['dense'][name]
            start, n = shards[rank]
            assert (got['class_start'], got['num_local']) == (start, n), name
            torch.testing.assert_close(got['loss'], losses['loss_cls'].detach(), rtol=1e-5,
                                       atol=1e-5)
            torch.testing.assert_close(got['acc'], losses['acc_top1'])
            torch.testing.assert_close(got['weight_grad'], head.weight.grad[start:start + n],
                                       rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(got['feat_grad'], W * x.grad[rank * b:(rank + 1) * b],
                                       rtol=1e-5, atol=1e-7)
            for key, value in got['buffers'].items():
                buffer = getattr(head.margin_head, key).to(value.dtype)
                torch.testing.assert_close(value, buffer, rtol=1e-6, atol=1e-7)
    # the batch's positives lie on several ranks (the cross-rank paths are exercised)
    owners = {next(r for r, (s, n) in enumerate(shards) if s <= y < s + n)
              for y in labels.tolist()}
    assert len(owners) >= 4, owners


def test_partial_fc_state_dict_gathers_the_full_matrix(results):
    full = worker.pfc.full_weight(worker.PFC_CLASSES)
    for res in results:
        got = res['partial_fc']
        start, n = got['dense']['arcface']['class_start'], got['dense']['arcface']['num_local']
        torch.testing.assert_close(got['state_weight'], full, rtol=0, atol=0)
        torch.testing.assert_close(got['shard'], full[start:start + n], rtol=0, atol=0)
        torch.testing.assert_close(got['round_trip_shard'], full[start:start + n], rtol=0,
                                   atol=0)


def test_partial_fc_under_ddp_averages_backbone_only(results):
    pfc = worker.pfc
    x_all = pfc.backbone_inputs(W)
    _, labels = pfc.global_batch(W)
    backbone = torch.nn.Linear(6, pfc.DIM, bias=False).double()
    with torch.no_grad():
        backbone.weight.copy_(pfc.backbone_weight())
    head = pfc.build_head(pfc.HEADS['arcface'])
    head.load_state_dict({'weight': pfc.full_weight()}, strict=False)
    loss = head.loss(backbone(x_all), labels)['loss_cls']
    loss.backward()
    c = pfc.NUM_CLASSES  # 11 over 8 ranks: 2, 2, 2, 1, 1, 1, 1, 1
    for rank, res in enumerate(results):
        got = res['partial_fc']['ddp']
        start, n = c // W * rank + min(rank, c % W), c // W + (rank < c % W)
        assert got['ignored'] == ['head.weight']
        torch.testing.assert_close(got['loss'], loss.detach(), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got['backbone_grad'], backbone.weight.grad, rtol=1e-5,
                                   atol=1e-7)
        torch.testing.assert_close(got['shard_unchanged'], pfc.full_weight()[start:start + n],
                                   rtol=0, atol=0)
        torch.testing.assert_close(got['shard_grad'], head.weight.grad[start:start + n],
                                   rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------- RAD / FCD
def test_rad_and_fcd_on_shards_equal_one_process_on_global_batch(results):
    rad = worker.rad
    student, teacher, labels, bank_t, bank_y = rad.global_batch(W)
    b = rad.LOCAL_BATCH
    assert 'rad_student_kl' in rad.CASES and 'fcd_l2' in rad.CASES
    for name in rad.CASES:
        s = student.clone().requires_grad_()
        single = rad.compute(name, s, teacher, labels, bank_t, bank_y)
        single.backward()
        per_rank = [r['relation_losses'][name] for r in results]
        mean_loss = sum(r['loss'] for r in per_rank) / W
        torch.testing.assert_close(mean_loss, single.detach(), rtol=0, atol=1e-10,
                                   msg=f'{name}: mean of rank losses')
        for rank, res in enumerate(per_rank):
            torch.testing.assert_close(res['grad'] / W, s.grad[rank * b:(rank + 1) * b],
                                       rtol=0, atol=1e-10, msg=f'{name}: rank {rank} grad')


# ---------------------------------------------------------------------------- mining
def test_mining_over_uneven_and_empty_shards_equals_one_process(results):
    from coupleface.mining.pipeline import mine_relations
    emb, labels, shards = worker.mining_inputs()
    assert sorted(torch.cat(shards).tolist()) == list(range(len(labels)))
    assert [len(s) for s in shards].count(0) == 2
    ref = mine_relations(emb, labels, worker.MINE_CLASSES, worker.MINE_K,
                         hard_positives=worker.MINE_HARD, progress=False, distributed=False)
    assert (np.diff(ref.similarities, axis=1) < -1e-4).all()  # no near-ties to flip
    for rank, res in enumerate(results):
        got = res['mining']
        np.testing.assert_array_equal(got['neighbours'].numpy(), ref.neighbours, err_msg=rank)
        np.testing.assert_array_equal(got['hard_positives'].numpy(), ref.hard_positives,
                                      err_msg=str(rank))
        np.testing.assert_allclose(got['similarities'].numpy(), ref.similarities, atol=1e-6)
        np.testing.assert_allclose(got['centers'].numpy(), ref.centers, atol=1e-6)


# ---------------------------------------------------------------------------- metrics
def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], nan_ok=True), key


def test_metrics_drop_ddp_padding_over_8_ranks(results):
    samples, meta = worker.verification._two_sets()
    ref = worker.verification._metric(meta)
    ref.process(None, samples)
    ref = ref.evaluate(len(samples))
    pairs = worker.all_pairs_metric()
    pairs.process({}, worker.all_pairs_samples())
    pairs_ref = pairs.evaluate(123)
    assert pairs_ref['synth_all/num_images'] == 123
    for res in results:
        worker.verification._check_expected(res['metrics']['verification'])
        _same(res['metrics']['verification'], ref)
        _same(res['metrics']['all_pairs'], pairs_ref)


# ---------------------------------------------------------------------------- samplers
def _resumable_order(monkeypatch, rank, world):
    import mmengine.dataset.sampler as mm_sampler
    monkeypatch.setattr(mm_sampler, 'get_dist_info', lambda: (rank, world))
    return worker.epoch_stream(worker.resumable()).tolist()


def test_resumable_sampler_shards_stride_the_global_order(results, monkeypatch):
    order = _resumable_order(monkeypatch, 0, 1)  # one process: the epoch's global order
    n = worker.NUM_SAMPLES
    assert sorted(order) == list(range(n))
    padded = (order * 2)[:math.ceil(n / W) * W]  # DefaultSampler pads from the start
    streams = [res['samplers']['resumable'].tolist() for res in results]
    assert {len(s) for s in streams} == {math.ceil(n / W)}
    for rank, stream in enumerate(streams):
        assert stream == padded[rank::W], rank
    interleaved = [streams[r][j] for j in range(len(streams[0])) for r in range(W)]
    assert interleaved == padded and sorted(interleaved[:n]) == list(range(n))


def test_relation_sampler_shards_split_the_one_process_stream(results):
    single = worker.epoch_stream(worker.relation(4 * W, rank=0, world_size=1))
    group = 4  # group_size 2 x images_per_identity 2; one group per rank batch
    full = single.view(-1, W, group)  # global batch = rank 0 | rank 1 | ... | rank 7
    streams = [res['samplers']['relation'] for res in results]
    assert {len(s) for s in streams} == {len(single) // W}
    for rank, stream in enumerate(streams):
        assert torch.equal(stream.view(-1, group), full[:, rank]), rank
    # every identity is an anchor floor(n) or ceil(n) times over the epoch's global stream
    ds = worker.Identities()
    anchors = ds.labels[single.view(-1, group)[:, 0].numpy()]
    counts = np.bincount(anchors, minlength=len(ds.SIZES))
    assert counts.max() - counts.min() <= 1


def test_partner_sampler_shards_split_one_shuffled_pass(results):
    ds, ns = worker.Identities(), 2  # per rank: 2 shuffled images + 1 partner
    shuffled = worker.epoch_stream(worker.partner(ns * W, 0, rank=0, world_size=1))
    streams = [res['samplers']['partner'].view(-1, 3) for res in results]
    assert len({len(s) for s in streams}) == 1
    per_step = torch.stack([s[:, :ns] for s in streams], dim=1)  # [batches, W, ns]
    assert torch.equal(per_step.reshape(-1), shuffled)  # global batch = ranks in order
    n = worker.NUM_SAMPLES
    assert sorted(shuffled[:n].tolist()) == list(range(n))  # disjoint: one pass first
    mined = 0
    for rank, stream in enumerate(streams):
        # the process-group rank gives the sampler built with an explicit rank
        explicit = worker.partner(3, 1, rank=rank, world_size=W)
        assert torch.equal(stream.reshape(-1), worker.epoch_stream(explicit)), rank
        anchors, partners = ds.labels[stream[:, 0].numpy()], ds.labels[stream[:, 2].numpy()]
        assert (anchors != partners).all()
        mined += sum(p in worker.PARTNER_NEIGHBOURS[a, 1:] for a, p in zip(anchors, partners))
    assert mined >= explicit.last_epoch_stats['mined'] > 0


# ---------------------------------------------------------------------------- resume
def _check_resume(got, name, consumed, global_stream, skip_iters):
    """The 8 ranks' rests continue ``global_stream`` after ``skip_iters`` global batches."""
    batch = worker.BATCH[name]
    done = worker.SAVED_ITERS[name] * worker.SAVED_BATCH[name] * 2
    assert skip_iters == done // (batch * W)
    repeated = done - skip_iters * batch * W
    assert 0 <= repeated < batch * W  # what ExactResumeHook documents
    rests = [g['rest'].tolist() for g in got]
    for g in got:
        assert g['epoch_iters'] == skip_iters
        assert g['state']['seed'] == worker.SEED and g['state']['epoch'] == worker.EPOCH
    rest_all = Counter(i for r in rests for i in r)
    assert rest_all == Counter(global_stream[skip_iters * batch * W:])
    # trained twice: the `repeated` last samples before the checkpoint, and no others
    twice = Counter(global_stream[done - repeated:done])
    assert sum(twice.values()) == repeated
    assert twice <= Counter(consumed) and twice <= rest_all
    assert Counter(consumed) == Counter(global_stream[:done])
    return rests


def test_8_ranks_resume_a_2_rank_resumable_sampler_checkpoint(results, monkeypatch):
    n, name = worker.NUM_SAMPLES, 'resumable'
    order = _resumable_order(monkeypatch, 0, 1)
    two_ranks = [_resumable_order(monkeypatch, r, 2) for r in range(2)]
    k, b = worker.SAVED_ITERS[name], worker.SAVED_BATCH[name]
    consumed = two_ranks[0][:k * b] + two_ranks[1][:k * b]
    assert sorted(consumed) == sorted(order[:2 * k * b])  # the global order's first samples
    padded = (order * 2)[:math.ceil(n / W) * W]
    got = [res['resume'][name] for res in results]
    rests = _check_resume(got, name, consumed, padded, skip_iters=1)
    for rank, rest in enumerate(rests):
        assert rest == padded[rank::W][worker.BATCH[name]:], rank
    assert set(consumed) | {i for r in rests for i in r} == set(range(n))  # nothing skipped


def test_8_ranks_resume_a_2_rank_relation_sampler_checkpoint(results):
    name, group = 'relation', 4
    single = worker.epoch_stream(worker.relation(4 * W, rank=0, world_size=1)).tolist()
    k, b = worker.SAVED_ITERS[name], worker.SAVED_BATCH[name]
    two_ranks = [worker.epoch_stream(worker.relation(b, rank=r, world_size=2)).tolist()
                 for r in range(2)]
    consumed = two_ranks[0][:k * b] + two_ranks[1][:k * b]
    assert Counter(consumed) == Counter(single[:2 * k * b])
    got = [res['resume'][name] for res in results]
    rests = _check_resume(got, name, consumed, single, skip_iters=1)
    groups = torch.tensor(single).view(-1, W, group)
    for rank, rest in enumerate(rests):
        assert rest == groups[1:, rank].reshape(-1).tolist(), rank


def test_8_ranks_resume_a_2_rank_partner_sampler_checkpoint(results):
    """Same partner share per batch (1/3) before and after: the shuffled pass continues;
    the partners are drawn for the new layout."""
    name, ns = 'partner', 2
    k = worker.SAVED_ITERS[name]
    two_ranks = [worker.epoch_stream(worker.partner(6, 2, rank=r, world_size=2)).view(-1, 6)
                 for r in range(2)]
    consumed = torch.stack([t[:k, :4] for t in two_ranks], dim=1).reshape(-1).tolist()
    shuffled = worker.epoch_stream(worker.partner(ns * W, 0, rank=0, world_size=1)).tolist()
    assert consumed == shuffled[:len(consumed)]  # 40 shuffled images, in the global order
    got = [res['resume'][name] for res in results]
    skip = worker.SAVED_ITERS[name] * 6 * 2 // (worker.BATCH[name] * W)
    assert skip == 2
    rest_shuffled = []
    for rank, g in enumerate(got):
        assert g['epoch_iters'] == skip and g['state']['seed'] == worker.SEED
        full = worker.epoch_stream(worker.partner(3, 1, rank=rank, world_size=W))
        assert torch.equal(g['rest'], full[skip * 3:]), rank
        rest_shuffled.append(g['rest'].view(-1, 3)[:, :ns])
    rest_shuffled = torch.stack(rest_shuffled, dim=1).reshape(-1).tolist()
    start = skip * ns * W
    assert rest_shuffled == shuffled[start:]
    # no shuffled image of the epoch skipped; fewer than one global batch trained twice
    assert start <= len(consumed) and len(consumed) - start < worker.BATCH[name] * W
    assert set(consumed) | set(rest_shuffled) == set(range(worker.NUM_SAMPLES))
