"""PartnerSampler: shuffled coverage, partners from the mined top-K, caps, batch statistics,
ranks, resume."""
import numpy as np
import pytest

from coupleface.datasets.samplers import PartnerSampler
from coupleface.registry import DATA_SAMPLERS


class ToyFaces:
    """300 identities x 16 images (the SynthFaces benchmark's shape), scattered indices."""

    def __init__(self, num_ids=300, per_id=16, seed=0):
        labels = np.repeat(np.arange(num_ids), per_id)
        self.labels = np.random.default_rng(seed).permutation(labels)
        self.class_to_indices = [np.flatnonzero(self.labels == c) for c in range(num_ids)]

    def __len__(self):
        return len(self.labels)


def neighbours_of(num_ids, k=8):
    """Identity c's neighbours: c+1..c+k (mod C), with c itself first (must be skipped)."""
    rows = (np.arange(num_ids)[:, None] + np.arange(0, k + 1)[None, :]) % num_ids
    return rows


def batches(sampler):
    return np.array(list(sampler)).reshape(-1, sampler.batch_size)


def test_shuffled_part_covers_the_epoch_once_and_partners_are_mined():
    ds = ToyFaces()
    sampler = PartnerSampler(ds, batch_size=144, num_partners=16, seed=3, rank=0, world_size=1)
    sampler.set_neighbours(neighbours_of(300))
    b = batches(sampler)
    assert len(sampler) == b.size == 38 * 144  # ceil(4800 / 128) batches
    shuffled = b[:, :128].reshape(-1)
    # every image once, then the padding of the last batch from a second pass
    assert len(np.unique(shuffled[:4800])) == 4800
    anchors, partners = ds.labels[b[:, :16]], ds.labels[b[:, 128:]]
    offset = (partners - anchors) % 300
    mined = (offset >= 1) & (offset <= 8)
    stats = sampler.last_epoch_stats
    assert stats['partners'] == 38 * 16 and stats['mined'] + stats['capped'] == 608
    # a capped draw falls back to a random identity: at most the capped ones are not mined
    assert (~mined).sum() <= stats['capped'] + 608 * 8 / 299
    # the whole top-8 is used, not only the first neighbour: each offset about 1/8
    counts = np.bincount(offset[mined], minlength=9)[1:]
    assert counts.min() > 0.5 * mined.sum() / 8 and counts.max() < 1.5 * mined.sum() / 8


def test_batch_statistics_stay_near_a_shuffled_batch():
    """Stated bounds (docs/method.md): >= 90 distinct identities per batch of 128 + 16 (a
    shuffled batch of 128 from 300 identities holds about 104), and per identity 16 +- 8
    samples per epoch (a shuffled epoch gives exactly 16, partners add about 2)."""
    ds = ToyFaces()
    sampler = PartnerSampler(ds, batch_size=144, num_partners=16, seed=0, rank=0, world_size=1)
    sampler.set_neighbours(neighbours_of(300))
    b = batches(sampler)
    ids_per_batch = [len(np.unique(ds.labels[row])) for row in b]
    assert min(ids_per_batch) >= 90
    per_identity = np.bincount(ds.labels[b.reshape(-1)], minlength=300)
    assert per_identity.min() >= 8 and per_identity.max() <= 24


def test_cap_limits_hub_identities():
    ds = ToyFaces()
    hub = np.zeros((300, 1), dtype=np.int64)  # every identity's only neighbour is 0
    hub[0] = 1
    sampler = PartnerSampler(ds, batch_size=144, num_partners=16, cap_factor=2.0, seed=1,
                             rank=0, world_size=1)
    sampler.set_neighbours(hub)
    b = batches(sampler)
    as_partner = np.bincount(ds.labels[b[:, 128:].reshape(-1)], minlength=300)
    cap = sampler.last_epoch_stats['cap']
    assert cap == 5  # ceil(2 * 608 / 300)
    # identity 0 is drawn as a mined partner at most `cap` times (plus random fallbacks)
    assert as_partner[0] <= cap + 10
    assert sampler.last_epoch_stats['capped'] > 500


def test_random_partners_and_before_mining_avoid_the_anchor():
    ds = ToyFaces()
    for kwargs, table in ((dict(random_partners=True), neighbours_of(300)), ({}, None)):
        sampler = PartnerSampler(ds, batch_size=144, num_partners=16, seed=2, rank=0,
                                 world_size=1, **kwargs)
        sampler.set_neighbours(table)
        b = batches(sampler)
        assert (ds.labels[b[:, :16]] != ds.labels[b[:, 128:]]).all()
        assert sampler.last_epoch_stats['mined'] == 0


def test_two_ranks_split_one_global_stream_and_resume_is_exact():
    ds = ToyFaces()
    table = neighbours_of(300)
    ranks = []
    for rank in range(2):
        s = PartnerSampler(ds, batch_size=72, num_partners=8, seed=5, rank=rank, world_size=2)
        s.set_neighbours(table)
        ranks.append(batches(s))
    shuffled = np.concatenate([r[:, :64] for r in ranks]).reshape(-1)
    assert len(np.unique(shuffled)) == 4800 and len(shuffled) == 2 * 38 * 64
    # resume: the rest of the epoch after 1000 samples, exactly
    s = PartnerSampler(ds, batch_size=72, num_partners=8, seed=5, rank=1, world_size=2)
    s.set_neighbours(table)
    s.load_state_dict(dict(seed=5, epoch=0, samples_yielded=1000))
    assert np.array_equal(np.array(list(s)), ranks[1].reshape(-1)[1000:])
    s.set_epoch(1)
    assert not np.array_equal(batches(s), ranks[1])


def test_registry_and_errors():
    ds = ToyFaces(10, 4)
    assert DATA_SAMPLERS.get('PartnerSampler') is PartnerSampler
    with pytest.raises(ValueError, match='num_partners=8 must be in'):
        PartnerSampler(ds, batch_size=8, num_partners=8, seed=0, rank=0, world_size=1)
    s = PartnerSampler(ds, batch_size=8, num_partners=2, seed=0, rank=0, world_size=1)
    with pytest.raises(ValueError, match=r'shape \[C=10, K\]'):
        s.set_neighbours(np.zeros((9, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r'values must be in \[0, 10\)'):
        s.set_neighbours(np.full((10, 3), 10))
