"""The mining pipeline: embeddings -> centers -> neighbours (-> hard positives) -> file.

Two ranks equal one process: tests/engine/hooks/test_relation_mining_hook_dist.py."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coupleface.mining import (
    hardest_positives,
    identity_centers,
    load_relations,
    mine_neighbour_identities,
    mine_relations,
    relations_meta,
    save_mined_relations,
)
from coupleface.mining.relations_file import load_hard_positives


def _data(num_ids=12, per_id=5, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    protos = F.normalize(torch.randn(num_ids, dim, generator=gen), dim=1)
    labels = torch.arange(num_ids).repeat_interleave(per_id)
    emb = (protos[labels] + 0.3 * torch.randn(len(labels), dim, generator=gen)) * (
        1 + 3 * torch.rand(len(labels), 1, generator=gen))
    return emb, labels.numpy()


def test_pipeline_is_the_pieces():
    emb, labels = _data()
    mined = mine_relations(emb, labels, 12, 3, hard_positives=2, chunk_size=5,
                           progress=False, distributed=False)
    np.testing.assert_allclose(mined.centers, identity_centers(emb, labels, 12).numpy(),
                               rtol=0, atol=1e-6)
    assert mined.centers.dtype == np.float32 and mined.neighbours.dtype == np.int64
    nb, sim = mine_neighbour_identities(torch.from_numpy(mined.centers), 3, chunk_size=5,
                                        progress=False)
    assert np.array_equal(mined.neighbours, nb.numpy())
    assert np.array_equal(mined.similarities, sim.numpy())
    hard = hardest_positives(emb, labels, torch.from_numpy(mined.centers), 2)
    assert np.array_equal(mined.hard_positives, hard.numpy())
    assert [r.tolist() for r in mined.hard_positive_lists()] == hard.tolist()
    assert set(mined.seconds) == {'centers', 'neighbours', 'hard_positives'}
    without = mine_relations(emb, labels, 12, 3, progress=False, distributed=False)
    assert without.hard_positives is None and without.hard_positive_lists() is None
    assert np.array_equal(without.neighbours, mined.neighbours)


def test_memmap_chunks_and_sample_order(tmp_path):
    emb, labels = _data()
    path = str(tmp_path / 'emb.npy')
    np.save(path, emb.numpy().astype(np.float16))
    half = np.load(path, mmap_mode='r')
    ref = mine_relations(torch.from_numpy(np.asarray(half, np.float32)), labels, 12, 4,
                         hard_positives=3, progress=False, distributed=False)
    mined = mine_relations(half, labels, 12, 4, hard_positives=3, read_chunk=7,
                           progress=False, distributed=False)
    assert np.array_equal(mined.neighbours, ref.neighbours)
    np.testing.assert_allclose(mined.centers, ref.centers, rtol=0, atol=1e-7)
    assert np.array_equal(mined.hard_positives, ref.hard_positives)
    # rows given in another order, named by sample_indices: the same sample indices
    perm = np.random.default_rng(0).permutation(len(labels))
    shuffled = mine_relations(emb[perm], labels, 12, 4, sample_indices=perm,
                              hard_positives=3, progress=False, distributed=False)
    assert np.array_equal(shuffled.neighbours, ref.neighbours)
    assert np.array_equal(shuffled.hard_positives, ref.hard_positives)


def test_saved_relations_carry_the_contract(tmp_path):
    emb, labels = _data()
    meta = relations_meta('abc', len(labels), 12, 2, 1, extra=dict(bank='/x'))
    mined = mine_relations(emb, labels, 12, 2, hard_positives=1, progress=False, meta=meta,
                           distributed=False)
    path = str(tmp_path / 'relations.npz')
    save_mined_relations(path, mined)
    rel = load_relations(path, expect_meta=relations_meta('abc', len(labels), 12, 2, 1))
    assert rel['meta'] == meta and np.array_equal(rel['neighbours'], mined.neighbours)
    assert np.array_equal(load_hard_positives(path), mined.hard_positives)
    with pytest.raises(ValueError, match='made with k=2 but 3 is expected'):
        load_relations(path, expect_meta=relations_meta('abc', len(labels), 12, 3, 1))


def test_pipeline_errors():
    emb, labels = _data()
    with pytest.raises(ValueError, match='identities without samples: 12'):
        mine_relations(emb, labels, 13, 2, progress=False, distributed=False)
    mined = mine_relations(emb, labels, 13, 2, allow_empty=True, progress=False,
                           distributed=False)
    assert (mined.neighbours[12] == -1).all() and not (mined.neighbours == 12).any()
    with pytest.raises(ValueError, match='59 embeddings for 60 sample indices'):
        mine_relations(emb[1:], labels, 12, 2, progress=False, distributed=False)
