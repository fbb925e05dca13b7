"""Every integer op on a small hand-built graph whose requantizations hit rounding ties on
purpose (shift 1 or 2, multiplier 1): a 1x1 conv, a depthwise conv with an input gather, a
3x3 conv with a fused residual add and a skip gather, a plain add with a gather, a padded max
pool on a signed tensor, a global average pool, flatten and an fc with reordered classes.
A requantization that rounds ties differently (truncating Div) is caught."""

import numpy as np
import pytest
import torch

import filmqnn.onnx_export.graph as graph_mod
from filmqnn.lower.graph import IntGraph, Node, TensorInfo
from filmqnn.lower.validate import validate_graph
from filmqnn.onnx_export.builder import GraphBuilder
from filmqnn.onnx_export.graph import build_int_model
from filmqnn.onnx_export.runtime import OnnxRuntimeExecutor
from filmqnn.ref.executor import ReferenceExecutor

CONV = {"stride": [1, 1], "groups": 1}
SIGNED5 = {"lo": -16, "hi": 15}


def tie_graph() -> IntGraph:
    rng = np.random.default_rng(3)
    t = {
        "x": TensorInfo("x", (2, 4, 4), 8, True, 0.05),
        "c1": TensorInfo("c1", (2, 4, 4), 5, True, 0.1),
        "d1": TensorInfo("d1", (2, 4, 4), 5, False, 0.1),
        "c2": TensorInfo("c2", (2, 4, 4), 5, True, 0.2),
        "s": TensorInfo("s", (2, 4, 4), 5, True, 0.3),
        "p": TensorInfo("p", (2, 2, 2), 5, True, 0.3),
        "g": TensorInfo("g", (2, 1, 1), 5, True, 0.3),
        "f": TensorInfo("f", (2,), 5, True, 0.3),
        "fc": TensorInfo("fc", (3,), 32, True, [0.01, 0.02, 0.03], np.array([2, 0, 1])),
    }
    i64 = np.int64
    nodes = [
        Node("conv1", "conv", ["x"], "c1",
             {**CONV, "kernel": [1, 1], "padding": [0, 0], **SIGNED5},
             {"weight": np.array([[1, 0], [0, -1]], np.int8).reshape(2, 2, 1, 1),
              "bits": np.array([8, 4], np.uint8), "bias": np.array([0, 5], np.int32),
              "mult": np.array([1, 3], i64), "shift": np.array([1, 2], i64),
              "offset": np.array([0, 1], i64)}),
        Node("dw", "conv", ["c1"], "d1",
             {"stride": [1, 1], "groups": 2, "kernel": [3, 3], "padding": [1, 1], "lo": 0,
              "hi": 20},
             {"weight": rng.integers(-7, 8, size=(2, 1, 3, 3)).astype(np.int8),
              "bits": np.array([4, 4], np.uint8), "bias": np.array([3, -2], np.int32),
              "mult": np.array([1, 1], i64), "shift": np.array([1, 1], i64),
              "offset": np.array([0, 0], i64), "in_index": np.array([1, 0], i64)}),
        Node("conv2", "conv", ["d1", "c1"], "c2",
             {**CONV, "kernel": [3, 3], "padding": [1, 1], **SIGNED5},
             {"weight": rng.integers(-1, 2, size=(2, 2, 3, 3)).astype(np.int8),
              "bits": np.array([8, 8], np.uint8), "bias": np.array([-10, 7], np.int32),
              "mult": np.array([1, 1], i64), "shift": np.array([2, 1], i64),
              "offset": np.array([1, -1], i64), "skip_mult": np.array([2, 1], i64),
              "skip_index": np.array([1, 0], i64)}),
        Node("add", "add", ["c2", "c1"], "s", dict(SIGNED5),
             {"mult": np.array([1], i64), "mult_b": np.array([1], i64),
              "shift": np.array([1], i64), "b_index": np.array([1, 0], i64)}),
        Node("pool", "maxpool", ["s"], "p", {"kernel": [3, 3], "stride": [2, 2],
                                             "padding": [1, 1]}),
        Node("gap", "gap", ["p"], "g", dict(SIGNED5),
             {"mult": np.array([1], i64), "shift": np.array([2], i64)}),
        Node("flat", "flatten", ["g"], "f"),
        Node("fc", "fc", ["f"], "fc", {},
             {"weight": np.array([[3, -1], [-127, 2], [5, 127]], np.int8),
              "bits": np.full(3, 8, np.uint8), "bias": np.array([1, -2, 3], np.int32)}),
    ]
    return IntGraph("x", t, nodes, ["fc"])


