"""IJB functional evaluation: template aggregation switches, chunked pair scores, 1:N search."""
import numpy as np
import pytest

from coupleface.evaluation.functional import (
    aggregate_templates,
    evaluate_identification,
    identification,
    read_template_subject_csv,
    score_template_pairs,
)

# Template 7: media 1 = images 0, 1; media 2 = image 2. Template 3: image 3 (listed in between).
EMB = np.array([[3.0, 4.0], [1.0, 0.0], [9.0, 9.0], [0.0, 2.0]])
TIDS = np.array([7, 7, 3, 7])
MIDS = np.array([1, 1, 5, 2])
FACENESS = np.array([0.5, 1.0, 0.9, 2.0])


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize('switches,template7,template3', [
    # insightface default (N1 D1): weight by faceness, mean within media, sum media.
    (dict(), [(0.5 * 3 + 1.0 * 1) / 2 + 2.0 * 0, (0.5 * 4 + 1.0 * 0) / 2 + 2.0 * 2],
     [0.9 * 9, 0.9 * 9]),
    # N1 D0: no faceness weights.
    (dict(use_detector_score=False), [(3 + 1) / 2 + 0, (4 + 0) / 2 + 2], [9, 9]),
    # N0 D0: unit image embeddings first.
    (dict(use_norm_score=False, use_detector_score=False),
     [(0.6 + 1) / 2 + 0, (0.8 + 0) / 2 + 1], [2 ** -0.5, 2 ** -0.5]),
    # N0 D1: unit embeddings, then faceness.
    (dict(use_norm_score=False), [(0.5 * 0.6 + 1.0) / 2, (0.5 * 0.8 + 0) / 2 + 2.0],
     [0.9 * 2 ** -0.5, 0.9 * 2 ** -0.5]),
    # Sum instead of mean within media.
    (dict(use_detector_score=False, mean_within_media=False), [3 + 1 + 0, 4 + 0 + 2], [9, 9]),
])
def test_aggregation_switches_match_hand_computation(switches, template7, template3):
    raw_ids, raw = aggregate_templates(EMB, TIDS, MIDS, FACENESS, normalize=False, **switches)
    assert raw_ids.tolist() == [3, 7] and raw.dtype == np.float32
    np.testing.assert_allclose(raw[1], template7, rtol=1e-6)
    np.testing.assert_allclose(raw[0], template3, rtol=1e-6)
    ids, feats = aggregate_templates(EMB, TIDS, MIDS, FACENESS, **switches)
    assert ids.tolist() == [3, 7]
    np.testing.assert_allclose(feats, [_unit(template3), _unit(template7)], rtol=1e-6)


def test_aggregation_ignores_row_order_and_chunking():
    rng = np.random.default_rng(0)
    n = 400
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    tids = rng.integers(0, 40, n) * 11
    mids = rng.integers(0, 5, n)
    face = rng.uniform(0.1, 1.0, n)
    ids, feats = aggregate_templates(emb, tids, mids, face)
    perm = rng.permutation(n)
    ids2, feats2 = aggregate_templates(emb[perm], tids[perm], mids[perm], face[perm],
                                       chunk_rows=7)
    assert np.array_equal(ids, np.unique(tids)) and np.array_equal(ids, ids2)
    np.testing.assert_allclose(feats, feats2, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-6)
    # One template by hand: faceness-weighted media means, summed, normalised.
    t = ids[5]
    rows = np.flatnonzero(tids == t)
    media = [(emb[rows][mids[rows] == m] * face[rows][mids[rows] == m, None]).mean(0)
             for m in np.unique(mids[rows])]
    np.testing.assert_allclose(feats[5], _unit(np.sum(media, axis=0)), atol=1e-5)


def test_aggregation_input_errors():
    with pytest.raises(ValueError, match='faceness'):
        aggregate_templates(EMB, TIDS, MIDS)  # detector score on by default
    with pytest.raises(ValueError, match='length mismatch'):
        aggregate_templates(EMB, TIDS[:3], MIDS, FACENESS)
    zero_ids, zero = aggregate_templates(np.zeros((2, 3)), [1, 1], [1, 2],
                                         use_detector_score=False)
    assert np.all(zero == 0)  # no NaN for a zero template


