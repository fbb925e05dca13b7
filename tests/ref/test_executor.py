"""The integer reference executor on hand-built graphs: the float32 / float64 choice keeps every
accumulator exact, outputs come back in the original class order, and the fast path is only
taken when torch computes float32 at full IEEE precision."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import filmqnn.ref.executor as executor_mod
from filmqnn.lower.graph import IntGraph, Node, TensorInfo
from filmqnn.lower.requant import requantize
from filmqnn.lower.validate import validate_graph
from filmqnn.ref.executor import (
    FLOAT32_EXACT,
    ReferenceExecutor,
    _scaled_requant,
    requantize_scaled,
)


def fc_graph(weight: np.ndarray, bias: np.ndarray, order: np.ndarray | None = None) -> IntGraph:
    """input (F,) int8 -> fc writing its int32 accumulator (a network output)."""
    m, f = weight.shape
    tensors = {
        "x": TensorInfo("x", (f,), 8, True, 0.05),
        "fc": TensorInfo("fc", (m,), 32, True, [0.01] * m, order),
    }
    params = {"weight": weight.astype(np.int8), "bits": np.full(m, 8, np.uint8),
              "bias": bias.astype(np.int32)}
    node = Node("fc", "fc", ["x"], "fc", {"acc_bound": 0}, params)
    return IntGraph("x", tensors, [node], ["fc"])


def exact(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x.astype(np.int64) @ weight.astype(np.int64).T + bias.astype(np.int64)


def test_large_accumulators_run_in_float64_and_stay_exact():
    f = 1041  # 127 * 127 * 1041 = 16_790_529: odd and above 2^24, float32 would round it
    w = np.full((2, f), 127, np.int8)
    w[1, 0] = 126
    b = np.array([0, -7], np.int32)
    g = fc_graph(w, b)
    validate_graph(g)
    ex = ReferenceExecutor(g)
    assert ex.ops[0].dtype == torch.float64
    x = np.full((3, f), 127, np.int64)
    x[1] = -128
    x[2, ::2] = -1
    got = ex.run_int(torch.from_numpy(x).to(torch.int32))[0]
    want = exact(w, b, x)
    assert abs(int(want[0, 0])) > FLOAT32_EXACT and int(want[0, 0]) % 2 == 1
    assert got.dtype == torch.int64
    assert np.array_equal(got.numpy(), want)
    # the same accumulator through float32 is not exact: the dtype choice matters
    f32 = torch.from_numpy(x).float() @ torch.from_numpy(w.astype(np.float32)).T
    assert not np.array_equal(f32.to(torch.int64).numpy(), exact(w, np.zeros(2), x))


def test_small_accumulators_may_use_float32_exactly():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, size=(5, 64)).astype(np.int8)
    b = rng.integers(-1000, 1000, size=5).astype(np.int32)
    ex = ReferenceExecutor(fc_graph(w, b))
    assert 64 * 127 * 128 < FLOAT32_EXACT and ex.ops[0].dtype == torch.float32
    x = rng.integers(-128, 128, size=(7, 64))
    got = ex.run_int(torch.from_numpy(x))[0]
    assert np.array_equal(got.numpy(), exact(w, b, x))


def test_outputs_come_back_in_the_original_order():
    rng = np.random.default_rng(1)
    w = rng.integers(-7, 8, size=(6, 10)).astype(np.int8)
    b = rng.integers(-50, 50, size=6).astype(np.int32)
    order = np.array([4, 0, 5, 2, 1, 3])  # physical position j holds class order[j]
    g = fc_graph(w[order], b[order], order)
    validate_graph(g)
    x = rng.integers(-128, 128, size=(4, 10))
    got = ReferenceExecutor(g).run_int(torch.from_numpy(x))[0]
    assert np.array_equal(got.numpy(), exact(w, b, x))


@pytest.mark.parametrize("precision", ["high", "medium"])
def test_reduced_float32_precision_disables_the_fast_path(precision):
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision(precision)
        assert not executor_mod._ieee_fp32()
    finally:
        torch.set_float32_matmul_precision(old)


def test_fast_flag_is_read_per_run(monkeypatch):
    w = np.ones((2, 8), np.int8)
    ex = ReferenceExecutor(fc_graph(w, np.zeros(2, np.int32)))
    seen = []
    real = executor_mod.F.linear

    def spy(x, weight, *args):
        seen.append((x.dtype, weight.dtype))
        return real(x, weight, *args)

    monkeypatch.setattr(executor_mod.F, "linear", spy)
    monkeypatch.setattr(executor_mod, "_ieee_fp32", lambda: False)
    ex.run_int(torch.ones(1, 8, dtype=torch.int32))
    monkeypatch.setattr(executor_mod, "_ieee_fp32", lambda: True)
    ex.run_int(torch.ones(1, 8, dtype=torch.int32))
    assert seen == [(torch.float64, torch.float64), (torch.float32, torch.float32)]


@settings(max_examples=200, deadline=None)
@given(
    acc=st.lists(st.integers(-(2**31) + 1, 2**31 - 1), min_size=1, max_size=8),
    mult=st.integers(0, 2**16 - 1),
    shift=st.integers(1, 52),
    bias=st.integers(-(2**31) + 1, 2**31 - 1),
    offset=st.integers(-(2**15), 2**15),
    skip=st.integers(-128, 127),
    skip_mult=st.integers(0, 2**32 - 1),
    lo=st.integers(-200, 0),
)
def test_scaled_float64_requantization_equals_int64(acc, mult, shift, bias, offset, skip,
                                                      skip_mult, lo):
    """The executor's float64 requantization is the int64 definition, bit for bit."""
    t = {
        "mult": torch.tensor([mult]),
        "shift": torch.tensor([shift]),
        "offset": torch.tensor([offset + bias * mult]),
        "skip_mult": torch.tensor([skip_mult]),
    }
    a = torch.tensor(acc, dtype=torch.float64)
    s = torch.full_like(a, skip, dtype=torch.float32)
    want = requantize(a, t["mult"], t["shift"], lo, 2**40, s, t["skip_mult"], t["offset"])
    got = requantize_scaled(a, _scaled_requant(t), lo, 2**40, s)
    assert torch.equal(got.to(torch.int64), want)
