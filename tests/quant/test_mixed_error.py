"""Post-training mixed precision never moves a layer's output further than uniform low bits.

Guards issue 17's anomaly (W4 + 5 % W8 below W4 without fine-tuning): activation scales came
from a random sample of the calibration values drawn from the global RNG, so the second
calibration (after the assignment) landed on other clips than the first, by up to 10 %, and
the mixed model's end-to-end error grew although every 8-bit filter was more exact.
"""

import pytest
import torch

from filmqnn.models import build_model
from filmqnn.quant import (
    QuantConfig,
    activation_quantizers,
    apply_assignment,
    assign_from_scores,
    calibrate,
    convert,
    filter_scores,
    layer_output_errors,
    quant_layers,
)


def _fp32(name="resnet18_small"):
    torch.manual_seed(0)
    model = build_model(name, num_classes=10, in_channels=1, input_size=28)
    for m in model.modules():  # non-trivial folded BatchNorms
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _ptq(fp32, batches, ratio, criterion="output-error", low_bits=4, rng_seed=0):
    """What `quantize --mode ptq` does: calibrate, assign, calibrate again."""
    torch.manual_seed(rng_seed)
    model = convert(fp32, QuantConfig(low_bits=low_bits))
    calibrate(model, batches)
    layers = quant_layers(model)
    scores = filter_scores(criterion, model, layers, batches[0], torch.zeros(32).long())
    fixed = {layers[0][0], layers[-1][0]}
    apply_assignment(layers, assign_from_scores(layers, scores, ratio, None, criterion, fixed))
    calibrate(model, batches)
    return model


def _batches():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(32, 1, 28, 28, generator=g) for _ in range(2)]


def test_calibration_does_not_depend_on_the_global_rng():
    fp32, batches = _fp32(), _batches()
    a = _ptq(fp32, batches, 0.0, rng_seed=0)
    b = _ptq(fp32, batches, 0.0, rng_seed=123)
    assert [q.scale for q in activation_quantizers(a)] == [
        q.scale for q in activation_quantizers(b)
    ]


@pytest.mark.parametrize("low_bits", [3, 4])
@pytest.mark.parametrize("criterion", ["output-error", "weight-error"])
def test_mixed_layer_output_error_never_above_uniform(low_bits, criterion):
    fp32, batches = _fp32(), _batches()
    uniform = layer_output_errors(_ptq(fp32, batches, 0.0, low_bits=low_bits), batches[0])
    mixed = layer_output_errors(
        _ptq(fp32, batches, 0.1, criterion, low_bits=low_bits), batches[0]
    )
    assert uniform.keys() == mixed.keys()
    ranked = list(uniform)[1:-1]  # first conv and last FC are 8-bit in both
    for name in ranked:
        assert mixed[name] <= uniform[name] * (1 + 1e-6), name
    assert sum(mixed[n] for n in ranked) < sum(uniform[n] for n in ranked)


def test_all_8bit_is_the_most_exact():
    fp32, batches = _fp32(), _batches()
    mixed = layer_output_errors(_ptq(fp32, batches, 0.1), batches[0])
    w8 = layer_output_errors(_ptq(fp32, batches, 1.0), batches[0])
    assert all(w8[n] <= mixed[n] * (1 + 1e-6) for n in list(w8)[1:-1])
