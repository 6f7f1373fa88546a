"""check_meta: the provenance check shared by relations files and teacher banks."""
import pytest

from coupleface.utils.meta_check import check_meta


def test_nothing_expected_checks_nothing():
    check_meta('f', {}, None, 'relations')
    check_meta('f', {}, {}, 'relations')


def test_equal_after_a_json_round_trip():
    check_meta('f', dict(shape=[2, 3], k=4, extra='x'), dict(shape=(2, 3), k=4), 'relations')


def test_missing_and_differing_keys_are_one_line_errors():
    with pytest.raises(ValueError) as err:
        check_meta('/a/bank.json', dict(k=4), dict(k=4, epoch=3), 'teacher embeddings')
    assert str(err.value) == ("/a/bank.json: teacher embeddings metadata has no 'epoch' "
                              '(expected 3); regenerate the file')
    with pytest.raises(ValueError) as err:
        check_meta('r.npz', dict(dataset_len=400), dict(dataset_len=401), 'relations')
    assert str(err.value) == ('r.npz: relations were made with dataset_len=400 but 401 is '
                              'expected; regenerate the file')
