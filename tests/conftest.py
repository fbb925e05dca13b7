"""Fixtures shared by every test directory."""

import importlib.util
import os
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


@pytest.fixture(autouse=True, scope="session")
def _csim_cache(tmp_path_factory):
    """C-sim libraries are built into the session's temporary directory, not the user's."""
    old = os.environ.get("FILMQNN_CACHE")
    os.environ["FILMQNN_CACHE"] = str(tmp_path_factory.mktemp("csim_cache"))
    yield
    if old is None:
        os.environ.pop("FILMQNN_CACHE", None)
    else:
        os.environ["FILMQNN_CACHE"] = old
