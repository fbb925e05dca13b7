"""Lowering: dyadic multipliers, the requantization formula, host input quantization, the
accumulator overflow proof, refused layers and the ReLU6 clamp."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

from filmqnn.formats import INPUT_FORMAT
from filmqnn.lower.deploy import to_deploy
from filmqnn.lower.lowering import LoweringError, accumulator_bound, lower
from filmqnn.lower.requant import (
    MAX_SHIFT,
    OPERAND_MULT_BITS,
    REQUANT_MANTISSA_BITS,
    RequantError,
    dyadic,
    quantize_input,
    requantize,
)
from filmqnn.lower.validate import validate_graph
from filmqnn.quant import ActQuant, UnsupportedLayerError, calibrate, convert
from filmqnn.ref.executor import ReferenceExecutor

M_LIMIT = 1 << REQUANT_MANTISSA_BITS
OPERAND_LIMIT = 1 << OPERAND_MULT_BITS

# accumulator ratios whose shift stays in [1, MAX_SHIFT): below 2^15 and well above 2^-45
ratio = st.floats(min_value=2.0**-40, max_value=2.0**15 * (1 - 2**-20), allow_nan=False,
                  allow_infinity=False)
# an operand ratio (residual skip, second add input) relative to the accumulator's
factor = st.floats(min_value=2.0**-20, max_value=2.0**15, allow_nan=False)


@st.composite
def ratio_matrices(draw):
    """[k, n]: per channel the accumulator ratio, then k - 1 operand ratios sharing its shift."""
    k = draw(st.integers(1, 3))
    n = draw(st.integers(1, 6))
    first = np.array(draw(st.lists(ratio, min_size=n, max_size=n)))
    rows = [first] + [first * np.array(draw(st.lists(factor, min_size=n, max_size=n)))
                      for _ in range(k - 1)]
    return np.array(rows, dtype=np.float64)


@given(ratio_matrices())
@example(np.array([[1 - 2.0**-18]]))  # rounds up to 2^16: the multiplier is capped
@example(np.array([[2.0**15 - 1e-6, 2.0**-40], [1.0, 2.0**-25]]))
@example(np.array([[0.5, 0.25, 1.0, 3.0], [0.5, 1.0, 2.0**15, 2.0**-30]]))
@settings(max_examples=300, deadline=None)
def test_dyadic_properties(r):
    mult, shift = dyadic(r)
    assert mult.shape == r.shape and shift.shape == (r.shape[1],)
    assert mult.dtype == np.int64 and shift.dtype == np.int64
    assert (shift >= 1).all() and (shift <= MAX_SHIFT).all()
    # the accumulator multiplier is normalised to [2^15, 2^16): 16 significant bits
    assert (mult[0] >= M_LIMIT // 2).all() and (mult[0] < M_LIMIT).all()
    # operand multipliers share the shift and stay below 2^32
    assert (mult[1:] >= 0).all() and (mult[1:] < OPERAND_LIMIT).all()
    for j in range(r.shape[1]):
        ulp = 2.0 ** -int(shift[j])
        for i in range(r.shape[0]):
            err = abs(mult[i, j] * ulp - r[i, j])
            if i == 0 and mult[i, j] == M_LIMIT - 1 and r[i, j] / ulp > M_LIMIT - 1:
                assert err < ulp  # capped at 2^16 - 1 instead of rounding up to 2^16
            else:
                assert err <= ulp / 2  # round to nearest at the shared shift
        # relative bound of the accumulator ratio: 16 significant bits
        assert abs(mult[0, j] * ulp - r[0, j]) <= r[0, j] * 2.0**-REQUANT_MANTISSA_BITS * (
            1 + 2.0**-14)


def test_dyadic_exact_powers_of_two_and_refusals():
    mult, shift = dyadic(np.array([[1.0, 0.5, 2.0**-10]]))
    assert mult.tolist() == [[1 << 15, 1 << 15, 1 << 15]]
    assert shift.tolist() == [15, 16, 25]
    mult, shift = dyadic(np.array([[1.0], [3.0]]))  # the skip ratio shares S = 15
    assert mult.tolist() == [[1 << 15], [3 << 15]] and shift.tolist() == [15]
    with pytest.raises(RequantError, match="shift below 1"):
        dyadic(np.array([[2.0**15]]))
    with pytest.raises(RequantError, match="finite and positive"):
        dyadic(np.array([[-1.0]]))
    with pytest.raises(RequantError, match="finite and positive"):
        dyadic(np.array([[np.nan]]))
    with pytest.raises(RequantError, match="finite and positive"):
        dyadic(np.array([[0.0, 1.0]]))
    with pytest.raises(RequantError, match="residual operand"):
        dyadic(np.array([[1.0], [2.0**17]]))  # M2 = 2^32 does not fit


def test_dyadic_refuses_ratios_too_small_for_the_shift_range():
    with pytest.raises(RequantError):
        dyadic(np.array([[1e-30]]))


def big_int_requant(acc, m, s, lo, hi, skip=0, m2=0, offset=0):
    """The documented formula on Python integers (unbounded, floor shift)."""
    y = (acc * m + skip * m2 + offset + (1 << (s - 1))) >> s
    return min(max(y, lo), hi)


@st.composite
def requant_cases(draw):
    c = draw(st.integers(1, 4))
    n = draw(st.integers(1, 5))
    acc_bits = draw(st.integers(2, 32))
    acc = draw(st.lists(st.lists(st.integers(-(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1),
                                 min_size=c, max_size=c), min_size=n, max_size=n))
    mult = draw(st.lists(st.integers(0, M_LIMIT - 1), min_size=c, max_size=c))
    shift = draw(st.lists(st.integers(1, MAX_SHIFT), min_size=c, max_size=c))
    offset = [draw(st.integers(-(m // 2), m // 2)) for m in mult]
    lo = draw(st.integers(-(1 << 31), 1 << 31))
    hi = draw(st.integers(lo, (1 << 31) + 1))
    with_skip = draw(st.booleans())
    skip = m2 = None
    if with_skip:
        skip = draw(st.lists(st.lists(st.integers(-128, 255), min_size=c, max_size=c),
                             min_size=n, max_size=n))
        m2 = draw(st.lists(st.integers(0, OPERAND_LIMIT - 1), min_size=c, max_size=c))
    return acc, mult, shift, offset, lo, hi, skip, m2


@given(requant_cases())
@example(([[-3], [-1], [1], [3]], [1], [1], [0], -10, 10, None, None))  # halves round up
@example(([[(1 << 31) - 1]], [M_LIMIT - 1], [1], [0], -(1 << 62), 1 << 62, [[255]],
          [OPERAND_LIMIT - 1]))
@settings(max_examples=300, deadline=None)
def test_requantize_matches_big_int_formula(case):
    acc, mult, shift, offset, lo, hi, skip, m2 = case
    t = torch.tensor
    got = requantize(t(acc, dtype=torch.int32), t(mult), t(shift), lo, hi,
                     None if skip is None else t(skip, dtype=torch.int32),
                     None if m2 is None else t(m2), t(offset))
    assert got.dtype == torch.int64
    for i, row in enumerate(acc):
        for j, a in enumerate(row):
            sk = 0 if skip is None else skip[i][j]
            mm = 0 if m2 is None else m2[j]
            assert int(got[i, j]) == big_int_requant(a, mult[j], shift[j], lo, hi, sk, mm,
                                                     offset[j])


def test_requantize_rounds_half_up():
    acc = torch.tensor([-3, -2, -1, 0, 1, 2, 3])
    got = requantize(acc, torch.tensor(1), torch.tensor(1), -100, 100)
    assert got.tolist() == [-1, -1, 0, 0, 1, 1, 2]  # (x + 1) >> 1: -1.5 -> -1, 0.5 -> 1


def _input_quant(q) -> ActQuant:
    return q.get_submodule("aq_x")


@given(st.lists(st.floats(-12.0, 12.0, allow_nan=False, width=32), min_size=1, max_size=64),
       st.lists(st.integers(-140, 140), min_size=1, max_size=64))
@settings(max_examples=150, deadline=None)
def test_quantize_input_matches_the_fake_quant_input_quantizer(quantized, floats, halves):
    q = quantized("user_cnn")
    aq = _input_quant(q)
    assert aq.fmt == INPUT_FORMAT
    s = aq.scale_param.detach().abs()
    # random floats, exact half steps (ties) and their float32 neighbours
    ties = torch.tensor(halves, dtype=torch.float32) * s / 2
    vals = torch.cat([torch.tensor(floats, dtype=torch.float32), ties,
                      torch.nextafter(ties, torch.tensor(math.inf)),
                      torch.nextafter(ties, torch.tensor(-math.inf))])
    x = vals.reshape(1, 1, 1, -1)
    with torch.no_grad():
        ref = torch.round(aq(x) / s)  # fake-quant output q*s back to its integers
    got = quantize_input(x, float(s))
    assert got.dtype == torch.int32
    assert torch.equal(got, ref.to(torch.int32))


def test_lowered_input_scale_is_the_quantizer_float32(quantized, lowered):
    q, g = quantized("user_cnn"), lowered("user_cnn")
    assert g.tensors[g.input].scale == float(_input_quant(q).scale_param.detach().abs())
    assert g.tensors[g.input].fmt == INPUT_FORMAT


@pytest.mark.parametrize("name", ["user_cnn", "resnet18_small", "mobilenet_v2_small"])
def test_lowered_graph_is_consistent(name, lowered):
    g = lowered(name)
    validate_graph(g)
    assert g.outputs == [g.nodes[-1].output]
    assert not g.reordered and all(t.order is None for t in g.tensors.values())
    for n in g.nodes:
        if n.op not in ("conv", "fc"):
            continue
        t_in = g.tensors[n.inputs[0]]
        bound = accumulator_bound(n.params["weight"], n.params["bias"],
                                  max(-t_in.fmt.qmin, t_in.fmt.qmax))
        assert n.attrs["acc_bound"] == int(bound.max()) < 2**31
        if n.requantizes and "offset" in n.params:
            assert (np.abs(n.params["offset"]) <= n.params["mult"] / 2 + 1).all()


def test_user_cnn_lowers_to_the_expected_ops(lowered):
    g = lowered("user_cnn")
    ops = {n.name: n for n in g.nodes}
    assert [n.op for n in g.nodes] == ["conv", "conv", "add", "conv", "maxpool", "flatten",
                                       "fc", "fc"]
    assert ops["dw"].attrs["groups"] == 24
    assert ops["pw"].inputs == ["add", "add"] and "skip_mult" in ops["pw"].params
    assert g.tensors[ops["pw"].output].signed  # no ReLU after the fused residual add
    assert g.tensors[ops["add"].output].signed is False  # the add is followed by a ReLU
    assert ops["pool"].attrs == {"kernel": [3, 3], "stride": [2, 2], "padding": [1, 1]}
    assert g.tensors["flatten"].shape == (24 * 7 * 7,)
    assert not ops["fc2"].requantizes and g.tensors["fc2"].bits == 32


def test_overflow_refusal_names_the_first_layer(quantized):
    q = quantized("user_cnn")
    with pytest.raises(LoweringError, match=r"layer 'stem' can overflow its int12 accumulator"):
        lower(q, (1, 28, 28), acc_bits=12)


def test_overflow_refusal_names_a_later_layer(quantized, lowered):
    q, g = quantized("user_cnn"), lowered("user_cnn")
    bounds = [(n.name, n.attrs["acc_bound"]) for n in g.nodes if n.op in ("conv", "fc")]
    worst = max(range(len(bounds)), key=lambda i: bounds[i][1])
    before = max([b for _, b in bounds[:worst]], default=0)
    acc_bits = before.bit_length() + 1  # every layer before `worst` fits, `worst` does not
    assert bounds[worst][1] > (1 << (acc_bits - 1)) - 1 >= before
    with pytest.raises(LoweringError, match=rf"layer '{bounds[worst][0]}' can overflow its "
                                            rf"int{acc_bits} accumulator"):
        lower(q, (1, 28, 28), acc_bits=acc_bits)
    # exactly at the bound it lowers
    lower(q, (1, 28, 28), acc_bits=max(b for _, b in bounds).bit_length() + 1)


def test_overflow_refusal_on_a_registry_model(quantized):
    with pytest.raises(LoweringError, match=r"layer '\w+' can overflow its int16 accumulator"):
        lower(quantized("resnet18_small"), (1, 28, 28), acc_bits=16)


class _BigBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1), 1))


@pytest.mark.parametrize("bias_lsb, message", [
    (2**31 - 2**12, r"layer 'conv' can overflow its int32 accumulator"),  # bias fits, sum not
    (2**32, r"the bias of 'conv' does not fit int32"),
])
def test_a_real_int32_overflow_is_refused(bias_lsb, message):
    """A bias near the int32 limit at its scale s_in * s_w: refused at the default 32 bits."""
    q = _convert_calibrated(_BigBias())
    conv = q.get_submodule("conv")
    s_in = float(next(m for m in q.modules() if isinstance(m, ActQuant)).scale_param.abs())
    s_w = conv.integer_weight()[1].double()
    with torch.no_grad():
        conv.bias.copy_(bias_lsb * s_in * s_w)
    with pytest.raises(LoweringError, match=message):
        lower(q, (1, 8, 8))


def _convert_calibrated(model: nn.Module, shape=(1, 8, 8)) -> torch.fx.GraphModule:
    torch.manual_seed(0)
    q = convert(model)
    calibrate(q, [torch.randn(2, *shape)])
    return q


class _Dilated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, dilation=2)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.relu(self.conv(x)), 1))


class _Reflect(_Dilated):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect")
        self.fc = nn.Linear(4 * 8 * 8, 3)


class _CeilPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


class _LateReLU6(nn.Module):
    """A ReLU6 that follows a max pool, not the conv: lowering cannot fold its clamp."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.relu6 = nn.ReLU6()
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.relu6(self.pool(self.relu(self.conv(x)))), 1))


