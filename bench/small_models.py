"""The tests' small models and HLS test designs, for the benches (``tests/conftest.py``,
``tests/hls/conftest.py``): loaded by path, so a bench needs no pytest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def lower_builders() -> ModuleType:
    """The lowering tests' builders: calibrated small models, the BatchNorm randomiser."""
    return _load("_bench_conftest", ROOT / "tests/conftest.py").load_lower_builders()


def design_graph(model: str, design: str) -> tuple[Any, str, dict[str, Any]]:
    """A small model's integer graph reordered for an HLS test design, the design's board name
    and its design dict."""
    from filmqnn.lower.reordering import reorder

    hc = _load("_bench_hls_conftest", ROOT / "tests/hls/conftest.py")
    graph = reorder(lower_builders().build_lowered(model), hc.TILING[design])
    board, d = hc.DESIGNS[design]
    return graph, board, d
