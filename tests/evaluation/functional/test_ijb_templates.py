"""The input checks shared by IJB 1:1 and 1:N (aggregation and scoring: test_ijb.py)."""
import numpy as np
import pytest

from coupleface.evaluation.functional.ijb_templates import (
    as_features,
    as_ids,
    l2_normalize_rows,
    select_templates,
)


def test_as_ids_checks_shape_length_and_integers():
    out = as_ids([3, 1, 2], 3, 'template_ids')
    assert out.dtype == np.int64 and out.tolist() == [3, 1, 2]
    assert as_ids(np.array([4.0, 5.0]), 2, 'x').dtype == np.int64
    with pytest.raises(ValueError, match='template_ids must be 1-D'):
        as_ids([[1, 2]], 2, 'template_ids')
    with pytest.raises(ValueError, match='length mismatch: 3 rows but 2 media_ids'):
        as_ids([1, 2], 3, 'media_ids')
    with pytest.raises(ValueError, match='x must be integers'):
        as_ids([1.5, 2.0], 2, 'x')


def test_as_features_and_row_normalisation():
    feats = as_features([[3, 4], [0, 0]], 'feats')
    assert feats.dtype == np.float32
    assert as_features(np.ones((1, 2)), 'f').dtype == np.float64
    with pytest.raises(ValueError, match='feats must be a non-empty 2-D array'):
        as_features(np.zeros((0, 2)), 'feats')
    np.testing.assert_allclose(l2_normalize_rows(feats), [[0.6, 0.8], [0.0, 0.0]])


def test_select_templates_names_the_unknown_id():
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(select_templates([7, 3, 5], feats, [5, 7]), feats[[2, 0]])
    with pytest.raises(ValueError, match='probe: template id 9 .entry 1. has no features'):
        select_templates([7, 3, 5], feats, [5, 9], 'probe')
