"""coupleface.benchmarks.common: model names, batch labels and CPU memory jobs in a child."""
import pytest
import torch

from coupleface.benchmarks.common import backbone_config, group_labels, pretty_name, run_memory_jobs


def test_backbone_config_and_names():
    assert backbone_config('iresnet100', 112)['arch'] == 100
    assert backbone_config('r50', 112, with_cp=True) == dict(
        type='IResNet', arch=50, input_size=112, embedding_size=512, with_cp=True)
    assert backbone_config('mobilefacenet', 56)['type'] == 'MobileFaceNet'
    with pytest.raises(ValueError):
        backbone_config('vit', 112)
    assert pretty_name('mbf') == 'MobileFaceNet' and pretty_name('iresnet18') == 'IResNet-18'


def test_group_labels_are_groups_of_four():
    labels = group_labels(10, 100, torch.Generator().manual_seed(0))
    assert labels.shape == (10, )
    assert (labels[:8].view(2, 4) == labels[:8].view(2, 4)[:, :1]).all()
    assert len(set(labels.tolist())) == 3


def test_memory_jobs_run_in_one_child_and_keep_their_arguments():
    jobs = [dict(local=8, partners=8, dim=32), dict(local=8, partners=16, dim=32)]
    res = run_memory_jobs('rad', 'coupleface.benchmarks.rad:rad_memory_job', jobs,
                          dict(local=4, partners=4), isolate=False, threads=1)
    assert [r['partners'] for r in res] == [8, 16]
    assert all(r['kind'] == 'rad' and r['peak_bytes'] >= 0 and 'exact' in r for r in res)
