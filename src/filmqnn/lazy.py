"""Package attributes imported on first use (PEP 562), so that importing one torch-free
module of a stage (``lower.packing``, ``lower.graph``) does not import the whole stage."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """``(__getattr__, __all__)`` for ``package`` whose public names live in the submodules
    ``exports`` maps them to."""

    def getattr_(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return getattr_, sorted(exports)
