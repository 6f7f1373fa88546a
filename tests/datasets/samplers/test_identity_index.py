"""per_identity_indices: the flat per-identity index and its one-line errors."""
import numpy as np
import pytest

from coupleface.datasets.samplers.identity_index import per_identity_indices


class _Set:
    def __init__(self, class_to_indices, length):
        self.class_to_indices, self._len = class_to_indices, length

    def __len__(self):
        return self._len


def test_flat_sizes_offsets():
    flat, sizes, offsets = per_identity_indices('S', _Set([[4, 0], [1], [2, 3, 5]], 6))
    assert flat.tolist() == [4, 0, 1, 2, 3, 5]
    assert sizes.tolist() == [2, 1, 3] and offsets.tolist() == [0, 2, 3]
    assert flat.dtype == sizes.dtype == offsets.dtype == np.int64
    # identity c's images are flat[offsets[c]:offsets[c] + sizes[c]]
    assert flat[offsets[2]:offsets[2] + sizes[2]].tolist() == [2, 3, 5]


def test_dataset_without_index_is_a_type_error():
    with pytest.raises(TypeError, match='S needs a dataset with `class_to_indices`; list'):
        per_identity_indices('S', [1, 2])


@pytest.mark.parametrize('sets, message', [
    (_Set([[0]], 1), 'S needs at least 2 identities, the dataset has 1'),
    (_Set([[0], []], 1), 'S: identity 1 has no images'),
    (_Set([[0], [3]], 3), r'S: class_to_indices holds indices outside \[0, len\(dataset\)=3\)'),
])
def test_errors_name_the_problem(sets, message):
    with pytest.raises(ValueError, match=message):
        per_identity_indices('S', sets, min_identities=2)
