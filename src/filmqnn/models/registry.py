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


def _unwrap_state(state: object, file: Path) -> dict[str, torch.Tensor]:
    """The plain state dict inside a loaded file: torchvision's files are one already; training
    checkpoints often nest it under 'state_dict' / 'model' / 'model_state' or prefix 'module.'."""
    if isinstance(state, dict):
        for key in ("state_dict", "model_state", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ModelError(
            f"{file} holds a {type(state).__name__}, expected a state dict (name -> tensor), "
            "e.g. a torchvision .pth file saved with torch.save(model.state_dict(), path)"
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state  # type: ignore[return-value]


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise ModelError naming missing and unexpected keys and mismatched shapes, if any."""
    own = model.state_dict()
    # BatchNorm fills a missing num_batches_tracked itself (torchvision's older files lack it)
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state
        and (not isinstance(state[k], torch.Tensor) or state[k].shape != own[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return

    def few(items: list[str]) -> str:
        return ", ".join(items[:4]) + (f" (+{len(items) - 4} more)" if len(items) > 4 else "")

    parts = [
        f"{label}: {few(items)}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        )
        if items
    ]
    raise ModelError(
        f"{source} does not fit {type(model).__name__} ({'; '.join(parts)}); use the weights "
        "of the same architecture, number of classes and input channels (torchvision's "
        "ImageNet files fit resnet18/resnet50/mobilenet_v2 with 1000 classes and 3 channels)"
    )


def load_state_dict_file(model: nn.Module, path: str) -> None:
    """Load a local ``state_dict`` file (tensors only: ``weights_only=True``) into ``model``.

    Nothing is downloaded. The file is checked against the model first; a missing, corrupt
    or mismatched file raises ModelError naming the file and the problem.
    """
    file = Path(path)
    if not file.is_file():
        raise ModelError(
            f"weights file not found: {file}; download it yourself (e.g. torchvision's "
            "resnet18-f37072fd.pth) and pass its local path"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt file can fail in pickle, struct, zipfile or torch itself
        raise ModelError(
            f"cannot read weights file {file} ({type(err).__name__}: {err}); it is corrupt, "
            "truncated or not a torch file: download it again and compare its SHA-256"
        ) from err
    state = _unwrap_state(state, file)
    check_state_dict(model, state, str(file))
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"{file} does not fit {type(model).__name__}: {err}") from err
