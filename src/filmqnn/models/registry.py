"""``build_model``: from a model name to an untrained (or locally loaded) nn.Module."""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

from filmqnn.models.errors import ModelError
from filmqnn.models.names import IMAGENET_MODELS, MODEL_NAMES, min_input_size
from filmqnn.models.small_mobilenet import mobilenet_stem, small_mobilenet_v2
from filmqnn.models.small_resnet import small_resnet18, small_resnet50
from filmqnn.models.tiny_cnn import TinyCNN


def _imagenet_resnet(factory: Callable[..., tvm.ResNet]) -> Callable[[int, int], nn.Module]:
    def build(num_classes: int, in_channels: int) -> nn.Module:
        model = factory(weights=None, num_classes=num_classes)
        if in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        return model

    return build


def _imagenet_mobilenet_v2(num_classes: int, in_channels: int) -> nn.Module:
    model = tvm.mobilenet_v2(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.features[0] = mobilenet_stem(model, in_channels, stride=2)
    return model


_BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "resnet18": _imagenet_resnet(tvm.resnet18),
    "resnet50": _imagenet_resnet(tvm.resnet50),
    "mobilenet_v2": _imagenet_mobilenet_v2,
    "resnet18_small": small_resnet18,
    "resnet50_small": small_resnet50,
    "mobilenet_v2_small": small_mobilenet_v2,
    "tiny_cnn": TinyCNN,
}


def build_model(
    name: str,
    num_classes: int = 1000,
    in_channels: int = 3,
    input_size: int = 224,
    pretrained_path: str | None = None,
) -> nn.Module:
    """Build model ``name`` for ``in_channels`` x ``input_size`` x ``input_size`` inputs.

    Nothing is downloaded: weights are random unless ``pretrained_path`` names a local state dict.
    """
    if name not in _BUILDERS:
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(MODEL_NAMES)}")
    if num_classes < 1 or in_channels < 1:
        raise ModelError(
            f"num_classes and in_channels must be >= 1, got {num_classes}, {in_channels}"
        )
    if input_size < min_input_size(name):
        hint = f"; use {name}_small for small images" if name in IMAGENET_MODELS else ""
        raise ModelError(
            f"{name} downsamples by {min_input_size(name)}, so input_size {input_size} is too "
            f"small{hint}"
        )
    model = _BUILDERS[name](num_classes, in_channels)
    if pretrained_path is not None:
        load_state_dict_file(model, pretrained_path)
    return model


def load_state_dict_file(model: nn.Module, path: str) -> None:
    """Load a local ``state_dict`` file (tensors only: ``weights_only=True``) into ``model``."""
    file = Path(path)
    if not file.is_file():
        raise ModelError(f"weights file not found: {file}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt file can fail in pickle, struct, zipfile or torch itself
        raise ModelError(f"cannot read weights file {file}: {err}") from err
    if not isinstance(state, dict):
        raise ModelError(f"{file} holds a {type(state).__name__}, expected a state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"{file} does not fit {type(model).__name__}: {err}") from err
