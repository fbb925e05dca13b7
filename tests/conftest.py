"""Fixtures shared by every test directory."""

import importlib.util
from pathlib import Path

import pytest


def load_lower_builders():
    """The lowering tests' model builders (tests/lower/conftest.py: calibrated small models,
    8-bit first / last layer, random 8-bit filters), for tests of the later stages."""
    path = Path(__file__).parent / "lower" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_lower_builders", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def lower_models():
    """`load_lower_builders()`, loaded once per session."""
    return load_lower_builders()
