"""RelationMiningHook with 2 gloo ranks equals one process (docs/architecture.md §4 Relations).

Each rank must embed only its shard of the training set (frozen teacher on the clean
view, or teacher-bank lookups), and every rank must end with the single-process
neighbour and hard-positive tables; ``relations.npz`` is written once, by rank 0.
"""
import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(osp.dirname(HERE)))
_spec = importlib.util.spec_from_file_location('_mining_dist_worker',
                                               osp.join(HERE, '_mining_dist_worker.py'))
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

LAUNCHER_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK',
                'MASTER_ADDR', 'MASTER_PORT', 'TORCHELASTIC_RUN_ID')
WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def two_rank_dir(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp('mining_dist'))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    for name in LAUNCHER_ENV:
        env.pop(name, None)
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes', '1',
           '--nproc_per_node', str(WORLD_SIZE), '--master_addr', '127.0.0.1',
           '--master_port', str(_free_port()), osp.join(HERE, '_mining_dist_worker.py'), out]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope='module')
def references(tmp_path_factory) -> dict:
    """Single-process results (no process group) per mode, with their work dirs."""
    out = {}
    for mode in worker.MODES:
        work = tmp_path_factory.mktemp(f'single_{mode}')
        out[mode] = (worker.run_hook(mode, str(work)), work)
    return out


@pytest.mark.dist
@pytest.mark.parametrize('mode', worker.MODES)
def test_two_ranks_mine_the_single_process_table(two_rank_dir, references, mode):
    reference, tmp_path = references[mode]
    num_samples = sum(worker.IMAGES_PER_ID)
    assert reference['seen'].tolist() == list(range(num_samples))
    assert reference['saves'] == 1
    with np.load(str(tmp_path / 'relations.npz')) as rel:
        ref_rel = {k: rel[k] for k in ('neighbours', 'similarities', 'centers')}
    # the comparison is meaningful only without near-ties among each row's neighbours
    ref_sim = ref_rel['similarities']
    assert (np.diff(ref_sim, axis=1) < -1e-4).all(), ref_sim

    work = osp.join(two_rank_dir, mode)
    results = [torch.load(osp.join(work, f'rank{r}.pt'), weights_only=True)
               for r in range(WORLD_SIZE)]
    seen = []
    for rank, res in enumerate(results):
        assert res['rank'] == rank and res['world_size'] == WORLD_SIZE
        # every rank holds the single-process table, and gave it to its sampler
        assert torch.equal(res['neighbours'], reference['neighbours']), rank
        assert torch.equal(res['sampler_neighbours'], reference['neighbours']), rank
        assert len(res['hard_positives']) == worker.NUM_CLASSES
        for got, want in zip(res['hard_positives'], reference['hard_positives']):
            assert torch.equal(got, want), rank
        # each rank embedded its own shard only: ceil/floor of N / world_size images
        assert res['seen'].tolist() == list(range(rank, num_samples, WORLD_SIZE)), rank
        seen += res['seen'].tolist()
        assert res['saves'] == (1 if rank == 0 else 0), rank
    assert sorted(seen) == list(range(num_samples))  # disjoint shards covering the set

    with np.load(osp.join(work, 'relations.npz')) as rel:
        np.testing.assert_array_equal(rel['neighbours'], ref_rel['neighbours'])
        np.testing.assert_allclose(rel['similarities'], ref_sim, atol=1e-5, rtol=0)
        np.testing.assert_allclose(rel['centers'], ref_rel['centers'], atol=1e-5, rtol=0)
    assert osp.isfile(osp.join(work, 'relations_hard_positives.npy'))


@pytest.mark.dist
def test_resume_reloads_on_every_rank_from_rank0_file(two_rank_dir, references):
    """Work dirs not shared between nodes: only rank 0 has relations.npz, and no rank
    mines again (a rank that did would wait for the others in a collective until the
    process-group timeout)."""
    reference = references['teacher'][0]
    work = osp.join(two_rank_dir, 'reload')
    assert not osp.exists(osp.join(work, 'rank1_work', 'relations.npz'))
    for rank in range(WORLD_SIZE):
        res = torch.load(osp.join(work, f'rank{rank}.pt'), weights_only=True)
        assert res['seen'].numel() == 0 and res['saves'] == 0, rank  # reloaded, not mined
        assert torch.equal(res['sampler_neighbours'], reference['neighbours']), rank
        assert len(res['hard_positives']) == worker.NUM_CLASSES
        for got, want in zip(res['hard_positives'], reference['hard_positives']):
            assert torch.equal(got, want), rank
