"""Stage packages export their public names lazily (filmqnn.lazy): every name resolves to the
object its submodule defines, even after that submodule was imported directly."""

import importlib
import pkgutil
import types

import pytest

PACKAGES = ("filmqnn.quant", "filmqnn.lower")


@pytest.mark.parametrize("package", PACKAGES)
def test_no_export_is_shadowed_by_a_submodule(package):
    """Importing submodule X sets the package attribute X, so no export may be named like one."""
    pkg = importlib.import_module(package)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    assert not submodules & set(pkg.__all__)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_resolves(package):
    pkg = importlib.import_module(package)
    for name in pkg.__all__:
        assert not isinstance(getattr(pkg, name), types.ModuleType), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pkg.nope  # noqa: B018