class _Reshape(nn.Module):
    """A reshape to [N, C, H*W] instead of a flatten."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(64, 3)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).reshape(x.size(0), 4, 64))


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x, y):
        return self.conv(x) + self.conv2(y)


@pytest.mark.parametrize("model,error,pattern", [
    (_Dilated, UnsupportedLayerError, r"conv 'conv': only dilation 1, zero padding"),
    (_Reflect, UnsupportedLayerError, r"conv 'conv': only dilation 1, zero padding"),
    (_CeilPool, UnsupportedLayerError, r"max pool 'pool': ceil_mode"),
    (_LateReLU6, LoweringError, r"ReLU6 'relu6' must directly follow a conv or linear"),
    (_Reshape, LoweringError, r"'reshape' reshapes to \(4, 64\); only flattening"),
], ids=["dilation", "reflect-padding", "ceil-mode-pool", "late-relu6", "reshape"])
def test_unsupported_layers_are_refused_by_name(model, error, pattern):
    q = _convert_calibrated(model())
    with pytest.raises(error, match=pattern):
        lower(q, (1, 8, 8))


def test_models_with_several_inputs_are_refused():
    torch.manual_seed(0)
    q = convert(_TwoInputs())
    x = torch.randn(2, 1, 8, 8)
    for m in q.modules():  # calibrate by hand: `calibrate` feeds one tensor
        if isinstance(m, ActQuant):
            m.start_calibration()
    q(x, x)
    for m in q.modules():
        if isinstance(m, ActQuant):
            m.finish_calibration()
    with pytest.raises(LoweringError, match="several inputs"):
        lower(q, (1, 8, 8))


def test_relu6_clamp(lowered):
    g = lowered("user_cnn")
    dw = next(n for n in g.nodes if n.name == "dw")
    s = g.tensors[dw.output].scale
    assert dw.attrs["lo"] == 0
    assert dw.attrs["hi"] == min(31, round(6 / s))
    assert dw.attrs["hi"] <= round(6 / s)


def test_relu6_clamp_binds_when_the_scale_is_coarse(quantized):
    q = copy.deepcopy(quantized("user_cnn"))
    aq = q.get_submodule("aq_relu6")
    with torch.no_grad():
        aq.scale_param.fill_(0.4)  # 6 / 0.4 = 15 < 31: the ReLU6 bound is the clamp
    g = lower(q, (1, 28, 28))
    dw = next(n for n in g.nodes if n.name == "dw")
    assert (dw.attrs["lo"], dw.attrs["hi"]) == (0, 15)
    x = torch.randn(4, 1, 28, 28) * 3
    dep = to_deploy(g)
    with torch.no_grad():
        env_max = {}

        def hook(mod, args, out):
            env_max[mod.node.name] = int(out.max())

        for op in dep.ops:
            op.register_forward_hook(hook)
        d = dep.int_logits(x)
    assert env_max["dw"] <= 15
    assert torch.equal(d, ReferenceExecutor(g).int_logits(x))
