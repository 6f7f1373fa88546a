"""Fixtures of the transform tests."""
import pytest


@pytest.fixture(autouse=True)
def _default_streams(default_augmentation_streams):
    """Every transform test draws from the default augmentation streams (tests/conftest.py)."""
    yield
