"""build_model: every name builds, gives [N, num_classes], traces with torch.fx; clear errors."""

import pytest
import torch
from torch import fx, nn

from filmqnn.models import MODEL_NAMES, ModelError, build_model, default_input_size

SMALL = ["resnet18_small", "resnet50_small", "mobilenet_v2_small", "tiny_cnn"]


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_small_models_forward(name, channels, size):
    model = build_model(name, num_classes=10, in_channels=channels, input_size=size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, channels, size, size)).shape == (2, 10)


@pytest.mark.parametrize("name", SMALL)
def test_small_models_trace_to_the_same_function(name):
    model = build_model(name, num_classes=10, in_channels=1, input_size=28).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(fx.symbolic_trace(model)(x), model(x))


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_imagenet_models_forward_and_trace(name):
    model = build_model(name).eval()
    assert default_input_size(name) == 224
    fx.symbolic_trace(model)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_imagenet_model_with_one_channel_and_small_class_count():
    model = build_model("mobilenet_v2", num_classes=7, in_channels=1, input_size=64).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 7)


def test_small_variants_keep_torchvision_structure():
    resnet = build_model("resnet18_small", num_classes=10, in_channels=1)
    assert isinstance(resnet.maxpool, nn.Identity)
    assert (resnet.conv1.kernel_size, resnet.conv1.stride) == ((3, 3), (1, 1))
    assert resnet.layer1[0].conv1.out_channels == 16 and resnet.fc.in_features == 128
    mobilenet = build_model("mobilenet_v2_small", num_classes=10, in_channels=1)
    assert mobilenet.features[0][0].stride == (1, 1)
    with torch.no_grad():
        assert mobilenet.features(torch.randn(1, 1, 28, 28)).shape[-2:] == (4, 4)


def test_only_supported_layer_types():
    allowed = (
        nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AdaptiveAvgPool2d,
        nn.Linear, nn.Dropout, nn.Identity,
    )  # fmt: skip
    for name in MODEL_NAMES:
        model = build_model(name, num_classes=10, input_size=default_input_size(name))
        leaves = [m for m in model.modules() if not list(m.children())]
        assert all(isinstance(m, allowed) for m in leaves), name


def test_errors_are_explained(tmp_path):
    with pytest.raises(ModelError, match="valid names: resnet18"):
        build_model("vgg16")
    with pytest.raises(ModelError, match="use resnet18_small"):
        build_model("resnet18", input_size=28)
    with pytest.raises(ModelError, match="weights file not found"):
        build_model("tiny_cnn", pretrained_path=str(tmp_path / "none.pt"))


def test_pretrained_path_roundtrip(tmp_path):
    source = build_model("tiny_cnn", num_classes=10, in_channels=1)
    path = tmp_path / "tiny.pt"
    torch.save(source.state_dict(), path)
    loaded = build_model("tiny_cnn", num_classes=10, in_channels=1, pretrained_path=str(path))
    assert torch.equal(loaded.fc.weight, source.fc.weight)
    with pytest.raises(ModelError, match="does not fit"):
        build_model("tiny_cnn", num_classes=5, in_channels=1, pretrained_path=str(path))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelError, match="cannot read weights file"):
        build_model("tiny_cnn", pretrained_path=str(tmp_path / "junk.pt"))
