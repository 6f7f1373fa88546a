"""Relation mining: centers, blocked kNN (planted twins, brute force, shards), hard positives
(the relations file: test_relations_file.py; the pipeline: test_pipeline.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coupleface.mining import (
    accumulate_centers,
    centers_from_sums,
    hardest_positives,
    identity_centers,
    mine_neighbour_identities,
)
from coupleface.mining.relation_miner import center_cosines, hardest_by_cosine


def brute_force(centers, k):
    x = F.normalize(torch.as_tensor(centers, dtype=torch.float64), dim=1)
    sim = x @ x.t()
    sim.fill_diagonal_(float('-inf'))
    val, idx = sim.topk(k, dim=1)
    return idx, val


def twins_dataset(num_ids=50, per_id=6, dim=32, seed=0):
    """Identities 2m and 2m+1 are twins (centers 0.2 apart); samples scatter around them."""
    gen = torch.Generator().manual_seed(seed)
    base = F.normalize(torch.randn(num_ids // 2, dim, generator=gen), dim=1)
    offset = 0.1 * F.normalize(torch.randn(num_ids, dim, generator=gen), dim=1)
    true_centers = F.normalize(base.repeat_interleave(2, dim=0) + offset, dim=1)
    labels = torch.arange(num_ids).repeat_interleave(per_id)
    noise = 0.05 * torch.randn(len(labels), dim, generator=gen)
    scales = 1 + 5 * torch.rand(len(labels), 1, generator=gen)  # raw embedding norms vary
    return (true_centers[labels] + noise) * scales, labels


def test_identity_centers_hand_values_and_streaming():
    emb = torch.tensor([[3.0, 0.0], [0.0, 0.5], [-2.0, 0.0], [0.0, 4.0], [0.0, -1.0]])
    labels = torch.tensor([0, 0, 1, 2, 2])
    centers = identity_centers(emb, labels, 3, allow_empty=False)
    s = 1 / np.sqrt(2)
    # id 0: mean of (1,0) and (0,1) renormalised; id 2: (0,1) + (0,-1) = 0 stays 0.
    np.testing.assert_allclose(centers.numpy(), [[s, s], [-1, 0], [0, 0]], atol=1e-7)

    sums, counts = torch.zeros(3, 2), torch.zeros(3, dtype=torch.long)
    accumulate_centers(sums, counts, emb[:2].numpy().astype(np.float16), labels[:2].numpy())
    accumulate_centers(sums, counts, emb[2:], labels[2:])
    assert counts.tolist() == [2, 1, 2]
    torch.testing.assert_close(centers_from_sums(sums, counts), centers)
    torch.testing.assert_close(identity_centers(emb, labels, 3, chunk_size=2), centers)


def test_identity_without_samples_is_named_or_zero():
    emb, labels = torch.randn(4, 3), torch.tensor([0, 0, 2, 4])
    with pytest.raises(ValueError, match=r'identities without samples: 1, 3 \(of 5\)'):
        identity_centers(emb, labels, 5)
    centers = identity_centers(emb, labels, 5, allow_empty=True)
    assert centers[[1, 3]].abs().sum() == 0 and centers[[0, 2, 4]].norm(dim=1).min() > 0.99
    with pytest.raises(ValueError, match=r'labels must be in \[0, 3\)'):
        identity_centers(emb, labels, 3)


def test_planted_twins_are_top1_neighbours():
    emb, labels = twins_dataset()
    centers = identity_centers(emb, labels, 50)
    neighbours, sims = mine_neighbour_identities(centers, 3, chunk_size=7, progress=False)
    twins = torch.arange(50) ^ 1
    assert torch.equal(neighbours[:, 0], twins)
    assert neighbours.dtype == torch.int64 and sims.dtype == torch.float32
    assert (sims[:, 0] > 0.9).all() and (sims[:, 1] < sims[:, 0]).all()
    assert not (neighbours == torch.arange(50)[:, None]).any()  # never itself


@pytest.mark.parametrize('chunk_size', [3, 16, 37, 64, 128, 300, 4096])
def test_blocked_equals_brute_force(chunk_size):
    centers = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    idx, val = brute_force(centers, 5)
    neighbours, sims = mine_neighbour_identities(centers, 5, chunk_size=chunk_size,
                                                 progress=False)
    assert torch.equal(neighbours, idx)
    torch.testing.assert_close(sims, val.float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize('bounds', [[0, 100, 300], [0, 1, 299, 300], [0, 150, 151, 300]])
def test_row_shards_concatenate_to_the_full_result(bounds):
    centers = torch.randn(300, 16, generator=torch.Generator().manual_seed(2)).double()
    full_idx, full_val = mine_neighbour_identities(centers, 4, chunk_size=32, progress=False)
    parts = [mine_neighbour_identities(centers, 4, chunk_size=32, progress=False,
                                       rows=range(a, b) if i % 2 else slice(a, b))
             for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
    assert torch.equal(torch.cat([p[0] for p in parts]), full_idx)
    assert torch.equal(torch.cat([p[1] for p in parts]), full_val)
    assert torch.equal(full_idx, brute_force(centers, 4)[0])


@pytest.mark.parametrize('matmul_dtype', ['bfloat16', 'float16', torch.bfloat16])
def test_low_precision_search_is_reranked_exactly(matmul_dtype):
    centers = torch.randn(400, 64, generator=torch.Generator().manual_seed(3))
    idx, val = brute_force(centers, 6)
    neighbours, sims = mine_neighbour_identities(centers, 6, chunk_size=128, progress=False,
                                                 matmul_dtype=matmul_dtype)
    assert torch.equal(neighbours, idx)
    torch.testing.assert_close(sims, val.float(), rtol=0, atol=1e-6)  # exact cosines


def test_zero_centers_are_nobodys_neighbour():
    centers = torch.randn(6, 4, generator=torch.Generator().manual_seed(4))
    centers[2] = 0
    neighbours, sims = mine_neighbour_identities(centers, 5, chunk_size=4, progress=False)
    assert (neighbours[2] == -1).all() and torch.isinf(sims[2]).all()
    others = neighbours[[0, 1, 3, 4, 5]]
    assert not (others == 2).any()
    assert (others[:, :4] >= 0).all() and (others[:, 4] == -1).all()  # only 4 candidates


def test_mining_argument_checks():
    centers = torch.randn(5, 3)
    for k in (0, 5, 2.5):
        with pytest.raises(ValueError, match='k must be'):
            mine_neighbour_identities(centers, k, progress=False)
    with pytest.raises(ValueError, match='contiguous'):
        mine_neighbour_identities(centers, 2, rows=slice(0, 5, 2), progress=False)
    with pytest.raises(ValueError, match='matmul_dtype'):
        mine_neighbour_identities(centers, 2, matmul_dtype='int8', progress=False)


def test_progress_bar_reports_similarities(capsys):
    mine_neighbour_identities(torch.randn(50, 4), 2, chunk_size=16, progress=True)
    err = capsys.readouterr().err
    assert 'mining 2 neighbours of 50 identities' in err and 'sim/s' in err


def test_hardest_positives_farthest_from_center_first():
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0], [0.0, 2.0],
                        [1.0, 0.1]])
    labels = torch.tensor([0, 0, 0, 1, 1, 0])
    centers = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    hard = hardest_positives(emb, labels, centers, 3, chunk_size=4)
    # id 0 cosines to (1, 0): 1.0, 0.6, 0.8, 0.995 -> sample 1, 2, 5; id 1: two images
    # (both cosine 1: stable order); id 2 has none.
    assert hard.tolist() == [[1, 2, 5], [3, 4, -1], [-1, -1, -1]]
    assert hardest_positives(emb.numpy(), labels.numpy(), centers, 1).tolist() == \
        [[1], [3], [-1]]


def test_hardest_positives_is_cosines_then_ranking():
    emb, labels = twins_dataset(num_ids=10, per_id=5)
    centers = identity_centers(emb, labels, 10)
    cos = center_cosines(emb, labels, centers, chunk_size=7)
    expected = F.cosine_similarity(emb, centers[labels], dim=1)
    torch.testing.assert_close(cos, expected, rtol=0, atol=1e-6)
    assert torch.equal(hardest_by_cosine(cos, labels, 10, 3),
                       hardest_positives(emb, labels, centers, 3))
    assert hardest_by_cosine(torch.tensor([0.5, 0.5, 0.1]), torch.tensor([1, 1, 1]), 3,
                             2).tolist() == [[-1, -1], [2, 0], [-1, -1]]
    with pytest.raises(ValueError, match='num must be'):
        hardest_by_cosine(cos, labels, 10, 0)
