"""C-simulation of the generated kernel equals the integer reference bit for bit."""

import numpy as np
import pytest
import torch

from filmqnn.hls.csim import CsimEngine
from filmqnn.hls.project import write_project
from filmqnn.hw.devices import load_board
from filmqnn.ref.executor import ReferenceExecutor

MODELS = ("resnet18_small", "resnet50_small", "mobilenet_v2_small", "user_cnn")


def _frames(shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Random frames and the extremes: all -128 (both nibble planes at their ends), all 127,
    all zero."""
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=shape), np.full(shape, -128), np.full(shape, 127),
            np.zeros(shape, np.int64)]


def _check(graph, designs, design_key: str, tmp_path) -> CsimEngine:
    board, design = designs[design_key]
    write_project(graph, design, load_board(board), tmp_path / "prj")
    eng = CsimEngine(tmp_path / "prj")
    ref = ReferenceExecutor(graph)
    for x in _frames(tuple(graph.tensors[graph.input].shape), 0):
        got = eng.run(x).outputs[0]
        want = ref.run_int(torch.from_numpy(x[None]).to(torch.int32))[0][0].numpy()
        assert np.array_equal(got, want), (design_key, np.abs(got - want).max())
    return eng


@pytest.mark.parametrize("name", MODELS)
def test_models_on_zcu102_design(graph_for, designs, name, tmp_path):
    _check(graph_for(name, "zcu102"), designs, "zcu102", tmp_path)


@pytest.mark.parametrize("name", ("resnet18_small", "mobilenet_v2_small", "user_cnn"))
def test_models_on_pynq_design(graph_for, designs, name, tmp_path):
    _check(graph_for(name, "pynq-z2"), designs, "pynq-z2", tmp_path)


@pytest.mark.parametrize("name", ("mobilenet_v2_small", "user_cnn"))
def test_every_multiply_on_luts(graph_for, designs, name, tmp_path):
    """No DSPs: PE4 / PE8 on fabric, depthwise rows at two pixels per cycle."""
    _check(graph_for(name, "fabric"), designs, "fabric", tmp_path)


def test_counters_report_every_layer(graph_for, designs, tmp_path):
    eng = _check(graph_for("user_cnn", "zcu102"), designs, "zcu102", tmp_path)
    run = eng.run(np.zeros(tuple(eng.meta["input_shape"]), np.int64))
    assert run.stats.shape[0] == len(eng.layer_names)
    assert np.all(run.stats[:, 0] > 0) and np.all(run.stats[:, 2] > 0)
