"""IJBMetric: planted embeddings give perfect TAR/rank-1, DDP padding, a tiny model end to end."""
import math
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator

from coupleface.datasets.ijb import IJBDataset, ijb_test_pipeline
from coupleface.evaluation.metrics import IJBMetric
from coupleface.registry import METRICS, MODELS
from coupleface.setup_env import register_all_modules

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from _ijb_fixture import planted_embeddings, shared_ijb_fixture  # noqa: E402


@pytest.fixture(scope='module')
def fx():
    register_all_modules()
    return shared_ijb_fixture()


@pytest.fixture(scope='module')
def meta(fx):
    return IJBDataset(fx.root, name='ijbc').metainfo


def _samples(fx, emb):
    return [dict(embedding=torch.from_numpy(emb[i]), sample_idx=i,
                 template_id=im['template_id'], media_id=im['media_id'],
                 faceness=im['faceness'], img_path=im['name'])
            for i, im in enumerate(fx.images)]


def _run(metric, meta, samples):
    metric.dataset_meta = meta
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def test_planted_embeddings_give_perfect_verification_and_identification(fx, meta):
    samples = _samples(fx, planted_embeddings(fx))
    order = np.random.default_rng(0).permutation(len(samples)).tolist()
    padded = [samples[i] for i in order] + samples[:5]  # any order + DDP padding duplicates
    metric = METRICS.build(dict(type='IJBMetric', fpirs=(0.2, 0.5), ranks=(1, 5)))
    metric.dataset_meta = meta
    metric.process(None, padded)
    res = metric.compute_metrics(metric.results)
    # 135 negative pairs: FAR >= 1/135 is measurable, the smaller ones are not.
    for far in ('1e-02', '1e-01'):
        assert res[f'ijbc/tar@far={far}'] == 100.0
        assert res[f'ijbc/tar_nearest@far={far}'] == 100.0
    for far in ('1e-06', '1e-05', '1e-04', '1e-03'):
        assert math.isnan(res[f'ijbc/tar@far={far}'])
    assert res['ijbc/auc'] == pytest.approx(100.0)
    assert 5.0 < res['ijbc/xnorm'] < 30.0
    for gallery in ('G1', 'G2', 'G1+G2'):
        assert res[f'ijbc/{gallery}/rank1'] == 100.0 and res[f'ijbc/{gallery}/rank5'] == 100.0
        assert res[f'ijbc/{gallery}/tpir@fpir=5e-01'] == 100.0
    # G1: 7 non-mated probes -> FPIR 0.2 measurable; the union has only 3 (subject 5).
    assert res['ijbc/G1/tpir@fpir=2e-01'] == 100.0
    assert math.isnan(res['ijbc/G1+G2/tpir@fpir=2e-01'])
    search = metric.last_result['identification']
    assert (search['G1']['num_mated'], search['G1']['num_non_mated']) == (6, 7)
    assert metric.last_result['num_templates'] == 18
    assert metric.last_result['scores'].shape == (153, )


def test_a_wrong_template_lowers_tar(fx, meta):
    emb = planted_embeddings(fx)
    # Give every image of the first template the embedding of another subject's image.
    other = next(i for i, im in enumerate(fx.images) if im['subject'] != fx.images[0]['subject'])
    first = [i for i, im in enumerate(fx.images) if im['template_id'] == 1000]
    emb[first] = emb[other]
    res = _run(IJBMetric(identification=False), meta, _samples(fx, emb))
    assert res['ijbc/tar@far=1e-01'] < 100.0 and res['ijbc/auc'] < 100.0
    assert not any('/G1/' in key for key in res)


def test_aggregation_switches_reach_the_scores(fx, meta):
    emb = planted_embeddings(fx, noise=2.0)
    a = IJBMetric(identification=False)
    b = IJBMetric(identification=False, use_norm_score=False, use_detector_score=False)
    _run(a, meta, _samples(fx, emb))
    _run(b, meta, _samples(fx, emb))
    assert not np.allclose(a.last_result['scores'], b.last_result['scores'])


def test_missing_images_and_keys_are_errors(fx, meta):
    samples = _samples(fx, planted_embeddings(fx))
    with pytest.raises(ValueError, match='1 of 85 images missing'):
        _run(IJBMetric(), meta, samples[1:])
    with pytest.raises(KeyError, match='template_id'):
        IJBMetric().process(None, [dict(embedding=np.zeros(3), sample_idx=0)])
    with pytest.raises(ValueError, match='pair_file'):
        _run(IJBMetric(), dict(meta, pair_file=None), samples)


def test_tiny_model_end_to_end_with_evaluator(fx):
    torch.manual_seed(0)
    model = MODELS.build(dict(type='FaceRecognizer', backbone=dict(
        type='IResNet', arch=18, base_channels=8, input_size=112, embedding_size=32))).eval()
    ds = IJBDataset(fx.root, name='ijbc', pipeline=ijb_test_pipeline(112))
    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=1,
                                         collate_fn=pseudo_collate)
    evaluator = Evaluator(dict(type='IJBMetric', fars=(1e-3, 1e-2, 1e-1)))
    evaluator.dataset_meta = ds.metainfo
    with torch.no_grad():
        for batch in loader:
            outputs = model.test_step(batch)
            assert outputs[0].embedding.shape == (32, )
            evaluator.process(data_samples=outputs, data_batch=batch)
    res = evaluator.evaluate(len(ds))
    assert math.isnan(res['ijbc/tar@far=1e-03'])
    for key in ('ijbc/tar@far=1e-02', 'ijbc/tar@far=1e-01', 'ijbc/auc', 'ijbc/G1/rank1',
                'ijbc/G2/rank10'):
        assert 0.0 <= res[key] <= 100.0, key
    assert res['ijbc/tar@far=1e-01'] >= res['ijbc/tar@far=1e-02']


def test_files_given_to_the_metric_instead_of_the_dataset(fx):
    files = dict(pair_file=fx.meta_path('template_pair_label'),
                 gallery_files={'G1': osp.join(fx.meta_dir, 'ijbc_1N_gallery_G1.csv')},
                 probe_file=osp.join(fx.meta_dir, 'ijbc_1N_probe_mixed.csv'))
    metric = IJBMetric(fars=(1e-1, ), fpirs=(0.2, ), ranks=(1, ), **files)
    res = _run(metric, dict(name='ijbc'), _samples(fx, planted_embeddings(fx)))
    assert res['ijbc/tar@far=1e-01'] == 100.0
    assert res['ijbc/G1/rank1'] == 100.0 and res['ijbc/G1/tpir@fpir=2e-01'] == 100.0
    assert not any('G2' in key for key in res)  # only the given gallery
