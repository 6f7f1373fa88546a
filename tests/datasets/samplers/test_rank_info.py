"""resolve_rank: given values, MMEngine's defaults, one-line errors."""
import pytest

from coupleface.datasets.samplers.rank_info import resolve_rank


def test_given_values_and_defaults():
    assert resolve_rank('S', 1, 4) == (1, 4)
    assert resolve_rank('S', None, None) == (0, 1)  # not distributed: rank 0 of 1
    assert resolve_rank('S', None, 3) == (0, 3)


@pytest.mark.parametrize('rank,world', [(2, 2), (-1, 2), (0, 0)])
def test_out_of_range_is_refused(rank, world):
    with pytest.raises(ValueError, match=rf'S: rank={rank} is not in \[0, world_size={world}\)'):
        resolve_rank('S', rank, world)
