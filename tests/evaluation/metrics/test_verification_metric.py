"""VerificationMetric: planted pair sets, DDP padding, missing images, key names."""
import math
import os
import socket

import numpy as np
import pytest
import torch

from coupleface.evaluation.metrics import VerificationMetric
from coupleface.registry import METRICS

FARS = (1e-3, 1e-2, 2e-2)


def _planted_set(name, n_pairs, broken_per_fold, scale, dim=4):
    """Pairs in 10 contiguous folds, alternating same/different.

    Genuine pairs share one direction (distance 0), impostor pairs are orthogonal
    (distance 2); in fold k the first ``broken_per_fold[k]`` genuine pairs are orthogonal too,
    so they are the only errors at the best threshold (0.01, the first of the grid that
    accepts distance 0).
    """
    per_fold = n_pairs // 10
    issame = np.arange(n_pairs) % 2 == 0
    e0, e1 = np.eye(dim)[0] * scale, np.eye(dim)[1] * scale
    samples = []
    for i in range(n_pairs):
        fold, pos_in_fold = divmod(i, per_fold)
        broken = issame[i] and pos_in_fold // 2 < broken_per_fold[fold]
        second = e0 if issame[i] and not broken else e1
        for j, emb in enumerate((e0, second)):
            samples.append(dict(embedding=torch.tensor(emb, dtype=torch.float32),
                                set_name=name, sample_idx=2 * i + j))
    meta = {name: dict(issame=issame.tolist(), num_images=2 * n_pairs)}
    return samples, meta


BROKEN_B = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]


def _two_sets():
    a, meta_a = _planted_set('lfw', 100, [0] * 10, scale=3.0)
    b, meta_b = _planted_set('cfp_fp', 200, BROKEN_B, scale=5.0)
    return a + b, dict(pair_sets={**meta_a, **meta_b})


def _metric(meta):
    metric = METRICS.build(dict(type='VerificationMetric', fars=FARS))
    metric.dataset_meta = meta
    return metric


def _evaluate(samples, meta, batch=7):
    metric = _metric(meta)
    for start in range(0, len(samples), batch):
        metric.process(None, samples[start:start + batch])
    return metric.evaluate(len(samples))


def _check_expected(res):
    # lfw: 50 genuine + 50 impostor pairs, perfectly separated
    assert res['lfw/accuracy'] == 100.0 and res['lfw/accuracy_std'] == 0.0
    assert res['lfw/xnorm'] == pytest.approx(3.0)
    assert res['lfw/best_threshold'] == pytest.approx(0.01)
    assert math.isnan(res['lfw/tar@far=1e-03']) and math.isnan(res['lfw/tar@far=1e-02'])
    assert res['lfw/tar@far=2e-02'] == 100.0  # 50 impostors: 2e-2 is the smallest measurable
    assert res['lfw/auc'] == 100.0 and res['lfw/eer'] == 0.0
    # cfp_fp: folds of 20 pairs with 0, 1 or 2 errors
    fold_acc = [100.0 * (20 - b) / 20 for b in BROKEN_B]
    assert res['cfp_fp/accuracy'] == pytest.approx(95.5)
    assert res['cfp_fp/accuracy_std'] == pytest.approx(np.std(fold_acc))
    assert res['cfp_fp/xnorm'] == pytest.approx(5.0)
    assert res['cfp_fp/best_threshold'] == pytest.approx(0.01)
    assert math.isnan(res['cfp_fp/tar@far=1e-03'])  # 100 impostors
    assert res['cfp_fp/tar@far=1e-02'] == pytest.approx(91.0)  # 9 of 100 genuine broken
    assert res['cfp_fp/tar@far=2e-02'] == pytest.approx(91.0)
    assert res['cfp_fp/auc'] == pytest.approx(95.5)  # 0.91 + 0.5 * 0.09 (ties)
    assert res['cfp_fp/eer'] == pytest.approx(100 * 0.09 / 1.09)
    assert res['mean_accuracy'] == pytest.approx((100.0 + 95.5) / 2)


def test_two_planted_sets_and_key_names():
    samples, meta = _two_sets()
    res = _evaluate(samples, meta)
    _check_expected(res)
    per_set = ['accuracy', 'accuracy_std', 'best_threshold', 'xnorm', 'tar@far=1e-03',
               'tar@far=1e-02', 'tar@far=2e-02', 'auc', 'eer']
    assert set(res) == {f'{s}/{k}' for s in ('lfw', 'cfp_fp') for k in per_set} | {
        'mean_accuracy'}


