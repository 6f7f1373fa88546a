"""tools/mine_relations.py: offline mining from a TeacherBank runs the hook's pipeline and
writes the relations contract the RelationMiningHook checks."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

from coupleface.mining import (
    RELATIONS_META_KEYS,
    load_relations,
    mine_relations,
    relations_meta,
)
from coupleface.mining.relations_file import load_hard_positives
from coupleface.models.distillers.teacher_bank import write_teacher_bank

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'mine_relations.py')


def _tool():
    spec = importlib.util.spec_from_file_location('mine_relations_tool', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bank(tmp_path):
    gen = torch.Generator().manual_seed(0)
    labels = np.repeat(np.arange(6), 4).astype(np.int64)
    protos = torch.randn(6, 8, generator=gen)
    emb = protos[labels][:, None] + 0.5 * torch.randn(len(labels), 2, 8, generator=gen)
    prefix = str(tmp_path / 'bank')
    write_teacher_bank(prefix, emb, dict(teacher_sha256='t123', dataset='Synth:/d:24'),
                       labels=labels)
    np.save(str(tmp_path / 'labels.npy'), labels)
    return prefix, str(tmp_path / 'labels.npy'), labels


def test_relations_from_a_bank(bank, tmp_path, capsys):
    prefix, labels_path, labels = bank
    out = str(tmp_path / 'rel.npz')
    _tool().main([prefix, '--labels', labels_path, '--k', '3', '--out', out,
                  '--hard-positives', '2', '--no-progress'])
    assert 'wrote' in capsys.readouterr().out
    rel = load_relations(out, expect_meta=relations_meta('t123', 24, 6, 3, 2))
    assert set(RELATIONS_META_KEYS) <= set(rel['meta'])
    assert rel['meta']['bank'] == osp.abspath(prefix)
    assert rel['meta']['dataset'] == 'Synth:/d:24'  # the bank's provenance travels along
    # the same pipeline as the hook, on the bank's original view
    expected = mine_relations(np.load(prefix + '.npy')[:, 0], labels, 6, 3, hard_positives=2,
                              progress=False, distributed=False)
    assert np.array_equal(rel['neighbours'], expected.neighbours)
    np.testing.assert_array_equal(rel['centers'], expected.centers)
    assert np.array_equal(load_hard_positives(out), expected.hard_positives)


def test_labels_must_match_the_bank(bank, tmp_path):
    prefix, _, labels = bank
    short = str(tmp_path / 'short.npy')
    np.save(short, labels[:-1])
    with pytest.raises(ValueError, match='23 labels from .* holds 24 samples'):
        _tool().main([prefix, '--labels', short, '--out', str(tmp_path / 'r.npz')])
    with pytest.raises(ValueError, match='--out must end with .npz'):
        _tool().main([prefix, '--labels', short, '--out', str(tmp_path / 'r.bin')])
