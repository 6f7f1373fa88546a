"""check_int: ints (bools too) of at least the minimum pass unchanged; the rest raise."""
import pytest

from coupleface.utils.validation import check_int


def test_valid_values_pass_unchanged():
    assert check_int(0, 'n') == 0
    assert check_int(5, 'n', minimum=5) == 5
    assert check_int(True, 'n') is True


@pytest.mark.parametrize('value', [-1, 1.0, '3', None])
def test_invalid_values_name_the_argument(value):
    with pytest.raises(ValueError, match=rf"^Hook: n must be an int >= 0, got {value!r}$"):
        check_int(value, 'n', owner='Hook')


def test_minimum_and_no_owner():
    with pytest.raises(ValueError, match=r'^k must be an int >= 2, got 1$'):
        check_int(1, 'k', minimum=2)
