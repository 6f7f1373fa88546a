"""AllPairsVerificationMetric: registered, deduplicates padding, equals the functional form."""
import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample

from coupleface.evaluation.functional import all_pairs_tar_at_far
from coupleface.registry import METRICS


def _samples(emb, labels, order):
    out = []
    for i in order:
        s = DataSample().set_gt_label(int(labels[i]))
        s.set_field(torch.from_numpy(emb[i]), 'embedding')
        s.set_metainfo(dict(sample_idx=int(i)))
        out.append(s.to_dict())
    return out


def test_metric_equals_functional_and_drops_ddp_duplicates():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(20), 6)  # 120 images: 300 genuine, 6840 impostor pairs
    emb = (rng.normal(size=(20, 16))[labels] + rng.normal(size=(120, 16))).astype(np.float32)
    metric = METRICS.build(dict(type='AllPairsVerificationMetric', fars=(1e-2, 1e-3, 1e-4),
                                chunk_size=17, prefix='synth_all'))
    order = list(rng.permutation(120)) + [3, 5]  # shuffled, two padded repeats
    metric.process({}, _samples(emb, labels, order[:70]))
    metric.process({}, _samples(emb, labels, order[70:]))
    out = metric.evaluate(size=len(order))
    ref = all_pairs_tar_at_far(emb, labels, fars=(1e-2, 1e-3, 1e-4))
    assert out['synth_all/num_images'] == 120
    assert out['synth_all/num_genuine'] == 300 and out['synth_all/num_impostor'] == 6840
    for far, name in ((1e-2, '1e-02'), (1e-3, '1e-03')):
        assert out[f'synth_all/tar@far={name}'] == pytest.approx(100 * ref[far]['tar'])
        assert out[f'synth_all/far_actual@far={name}'] <= 100 * far
    assert np.isnan(out['synth_all/tar@far=1e-04'])  # 6840 impostors < 1 / 1e-4
