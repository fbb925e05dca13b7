"""ONNX Runtime runs the integer ONNX model of every test network with the reference
executor's integers: Fashion-MNIST images, random frames and the extremes; also with every
large layer split into float32-exact chunks, and on accumulators beyond 2^24 that one
float32 conv would round."""

import json

import numpy as np
import pytest
import torch

from filmqnn.lower.graph import IntGraph, Node, TensorInfo
from filmqnn.lower.requant import dequantize
from filmqnn.lower.validate import validate_graph
from filmqnn.onnx_export.graph import FLOAT32_EXACT, LOGITS, build_int_model
from filmqnn.onnx_export.runtime import OnnxRuntimeExecutor
from filmqnn.ref.executor import ReferenceExecutor

MODELS = ("resnet18_small", "resnet50_small", "mobilenet_v2_small", "user_cnn")


def reference(graph: IntGraph, x: np.ndarray) -> list[np.ndarray]:
    return [t.numpy() for t in ReferenceExecutor(graph).run_int(torch.from_numpy(x).int())]


def assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert np.array_equal(a, b), f"{int((a != b).sum())} values differ"


def chunks(model) -> dict[str, int]:
    meta = {p.key: p.value for p in model.metadata_props}
    return json.loads(meta["filmqnn.float32_conv_chunks"])


@pytest.mark.parametrize("name", MODELS)
def test_onnxruntime_equals_the_reference(graph_of, frames_for, name):
    g = graph_of(name)
    x = frames_for(g)
    ex = OnnxRuntimeExecutor(g, build_int_model(g), threads=1)
    want = reference(g, x)
    assert_same(ex.run_int(x), want)
    assert len(np.unique(want[0], axis=0)) > len(x) // 2, "logits vary from frame to frame"
    # the dequantized output is the reference's float64 logits exactly
    logits = ex.session.run([LOGITS], {"input_q": x})[0]
    assert np.array_equal(logits, dequantize(torch.from_numpy(want[0]),
                                             g.tensors[g.outputs[0]].scale).numpy())


@pytest.mark.parametrize("name", ("resnet18_small", "mobilenet_v2_small", "user_cnn"))
def test_split_convolutions_stay_exact(graph_of, frames_for, name):
    """With a 2^19 limit per float32 chunk, the wide layers run as several exact chunks."""
    g = graph_of(name)
    model = build_int_model(g, float_limit=1 << 19)
    assert max(chunks(model).values()) >= 2
    x = frames_for(g)[-12:]  # random and extreme frames
    assert_same(OnnxRuntimeExecutor(g, model, threads=1).run_int(x), reference(g, x))


def big_fc() -> IntGraph:
    """An fc whose accumulators exceed 2^24 (odd: float32 cannot hold them)."""
    f = 1041  # 127 * 127 * 1041 = 16_790_529 > 2^24
    w = np.full((2, f), 127, np.int8)
    w[1, 0] = 126
    tensors = {"x": TensorInfo("x", (f,), 8, True, 0.05),
               "fc": TensorInfo("fc", (2,), 32, True, [0.01, 0.02])}
    params = {"weight": w, "bits": np.full(2, 8, np.uint8), "bias": np.array([0, -7], np.int32)}
    return IntGraph("x", tensors, [Node("fc", "fc", ["x"], "fc", {}, params)], ["fc"])


def big_conv() -> IntGraph:
    """A 3x3 conv over 130 channels whose accumulators exceed 2^24 (odd)."""
    c = 130  # 1170 * 127 * 127 = 18_870_930 > 2^24
    w = np.full((2, c, 3, 3), 127, np.int8)
    w[0, 5, 1, 1] = -126
    w[1, 0, 0, 0] = 126
    tensors = {"x": TensorInfo("x", (c, 3, 3), 8, True, 0.05),
               "y": TensorInfo("y", (2, 1, 1), 32, True, [0.01, 0.02])}
    attrs = {"kernel": [3, 3], "stride": [1, 1], "padding": [0, 0], "groups": 1}
    params = {"weight": w, "bits": np.full(2, 8, np.uint8), "bias": np.array([3, 0], np.int32)}
    return IntGraph("x", tensors, [Node("y", "conv", ["x"], "y", attrs, params)], ["y"])


@pytest.mark.parametrize("make", (big_fc, big_conv), ids=("fc", "conv"))
def test_accumulators_beyond_float32_run_in_exact_chunks(make):
    g = make()
    validate_graph(g)
    shape = g.tensors["x"].shape
    x = np.stack([np.full(shape, 127), np.full(shape, -128), np.zeros(shape),
                  np.random.default_rng(0).integers(-128, 128, size=shape)]).astype(np.int8)
    want = reference(g, x)
    assert np.abs(want[0]).max() > FLOAT32_EXACT and np.any(want[0] % 2)
    model = build_int_model(g)
    assert chunks(model)[g.nodes[0].name] >= 2
    assert_same(OnnxRuntimeExecutor(g, model, threads=1).run_int(x), want)
    # one float32 conv over all channels rounds: the split is what makes the graph exact
    one = build_int_model(g, float_limit=1 << 40)
    assert chunks(one)[g.nodes[0].name] == 1
    assert not np.array_equal(OnnxRuntimeExecutor(g, one, threads=1).run_int(x)[0], want[0])


@pytest.mark.parametrize("name", ("user_cnn", "mobilenet_v2_small"))
def test_unreordered_graphs_too(lower_models, frames_for, name):
    """An artifact exported with --no-reorder (original filter order, no gathers)."""
    g = lower_models.build_lowered(name)
    x = frames_for(g)[-12:]
    assert_same(OnnxRuntimeExecutor(g, build_int_model(g), threads=1).run_int(x), reference(g, x))
