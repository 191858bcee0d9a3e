"""Fixtures of the mapper tests (helpers live in mapper_helpers.py)."""
import pytest

from mapper_helpers import small_arch


@pytest.fixture
def arch():
    return small_arch()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long integration test (deselect with -m 'not slow')")
