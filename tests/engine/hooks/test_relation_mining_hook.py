"""RelationMiningHook: the sampler and clean-view checks before any teacher pass (mining itself:
test_relation_mining_hook_dist.py, tests/e2e/test_coupleface_train.py)."""
from types import SimpleNamespace

import pytest

from coupleface.engine.hooks import RelationMiningHook


class _Partners:  # what the hook sees of a PartnerSampler
    top_k, random_partners = 8, False

    def set_neighbours(self, table):
        self.table = table


class _Groups(_Partners):  # ... and of a RelationSampler
    def set_hard_positives(self, table):
        self.hard = table


class _Runner:
    def __init__(self, sampler):
        self.train_dataloader = SimpleNamespace(sampler=sampler)

    @property
    def model(self):
        raise AssertionError('the hook reached the teacher')


def _runner(sampler):
    return _Runner(sampler)


def test_a_sampler_without_neighbours_is_a_one_line_error():
    with pytest.raises(ValueError, match='needs train_dataloader.sampler=.*got object'):
        RelationMiningHook().before_train(_runner(object()))


def test_hard_positives_need_a_sampler_that_uses_them():
    with pytest.raises(ValueError, match=r'hard_positives=2\) needs a sampler that uses them'
                       r'.*_Partners does not'):
        RelationMiningHook(hard_positives=2).before_train(_runner(_Partners()))


def test_random_partners_skip_mining():
    sampler = _Partners()
    sampler.random_partners = True
    RelationMiningHook().before_train(_runner(sampler))  # never asks for the teacher
    assert not hasattr(sampler, 'table')
    groups = _Groups()
    groups.random_groups = True
    RelationMiningHook(hard_positives=2).before_train(_runner(groups))
    assert not hasattr(groups, 'table') and not hasattr(groups, 'hard')


class _Dataset:
    num_classes = 2
    pipeline = [dict(type='RandomFaceFlip'), dict(type='PackFaceInputs')]

    def __len__(self):
        return 4

    def get_gt_labels(self):
        return [0, 0, 1, 1]


def _online_runner(sampler, tmp_path):
    model = SimpleNamespace(teacher_embeddings=None, teacher_bank=None, teacher=None,
                            teacher_info=dict(teacher_sha256='abc'), data_preprocessor=None)
    return SimpleNamespace(model=model, work_dir=str(tmp_path),
                           train_dataloader=SimpleNamespace(sampler=sampler, dataset=_Dataset()))


def test_a_pipeline_without_a_loader_asks_for_view_size(tmp_path):
    with pytest.raises(ValueError) as err:
        RelationMiningHook().before_train(_online_runner(_Groups(), tmp_path))
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith("RelationMiningHook: cannot derive the teacher's clean view: "
                              'the training pipeline has no LoadFaceImage')
    assert message.endswith('set RelationMiningHook(view_size=...)')
