"""Activation quantizer: 5-bit grid, signedness, learned clipping gradients, calibration."""

import pytest
import torch

from filmqnn.formats import activation_format
from filmqnn.quant.act_quant import ActQuant, mse_optimal_scale


def _calibrated(fmt, mode, x):
    q = ActQuant(fmt, mode)
    q.start_calibration()
    q(x)
    q.finish_calibration()
    return q


@pytest.mark.parametrize("mode", ["lsq", "pact", "fixed"])
@pytest.mark.parametrize("signed", [False, True])
def test_outputs_lie_on_the_5bit_grid(mode, signed):
    x = torch.randn(4, 3, 8, 8) * 2
    x = x if signed else x.relu()
    fmt = activation_format(5, signed)
    q = _calibrated(fmt, mode, x)
    y = q(x)
    levels = y / q.scale
    assert torch.allclose(levels, levels.round(), atol=1e-4)
    assert levels.round().min() >= fmt.qmin and levels.round().max() <= fmt.qmax
    assert torch.equal(q.quantize_int(y), levels.round().to(torch.int32))


def test_lsq_and_pact_learn_their_clip_and_fixed_does_not():
    x = torch.randn(2, 4, 6, 6).relu() * 3
    for mode in ("lsq", "pact"):
        q = _calibrated(activation_format(5), mode, x)
        q(x * 10).sum().backward()  # many values clip: a larger clip raises the sum
        assert q.scale_param.grad > 0, mode
    fixed = _calibrated(activation_format(5), "fixed", x)
    assert not fixed.scale_param.requires_grad
    assert not fixed(x * 10).requires_grad


def test_ste_passes_gradient_only_inside_the_range():
    q = _calibrated(activation_format(5), "lsq", torch.linspace(0, 1, 100))
    x = torch.tensor([0.5, 100.0, -3.0], requires_grad=True)
    q(x).sum().backward()
    assert x.grad.tolist() == [1.0, 0.0, 0.0]


def test_uncalibrated_quantizer_says_how_to_fix_it():
    with pytest.raises(RuntimeError, match="calibrate"):
        ActQuant(activation_format(5))(torch.ones(2))


def test_mse_scale_clips_outliers():
    sample = torch.cat([torch.rand(10_000), torch.tensor([50.0])])
    s = mse_optimal_scale(sample, activation_format(5))
    assert s * 31 < 50.0


def test_mse_scale_weights_count_values():
    values = torch.tensor([0.1, 0.5, 2.0, 7.0])
    counts = torch.tensor([50.0, 20.0, 5.0, 1.0])
    fmt = activation_format(5)
    repeated = torch.repeat_interleave(values, counts.long())
    assert mse_optimal_scale(values, fmt, counts) == pytest.approx(
        mse_optimal_scale(repeated, fmt)
    )


def test_calibration_uses_every_value_and_is_deterministic():
    """A histogram of all values, no random sample: the same data give the same scale whatever
    the global RNG, and a single outlier among millions of values still sets the top."""
    x = torch.rand(8, 16, 64, 64)
    x[3, 5, 7, 9] = 40.0
    scales = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        q = _calibrated(activation_format(5), "lsq", x)
        scales.append(q.scale)
    assert scales[0] == scales[1]
    from filmqnn.quant.act_quant import value_histogram

    values, counts = value_histogram(x)
    assert counts.sum() == x.numel() and values.max() == 40.0
    spike = torch.full((1000,), -0.8125)
    v, c = value_histogram(spike)  # one repeated value (an image background) stays exact
    assert v.tolist() == [-0.8125] and c.tolist() == [1000.0]


def test_ties_round_as_the_integer_requantization():
    """An exact tie x = (k + 1/2) s quantizes half up, as ``(v + 2^(S-1)) >> S`` does on the
    accelerator; the network input's quantizer rounds half to even, as the host does."""
    from filmqnn.formats import INPUT_FORMAT
    from filmqnn.lower.requant import requantize

    q = ActQuant(activation_format(5, signed=True), "fixed")
    q.scale_param.data.fill_(1.0)
    q.initialized.fill_(True)
    ties = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    with torch.no_grad():
        got = q(ties)
    assert got.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    assert q.quantize_int(ties).tolist() == [-2, -1, 0, 1, 2, 3]
    acc = (2 * ties).long()  # v = acc / 2: requantize with mult 1, shift 1
    assert requantize(acc, torch.tensor(1), torch.tensor(1), -16, 15).tolist() == got.tolist()
    inp = ActQuant(INPUT_FORMAT, "fixed", half_even=True)
    inp.scale_param.data.fill_(1.0)
    inp.initialized.fill_(True)
    with torch.no_grad():
        assert inp(ties).tolist() == [-2.0, -2.0, -0.0, 0.0, 2.0, 2.0]