@pytest.mark.parametrize('grouped', [False, True])
def test_chunked_scoring_equals_unchunked(grouped):
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(50, 16)).astype(np.float32)
    ids = rng.permutation(1000)[:50] + 5
    t1 = rng.choice(ids, 1003)
    t2 = rng.choice(ids, 1003)
    if grouped:  # grouped by first template, as IJB lists (no sort needed)
        t1 = np.sort(t1)
    row = {int(t): i for i, t in enumerate(ids)}
    direct = np.einsum('ij,ij->i', feats[[row[t] for t in t1]].astype(np.float64),
                       feats[[row[t] for t in t2]].astype(np.float64))
    gathered = score_template_pairs(feats, ids, t1, t2, method='gather', chunk_size=10**6)
    np.testing.assert_allclose(gathered, direct, rtol=1e-5, atol=1e-5)
    for chunk in (1, 7, 1003):
        np.testing.assert_array_equal(
            score_template_pairs(feats, ids, t1, t2, method='gather', chunk_size=chunk),
            gathered)
    # One product per block of first templates (here several blocks of 3), same scores.
    for method, block in (('matmul', 150), ('matmul', 10**6), ('auto', 150)):
        np.testing.assert_allclose(
            score_template_pairs(feats, ids, t1, t2, method=method, block_elements=block),
            gathered, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r'pair 2: template id 4 \(pair_t2\) has no features'):
        score_template_pairs(feats, ids, t1[:4], np.r_[t2[:2], 4, t2[3]], chunk_size=3)
    with pytest.raises(ValueError, match='unique'):
        score_template_pairs(feats[:2], [1, 1], [1], [1])


def test_auto_scoring_picks_the_product_for_dense_blocks(monkeypatch):
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(40, 8)).astype(np.float32)
    ids = np.arange(40)
    dense = score_template_pairs(feats, ids, np.repeat(ids[:5], 30), np.tile(ids[5:35], 5))
    import coupleface.evaluation.functional.ijb_verification as ijb_verification
    # never dense: must give the same scores
    monkeypatch.setattr(ijb_verification, 'DENSE_FRACTION', 2.0)
    np.testing.assert_allclose(
        score_template_pairs(feats, ids, np.repeat(ids[:5], 30), np.tile(ids[5:35], 5)),
        dense, atol=1e-6)


# Gallery subjects 1, 2, 3 on the first three axes; probe rows are unit-normalised inside.
GALLERY = np.eye(4)[:3]
PROBES = np.array([
    [0.9, 0.1, 0.0, 0.0],   # subject 1: rank 1, score 0.994
    [0.6, 0.5, 0.0, 0.0],   # subject 2: subject 1 scores higher -> rank 2
    [0.0, 0.0, 0.5, 0.5],   # subject 3: rank 1, score 0.707
    [0.0, 0.0, 0.0, 1.0],   # non-mated (9): top score 0
    [0.8, 0.0, 0.0, 0.6],   # non-mated (10): top score 0.8
    [0.0, 0.9, 0.0, 0.43589],  # non-mated (11): top score 0.9
])
PROBE_IDS = [1, 2, 3, 9, 10, 11]


