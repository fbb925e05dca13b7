"""Conversion of float CNNs: supported-layer check, quantizer placement, assigned precisions."""

import pytest
import torch
import torchvision
from torch import nn

from filmqnn.models import build_model
from filmqnn.quant import (
    ActQuant,
    QuantConfig,
    UnsupportedLayerError,
    apply_assignment,
    assign_from_scores,
    calibrate,
    convert,
    filter_scores,
    quant_layers,
)


class Odd(nn.Module):
    def __init__(self, layer: nn.Module):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.odd = layer

    def forward(self, x):
        return self.odd(self.conv(x))


@pytest.mark.parametrize("layer,name", [(nn.Sigmoid(), "Sigmoid"), (nn.GELU(), "GELU"),
                                        (nn.AvgPool2d(2), "AvgPool2d")])
def test_unsupported_layer_is_named(layer, name):
    with pytest.raises(UnsupportedLayerError, match=rf"{name} at 'odd'"):
        convert(Odd(layer))


def test_grouped_conv_and_untraceable_models_are_refused():
    with pytest.raises(UnsupportedLayerError, match="grouped convolution"):
        convert(nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.ReLU()))

    class Dynamic(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(UnsupportedLayerError, match="torch.fx"):
        convert(Dynamic())


def _quantizers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, ActQuant)}


def test_resnet_quantizers_follow_the_design_rules():
    model = convert(build_model("resnet18_small", num_classes=10, in_channels=1, input_size=28))
    aq = _quantizers(model)
    assert aq["aq_x"].fmt.bits == 8 and aq["aq_x"].fmt.signed  # network input
    relu = [q for n, q in aq.items() if "relu" in n]
    assert relu and all(q.fmt.bits == 5 and not q.fmt.signed for q in relu)
    downsample = [q for n, q in aq.items() if "downsample" in n]
    assert downsample and all(q.fmt.signed for q in downsample)  # skip operand, no ReLU
    code = model.code
    assert "aq_layer1_0_conv2" not in code  # closing conv fused into the residual add
    assert not any(n.startswith("aq_fc") for n in aq)  # logits stay int32


def test_mobilenet_projection_and_residual_sums_are_signed():
    model = convert(build_model("mobilenet_v2_small", num_classes=10, in_channels=1,
                                input_size=28))
    aq = _quantizers(model)
    adds = [q for n, q in aq.items() if n.startswith("aq_add")]
    assert adds and all(q.fmt.signed and q.fmt.bits == 5 for q in adds)
    relu6 = [q for n, q in aq.items() if "_2" in n and "features" in n and "conv" in n]
    assert all(q.fmt.bits == 5 for q in relu6)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_torchvision_models_convert_and_run(name):
    model = getattr(torchvision.models, name)(weights=None)
    q = convert(model)
    x = torch.randn(1, 3, 32, 32)
    calibrate(q, [x])
    assert q(x).shape == (1, 1000)
    layers = quant_layers(q)
    assert len(layers) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


def test_exactly_the_assigned_filters_are_8bit():
    model = convert(build_model("tiny_cnn", num_classes=10, in_channels=1, input_size=28))
    x = torch.randn(8, 1, 28, 28)
    calibrate(model, [x])
    layers = quant_layers(model)
    first, last = layers[0][0], layers[-1][0]
    scores = filter_scores("output-error", model, layers, x)
    a = assign_from_scores(layers, scores, 0.25, tm=8, fixed_high={first, last})
    apply_assignment(layers, a)
    for (name, layer), la in zip(layers, a.layers, strict=True):
        eight = set(torch.nonzero(layer.bits == 8).flatten().tolist())
        assert eight == set(la.high_filters)
        assert set(torch.nonzero(layer.bits == 4).flatten().tolist()) == (
            set(range(layer.num_filters)) - eight)
        if name in (first, last):
            assert len(eight) == layer.num_filters
        q, _ = layer.integer_weight()
        for f in range(layer.num_filters):
            assert int(q[f].abs().max()) <= (127 if f in eight else 7)


def test_first_last_rule_can_be_switched_off():
    model = convert(build_model("tiny_cnn", 10, 1, 28), QuantConfig(first_last_high=False))
    assert all(int((layer.bits == 8).sum()) == 0 for _, layer in quant_layers(model))
