"""The integer graph follows the fake-quant model layer by layer (teacher forced): a lowering
bug such as a wrong offset sign or a shift off by one moves whole layers, not single ties."""

import pytest
import torch

from filmqnn.lower.fidelity import layer_agreement


@pytest.mark.parametrize("name", ["resnet18_small", "mobilenet_v2_small", "user_cnn"])
def test_every_layer_within_one_lsb(name, quantized, lowered):
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    rows = layer_agreement(quantized(name), lowered(name), x)
    assert rows
    for layer, differ, beyond in rows:
        assert beyond == 0.0, (layer, beyond)
        assert differ <= 0.01, (layer, differ)


def test_a_lowering_bug_is_caught(quantized, lowered):
    """The same check on a graph whose first requantization is off by one shift bit."""
    import copy

    g = copy.deepcopy(lowered("user_cnn"))
    node = next(n for n in g.nodes if "shift" in n.params and "offset" in n.params)
    node.params["shift"] = node.params["shift"] + 1
    rows = layer_agreement(quantized("user_cnn"), g, torch.randn(4, 1, 28, 28))
    assert max(differ for _, differ, _ in rows) > 0.1