def test_order_and_padding_duplicates_do_not_change_the_result():
    samples, meta = _two_sets()
    ref = _metric(meta).compute_metrics(_process(samples, meta))
    rng = np.random.default_rng(0)
    shuffled = [samples[i] for i in rng.permutation(len(samples))]
    padded = shuffled + shuffled[:13] + [samples[0]] * 5  # what DDP padding appends
    res = _metric(meta).compute_metrics(_process(padded, meta))
    assert res.keys() == ref.keys()
    for k in ref:
        assert res[k] == ref[k] or (math.isnan(res[k]) and math.isnan(ref[k])), k
    _check_expected(res)


def _process(samples, meta):
    metric = _metric(meta)
    metric.process(None, samples)
    return metric.results


def test_single_set_has_no_mean_accuracy_and_prefix():
    samples, meta = _planted_set('agedb_30', 100, [1] * 10, scale=2.0)
    metric = VerificationMetric(fars=(1e-2,), prefix='val')
    metric.dataset_meta = dict(pair_sets=meta)
    metric.process(None, samples)
    res = metric.evaluate(len(samples))
    assert 'val/mean_accuracy' not in res
    assert res['val/agedb_30/accuracy'] == pytest.approx(90.0)
    assert res['val/agedb_30/xnorm'] == pytest.approx(2.0)


def test_missing_images_and_unknown_sets_are_errors():
    samples, meta = _two_sets()
    with pytest.raises(ValueError, match=r"set 'cfp_fp': 3 of 400 images missing"):
        _metric(meta).compute_metrics(_process(samples[:-3], meta))
    only_lfw = [s for s in samples if s['set_name'] == 'lfw']
    with pytest.raises(ValueError, match=r"set 'cfp_fp': 400 of 400 images missing"):
        _metric(meta).compute_metrics(_process(only_lfw, meta))
    stranger = dict(samples[0], set_name='calfw')
    with pytest.raises(ValueError, match="'calfw'"):
        _metric(meta).compute_metrics(_process(samples + [stranger], meta))
    with pytest.raises(ValueError, match='pair_sets'):
        VerificationMetric().compute_metrics(_process(samples, meta))


def test_non_finite_embedding_names_the_set():
    samples, meta = _two_sets()
    samples[250] = dict(samples[250], embedding=torch.full((4,), float('nan')))
    with pytest.raises(ValueError, match="set 'cfp_fp'.*non-finite"):
        _metric(meta).compute_metrics(_process(samples, meta))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_worker(rank, world_size, port, out_dir):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        samples, meta = _two_sets()
        # mmengine DefaultSampler(shuffle=False): pad to a multiple of world_size by
        # repeating the first indices, then rank r takes indices r, r + w, ...
        n = len(samples) + 1  # one extra sample so the padding is not empty
        samples = samples + [samples[-1]]
        total = math.ceil(n / world_size) * world_size
        indices = (list(range(n)) * 2)[:total]
        shard = [samples[i] for i in indices[rank:total:world_size]]
        metric = _metric(meta)
        for start in range(0, len(shard), 16):
            metric.process(None, shard[start:start + 16])
        res = metric.evaluate(n)
        np.save(os.path.join(out_dir, f'rank{rank}.npy'), res, allow_pickle=True)
    finally:
        dist.destroy_process_group()


