"""Fixtures of the board-runtime tests: artifacts, HLS projects and bundles of the lowering
tests' small models (Fashion-MNIST-shaped, 1x28x28), built once per session."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from filmqnn.data import load_dataset
from filmqnn.hls.project import write_project
from filmqnn.hw.devices import load_board
from filmqnn.lower.artifact import save_artifact
from filmqnn.lower.reordering import reorder
from filmqnn.pynq.deploy import write_bundle


def _hls_designs():
    """DESIGNS and TILING of tests/hls/conftest.py (one definition of the test designs)."""
    path = Path(__file__).parent.parent / "hls" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_hls_designs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.DESIGNS, mod.TILING


DESIGNS, TILING = _hls_designs()
#: The model each test runs and the test design it runs on (two ports of 128-bit beats for
#: resnet50_small, three 64-bit ports on the PYNQ-Z2 design for the others).
MODEL_DESIGN = {"resnet18_small": "pynq-z2", "resnet50_small": "zcu102",
                "mobilenet_v2_small": "pynq-z2"}


@pytest.fixture(scope="session")
def fmnist():
    """12 Fashion-MNIST test images: uint8 [N, 1, 28, 28], normalised floats, labels."""
    ds = load_dataset("fashion-mnist", "test", limit=12).dataset
    x, y = ds.batch(torch.arange(len(ds)))
    return ds.images.numpy(), x, y.numpy()


@pytest.fixture(scope="session")
def deployed(lower_models, tmp_path_factory):
    """`deployed(model, samples=0)`: (graph, artifact, project, bundle) directories of the
    model on its test design, built once per (model, samples)."""
    cache = {}

    def make(name: str, samples: int = 0):
        key = (name, samples)
        if key not in cache:
            root = tmp_path_factory.mktemp(f"{name}_{samples}")
            design_key = MODEL_DESIGN.get(name, "pynq-z2")
            with lower_models.one_thread():
                graph = reorder(lower_models.build_lowered(name), TILING[design_key])
            graph = replace(graph, meta={"model": name, "data": "fashion-mnist"})
            save_artifact(graph, root / "art")
            board, design = DESIGNS[design_key]
            write_project(graph, design, load_board(board), root / "prj", root / "art")
            with lower_models.one_thread():
                write_bundle(root / "art", root / "prj", root / "bundle", samples=samples)
            cache[key] = (graph, root / "art", root / "prj", root / "bundle")
        return cache[key]

    return make


@pytest.fixture(scope="session")
def reference_logits():
    """`reference_logits(graph, x_float)`: the integer reference's int logits of normalised
    float images (the host's torch quantization)."""
    from filmqnn.ref.executor import ReferenceExecutor

    return lambda graph, x: ReferenceExecutor(graph).int_logits(x).numpy()
