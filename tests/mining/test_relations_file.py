"""The relations file: round trip, provenance checks against its metadata contract."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coupleface.mining import (
    RELATIONS_META_KEYS,
    load_relations,
    mine_neighbour_identities,
    relations_meta,
    save_relations,
)
from coupleface.mining.relations_file import hard_positives_path, load_hard_positives


def test_save_load_round_trip_and_meta_checks(tmp_path):
    gen = torch.Generator().manual_seed(5)
    centers = F.normalize(torch.randn(20, 8, generator=gen), dim=1)
    neighbours, sims = mine_neighbour_identities(centers, 3, progress=False)
    meta = dict(teacher_sha256='abc123', dataset_len=400, num_classes=20, k=3,
                shape=(20, 8))
    path = str(tmp_path / 'sub' / 'relations.npz')
    save_relations(path, neighbours, sims, centers, meta)
    assert sorted(p.name for p in (tmp_path / 'sub').iterdir()) == ['relations.npz']

    loaded = load_relations(path, expect_meta=dict(teacher_sha256='abc123', num_classes=20,
                                                   shape=(20, 8)))
    assert np.array_equal(loaded['neighbours'], neighbours.numpy())
    assert loaded['neighbours'].dtype == np.int64 and loaded['similarities'].dtype == np.float32
    np.testing.assert_array_equal(loaded['similarities'], sims.numpy())
    np.testing.assert_array_equal(loaded['centers'], centers.numpy())
    assert loaded['meta'] == json.loads(json.dumps(meta))
    with np.load(path, allow_pickle=False) as data:  # nothing pickled inside
        assert set(data.files) == {'neighbours', 'similarities', 'centers', 'meta'}

    with pytest.raises(ValueError) as err:
        load_relations(path, expect_meta=dict(teacher_sha256='abc123', dataset_len=401))
    message = str(err.value)
    assert '\n' not in message and path in message and 'dataset_len=400' in message
    assert '401' in message
    with pytest.raises(ValueError, match="no 'epoch'"):
        load_relations(path, expect_meta=dict(epoch=3))


def test_load_rejects_malformed_files(tmp_path):
    path = str(tmp_path / 'bad.npz')
    np.savez(path, neighbours=np.zeros((3, 2), np.int64))
    with pytest.raises(ValueError, match='not a relations file'):
        load_relations(path)
    with pytest.raises(ValueError, match='C x K'):
        save_relations(str(tmp_path / 'x.npz'), np.zeros((3, 2)), np.zeros((3, 3)),
                       np.zeros((3, 4)), {})


def test_meta_contract_is_one_definition():
    meta = relations_meta('abc', 400, 20, 3, 2, extra=dict(bank='/b', k=99))
    assert set(RELATIONS_META_KEYS) <= set(meta) and meta['bank'] == '/b'
    assert meta == dict(teacher_sha256='abc', dataset_len=400, num_classes=20, k=3,
                        hard_positives=2, bank='/b')  # the contract wins over extra
    assert relations_meta('', 1, 2, 1)['hard_positives'] == 0
    # what a reader expects is what a writer wrote
    assert set(relations_meta('x', 1, 2, 1)) == set(RELATIONS_META_KEYS)


def test_hard_positives_beside_the_relations(tmp_path):
    path = str(tmp_path / 'relations.npz')
    assert hard_positives_path(path) == str(tmp_path / 'relations_hard_positives.npy')
    assert load_hard_positives(path) is None
    np.save(hard_positives_path(path), np.array([[3, -1]], np.int64))
    assert load_hard_positives(path).tolist() == [[3, -1]]
