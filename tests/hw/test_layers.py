import json

import pytest
import torch
from torch import nn

from filmqnn.hw.layers import (
    SUPPORTED_MODELS,
    TABLE_SIZE,
    layers_from_dicts,
    model_layers,
    total_macs,
)
from filmqnn.hw.trace import build_model, layers_from_module, trace_model, write_table


def test_resnet18_shapes():
    L = model_layers("resnet18")
    c1 = L[0]
    assert (c1.kind, c1.N, c1.M, c1.H, c1.R, c1.K, c1.stride, c1.pad) == (
        "conv", 3, 64, 224, 112, 7, 2, 3)
    assert c1.first and c1.all8 and c1.signed_in
    assert L[1].kind == "maxpool" and (L[1].R, L[1].K) == (56, 3)
    assert L[-2].kind == "gap" and L[-1].kind == "fc" and L[-1].all8
    assert (L[-1].N, L[-1].M) == (512, 1000)
    assert sum(ly.residual for ly in L) == 8
    assert total_macs(L) == 1_814_073_344


def test_resnet50_and_mobilenet_v2():
    r50 = model_layers("resnet50")
    assert sum(ly.kind == "conv" for ly in r50) == 53
    assert sum(ly.residual for ly in r50) == 16
    assert abs(total_macs(r50) / 1e9 - 4.089) < 0.01
    mb = model_layers("mobilenet_v2")
    dw = [ly for ly in mb if ly.kind == "dwconv"]
    assert len(dw) == 17 and all(ly.N == ly.M == ly.groups for ly in dw)
    assert sum(ly.residual for ly in mb) == 10
    # projection outputs are not ReLU'd: the next expansion conv reads signed activations
    assert any(ly.signed_in for ly in mb if not ly.first)
    assert abs(total_macs(mb) / 1e6 - 300.8) < 1


def test_input_size():
    L = model_layers("resnet18", input_size=112)
    assert L[0].R == 56 and L[-2].H == 4


def test_user_module_and_unsupported():
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(8 * 14 * 14, 10))
    L = layers_from_module(net, (1, 28, 28))
    assert [ly.kind for ly in L] == ["conv", "maxpool", "fc"]
    assert L[0].all8 and L[2].all8 and not L[2].signed_in
    with pytest.raises(ValueError, match="not supported"):
        layers_from_module(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sigmoid()), (1, 8, 8))
    with pytest.raises(ValueError, match="unknown model"):
        model_layers("vgg99")
    assert torch.zeros(1).device.type == "cpu"


def test_untraceable_module_is_refused_with_the_reason():
    class Dynamic(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else self.conv(-x)

    with pytest.raises(ValueError, match="cannot be traced by torch.fx"):
        layers_from_module(Dynamic(), (3, 8, 8))


@pytest.mark.parametrize("name", SUPPORTED_MODELS)
@pytest.mark.parametrize("first_last_8bit", [True, False])
def test_shipped_table_equals_a_fresh_trace(name, first_last_8bit):
    """The table model_layers reads without torch is what torch.fx traces now; if torchvision
    changes a model, this fails: rerun `python -m filmqnn.hw.trace`."""
    fresh = layers_from_module(build_model(name), (3, TABLE_SIZE, TABLE_SIZE), first_last_8bit)
    assert model_layers(name, TABLE_SIZE, first_last_8bit) == fresh


def test_table_round_trip_and_atomic_write(tmp_path):
    out = tmp_path / "t.json"
    out.write_text("keep me")
    write_table(out)
    rows = json.loads(out.read_text())["models"]["resnet18"]
    assert layers_from_dicts(rows) == trace_model("resnet18", TABLE_SIZE)
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no temp file left