def test_identification_on_planted_features():
    res = identification(GALLERY, [1, 2, 3], PROBES, PROBE_IDS, fpirs=(0.1, 1 / 3, 2 / 3, 1.0),
                         ranks=(1, 2, 5))
    assert res['num_mated'] == 3 and res['num_non_mated'] == 3
    assert res['mate_ranks'].tolist() == [1, 2, 1]
    assert res['rank_accuracy'] == {1: pytest.approx(2 / 3), 2: 1.0, 5: 1.0}
    np.testing.assert_allclose(res['non_mated_top_scores'], [0.0, 0.8, 0.9], atol=1e-4)
    tpir = res['tpir']
    # FPIR 0.1 < 1/3: not measurable.
    assert not tpir[0.1]['measurable'] and np.isnan(tpir[0.1]['tpir'])
    # FPIR 1/3: one non-mated probe may pass -> threshold just above 0.8 -> subject 3 (0.707)
    # drops out, subject 1 (rank 1, 0.994) stays, subject 2 is rank 2: TPIR 1/3.
    assert tpir[1 / 3]['tpir'] == pytest.approx(1 / 3)
    assert 0.8 < tpir[1 / 3]['threshold'] < 0.8001
    assert tpir[1 / 3]['fpir_actual'] == pytest.approx(1 / 3)
    # FPIR 2/3: threshold just above 0 -> both rank-1 mates pass.
    assert tpir[2 / 3]['tpir'] == pytest.approx(2 / 3)
    assert tpir[1.0]['tpir'] == pytest.approx(2 / 3) and tpir[1.0]['threshold'] == -np.inf


def test_identification_takes_the_best_template_of_a_subject():
    gallery = np.vstack([GALLERY, [0.6, 0.5, 0.0, 0.0]])  # a 2nd template of subject 2
    res = identification(gallery, [1, 2, 3, 2], PROBES, PROBE_IDS, fpirs=(1.0,), ranks=(1,))
    assert res['mate_ranks'].tolist() == [1, 1, 1]
    assert res['rank_accuracy'][1] == 1.0


def test_identification_without_non_mated_probes_is_not_measurable():
    res = identification(GALLERY, [1, 2, 3], PROBES[:3], PROBE_IDS[:3], fpirs=(0.1,))
    assert res['num_non_mated'] == 0 and not res['tpir'][0.1]['measurable']
    assert res['rank_accuracy'][1] == pytest.approx(2 / 3)


def test_read_template_subject_csv(tmp_path):
    path = tmp_path / 'ijbc_1N_gallery_G1.csv'
    path.write_text('TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID\n'
                    '11,5,img/1.jpg,1\n11,5,img/2.jpg,2\n\n4,6,frames/3.png,3\n')
    tids, sids = read_template_subject_csv(str(path))
    assert tids.tolist() == [11, 4] and sids.tolist() == [5, 6]
    # Columns found by header name.
    path.write_text('FILENAME,SUBJECT_ID,TEMPLATE_ID\na.jpg,5,11\n')
    assert read_template_subject_csv(str(path))[0].tolist() == [11]
    # Headerless: template id, subject id.
    path.write_text('11,5,a.jpg\n12,6,b.jpg\n')
    assert read_template_subject_csv(str(path))[1].tolist() == [5, 6]
    path.write_text('TEMPLATE_ID,SUBJECT_ID\n11,5\n11,6\n')
    with pytest.raises(ValueError, match=r'G1.csv:3: template 11 has subject 6 but 5 on line 2'):
        read_template_subject_csv(str(path))
    path.write_text('TEMPLATE_ID,SUBJECT_ID\n11,x\n')
    with pytest.raises(ValueError, match=r'G1.csv:2: TEMPLATE_ID and SUBJECT_ID'):
        read_template_subject_csv(str(path))


def test_evaluate_identification_per_gallery_and_union():
    ids = np.array([100, 200, 300, 401, 402, 403, 404, 405, 406])
    feats = np.vstack([GALLERY, PROBES])
    res = evaluate_identification(
        ids, feats, {'G1': ([100, 200], [1, 2]), 'G2': ([300], [3])},
        ([401, 402, 403, 404, 405, 406], PROBE_IDS), fpirs=(1.0,), ranks=(1,))
    assert list(res) == ['G1', 'G2', 'G1+G2']
    assert (res['G1']['num_mated'], res['G2']['num_mated'], res['G1+G2']['num_mated']) == \
        (2, 1, 3)
    assert res['G1+G2']['rank_accuracy'][1] == pytest.approx(2 / 3)
    assert res['G2']['rank_accuracy'][1] == 1.0
    with pytest.raises(ValueError, match='gallery G2: template id 999'):
        evaluate_identification(ids, feats, {'G2': ([999], [3])}, ([401], [1]))