def frames(n: int = 600) -> np.ndarray:
    """Small values (the requantizations neither saturate nor vanish), the int8 extremes."""
    rng = np.random.default_rng(0)
    small = rng.integers(-40, 41, size=(n, 2, 4, 4))
    ext = np.stack([np.full((2, 4, 4), v) for v in (0, -128, 127)])
    return np.concatenate([small, ext, rng.integers(-128, 128, size=(20, 2, 4, 4))]).astype(
        np.int8)


def ties_hit(g: IntGraph, x: np.ndarray) -> int:
    """Rounding ties of conv1's filter 0 ((x + 1) >> 1 with x odd) inside the clamp."""
    x0 = x[:, 0].astype(np.int64)
    return int(((x0 % 2 == 1) & (np.abs(x0) < 30)).sum())


def test_every_op_with_ties_matches_the_reference():
    g = tie_graph()
    validate_graph(g)
    x = frames()
    assert ties_hit(g, x) > 1000
    want = ReferenceExecutor(g).run_int(torch.from_numpy(x).int())[0].numpy()
    got = OnnxRuntimeExecutor(g, build_int_model(g), threads=1).run_int(x)[0]
    assert got.dtype == np.int32 and np.array_equal(got, want)
    assert len(np.unique(want, axis=0)) > 50, "the logits vary"


def truncating_requant(b: GraphBuilder, base, terms, const, shift, lo, hi, out_dtype, shape,
                       out=None):
    """A wrong requantization: (n + 2^(S-1)) / 2^S with ONNX Div, which truncates."""
    acc = None
    for i, (t, mult) in enumerate(terms):
        m = b.const(f"{base}.m{i}", np.asarray(mult, np.int64).reshape(shape))
        prod = b.op("Mul", [t, m], base)
        acc = prod if acc is None else b.op("Add", [acc, prod], base)
    shift = np.asarray(shift, np.int64)
    n = b.op("Add", [acc, b.const(f"{base}.c", (const + (1 << (shift - 1))).reshape(shape))],
             base)
    y = b.op("Div", [n, b.const(f"{base}.d", (np.int64(1) << shift).reshape(shape))], base)
    y = b.op("Clip", [y, b.const(f"{base}.lo", np.int64(lo)), b.const(f"{base}.hi",
                                                                       np.int64(hi))], base)
    return b.cast(y, out_dtype, base, out)


def test_a_truncating_requantization_is_caught(monkeypatch):
    """The comparison above can fail: Div-based rounding differs on negative numerators."""
    g = tie_graph()
    x = frames()
    want = ReferenceExecutor(g).run_int(torch.from_numpy(x).int())[0].numpy()
    monkeypatch.setattr(graph_mod, "add_requant", truncating_requant)
    wrong = OnnxRuntimeExecutor(g, build_int_model(g), threads=1).run_int(x)[0]
    assert (wrong != want).any(axis=1).sum() > 10


def test_inputs_outside_int8_are_refused():
    g = tie_graph()
    ex = OnnxRuntimeExecutor(g, build_int_model(g), threads=1)
    with pytest.raises(ValueError, match="int8 range"):
        ex.run_int(np.full((1, 2, 4, 4), 128))
