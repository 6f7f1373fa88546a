"""Fixtures of the utils tests."""
import pytest


@pytest.fixture(autouse=True)
def _default_streams(default_augmentation_streams):
    """The seeding tests draw from the default augmentation streams (tests/conftest.py)."""
    yield
