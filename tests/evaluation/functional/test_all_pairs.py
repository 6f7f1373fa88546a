"""All-pairs TAR@FAR equals tar_at_far on the explicit list of every pair's score."""
import numpy as np
import pytest

from coupleface.evaluation.functional import tar_at_far
from coupleface.evaluation.functional.all_pairs import all_pairs_tar_at_far


def _explicit(emb: np.ndarray, labels: np.ndarray):
    scores, same = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            scores.append(float(np.dot(emb[i], emb[j])))
            same.append(bool(labels[i] == labels[j]))
    return np.array(scores), np.array(same)


def _check(emb, labels, fars, chunk_size, normalize):
    res = all_pairs_tar_at_far(emb, labels, fars=fars, chunk_size=chunk_size,
                               normalize=normalize)
    ref_emb = emb / np.linalg.norm(emb, axis=1, keepdims=True) if normalize else emb
    scores, same = _explicit(ref_emb, labels)
    assert res['num_genuine'] == same.sum() and res['num_impostor'] == (~same).sum()
    ref = tar_at_far(scores, same, fars=fars)
    for far in fars:
        assert res[far]['measurable'] == ref[far]['measurable'], far
        for key in ('tar', 'threshold', 'far_actual'):
            if not ref[far]['measurable']:
                assert np.isnan(res[far][key])
            else:
                assert res[far][key] == pytest.approx(ref[far][key], abs=1e-12), (far, key)


@pytest.mark.parametrize('chunk_size', [1, 7, 1000])
def test_random_embeddings_equal_the_explicit_list(chunk_size):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), 5)  # 60 images: 120 genuine, 1650 impostor pairs
    centers = rng.normal(size=(12, 8))
    emb = centers[labels] + 0.8 * rng.normal(size=(60, 8))
    _check(emb, labels, (1.0, 0.1, 1e-2, 1e-3, 1e-4), chunk_size, normalize=True)


@pytest.mark.parametrize('chunk_size', [3, 64])
def test_tied_integer_scores_equal_the_explicit_list(chunk_size):
    # integer embeddings, no normalisation: exact integer scores with many ties
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, size=40)
    emb = rng.integers(-2, 3, size=(40, 3)).astype(np.float64)
    emb[labels == 0] = emb[np.flatnonzero(labels == 0)[0]]  # identical images: tied genuines
    _check(emb, labels, (0.5, 0.2, 0.05, 1e-2, 2e-3, 1e-4), chunk_size, normalize=False)


def test_top_impostor_above_all_genuines_gives_tar_zero_and_infinite_threshold():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    res = all_pairs_tar_at_far(emb, [0, 0, 1, 1], fars=(0.25, ), normalize=False)
    # impostors (0,2) and (1,3) score 1, genuines 0: no threshold accepts a genuine at FAR 1/4
    assert res[0.25] == dict(tar=0.0, threshold=float('inf'), far_actual=0.0, measurable=True)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='do not match'):
        all_pairs_tar_at_far(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match='0 genuine'):
        all_pairs_tar_at_far(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match=r'target FAR must be in \(0, 1\]'):
        all_pairs_tar_at_far(np.eye(4), [0, 0, 1, 1], fars=(0.0, ))