@pytest.mark.dist
def test_ddp_two_gloo_processes(tmp_path):
    torch.multiprocessing.spawn(_dist_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    for rank in range(2):
        res = np.load(tmp_path / f'rank{rank}.npy', allow_pickle=True).item()
        _check_expected(res)


# ---- masked-face protocol variants and the MFR summary ----

def _protocol_sets():
    """lfw clean (separable), lfw@masked_unmasked (9 broken genuine pairs of 50),
    lfw@masked_masked (20 broken), cfp_fp clean only; 50 impostors per set."""
    parts = [_planted_set('lfw', 100, [0] * 10, scale=3.0),
             _planted_set('lfw@masked_unmasked', 100, BROKEN_B, scale=2.0),
             _planted_set('lfw@masked_masked', 100, [2] * 10, scale=2.0),
             _planted_set('cfp_fp', 100, [1] * 10, scale=4.0)]
    samples = sum((p[0] for p in parts), [])
    meta = {}
    for _, m in parts:
        meta.update(m)
    return samples, dict(pair_sets=meta)


def test_protocol_variants_and_mfr_summary():
    samples, meta = _protocol_sets()
    metric = VerificationMetric(fars=(1e-2, 2e-2), keep_scores=True)
    assert metric.mfr_far == 1e-2  # no 1e-4 among the fars: the first one
    metric = VerificationMetric(fars=(1e-2, 2e-2), mfr_far=2e-2, keep_scores=True)
    metric.dataset_meta = meta
    metric.process(None, samples)
    res = metric.evaluate(len(samples))
    # each variant is a set of its own
    assert res['lfw/accuracy'] == 100.0
    assert res['lfw@masked_unmasked/accuracy'] == pytest.approx(91.0)
    assert res['lfw@masked_masked/accuracy'] == pytest.approx(80.0)
    assert res['lfw@masked_unmasked/xnorm'] == pytest.approx(2.0)
    assert res['cfp_fp/accuracy'] == pytest.approx(90.0)
    assert res['mean_accuracy'] == pytest.approx((100 + 91 + 80 + 90) / 4)
    # conservative TAR at FAR=2e-2 (1 of 50 impostors): the broken genuine pairs tie with the
    # impostors (cosine 0), so only the unbroken ones are accepted
    assert res['lfw@masked_unmasked/tar@far=2e-02'] == pytest.approx(82.0)
    mfr = {k: v for k, v in res.items() if '/mfr/' in k}
    assert mfr == pytest.approx({
        'lfw/mfr/tar@far=2e-02/clean': 100.0,
        'lfw/mfr/tar@far=2e-02/masked_unmasked': 82.0,
        'lfw/mfr/tar@far=2e-02/masked_masked': 60.0,
        'lfw/mfr/tar_drop@far=2e-02/masked_unmasked': 18.0,
        'lfw/mfr/tar_drop@far=2e-02/masked_masked': 40.0,
        'lfw/mfr/accuracy_drop/masked_unmasked': 9.0,
        'lfw/mfr/accuracy_drop/masked_masked': 20.0})
    # keep_scores: the pair cosine similarities and labels of every set
    assert list(metric.last_scores) == ['lfw', 'lfw@masked_unmasked', 'lfw@masked_masked',
                                        'cfp_fp']
    kept = metric.last_scores['lfw@masked_unmasked']
    issame = np.arange(100) % 2 == 0
    np.testing.assert_array_equal(kept['issame'], issame)
    assert kept['scores'].shape == (100,)
    np.testing.assert_allclose(kept['scores'][~issame], 0.0, atol=1e-12)
    assert np.sum(kept['scores'][issame] > 0.5) == 41


def test_mfr_summary_without_clean_set_and_no_scores_kept_by_default():
    samples, meta = _protocol_sets()
    samples = [s for s in samples if s['set_name'] != 'lfw']
    del meta['pair_sets']['lfw']
    metric = VerificationMetric(fars=(2e-2,))
    metric.dataset_meta = meta
    metric.process(None, samples)
    res = metric.evaluate(len(samples))
    mfr = {k: v for k, v in res.items() if '/mfr/' in k}
    # no clean set: the masked TARs only, no drops; cfp_fp has no variants: no summary
    assert mfr == pytest.approx({'lfw/mfr/tar@far=2e-02/masked_unmasked': 82.0,
                                 'lfw/mfr/tar@far=2e-02/masked_masked': 60.0})
    assert metric.last_scores == {}
    assert VerificationMetric().mfr_far == 1e-4
    with pytest.raises(ValueError, match='mfr_far'):
        VerificationMetric(mfr_far=0.0)


def test_masked_protocol_without_protocol_mask_is_an_error():
    samples, meta = _protocol_sets()
    # what PackFaceInputs reports without a ProtocolMask in the pipeline: nothing masked
    flagged = [dict(s, masked=False) for s in samples]
    with pytest.raises(ValueError, match=r"'lfw@masked_unmasked': images \[0, 2, 4, 6, 8\] "
                                         r"should wear a mask.*ProtocolMask"):
        _metric(meta).compute_metrics(_process(flagged, meta))
    # masked as the protocols say: fine (odd images of masked_unmasked stay clean)
    from coupleface.datasets.mask_protocols import masks_image, split_protocol_set_name
    flagged = [dict(s, masked=masks_image(split_protocol_set_name(s['set_name'])[1],
                                          s['sample_idx'])) for s in samples]
    res = _metric(meta).compute_metrics(_process(flagged, meta))
    assert res['lfw@masked_masked/accuracy'] == pytest.approx(80.0)
