"""Mask-protocol set names: round trip, unknown suffixes, which images wear a mask."""
import pytest

from coupleface.datasets.mask_protocols import (
    MASK_PROTOCOLS,
    masks_image,
    protocol_set_name,
    split_protocol_set_name,
)


def test_protocol_name_helpers():
    for base in ('lfw', 'a@b'):
        for p in MASK_PROTOCOLS:
            assert split_protocol_set_name(protocol_set_name(base, p)) == (base, p)
    assert split_protocol_set_name('x@clean') == ('x@clean', 'clean')
    assert [masks_image(p, i) for p in MASK_PROTOCOLS for i in (0, 1)] == [
        False, False, True, False, True, True]


def test_unknown_protocol_is_an_error():
    with pytest.raises(ValueError, match="unknown mask protocol 'masked'"):
        protocol_set_name('lfw', 'masked')
    with pytest.raises(ValueError, match="unknown mask protocol 'x'"):
        masks_image('x', 0)
