"""What a training run needs: model, data, optimisation settings; saved in every checkpoint.

`TrainSpec` is what decides the result (checked on resume); `RunOptions` is where and how the
run executes (device, DataLoader workers, mixed precision) and may change between resumes.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from filmqnn.data import DatasetInfo, load_dataset
from filmqnn.models import build_model
from filmqnn.train.recipes import recipe_options

#: data sets whose train split augments per item in the loader (random-resized-crop + flip);
#: the others are augmented per batch in the training loop (shift-crop + flip).
LOADER_AUGMENTED = ("imagenet",)


@dataclass(frozen=True)
class TrainSpec:
    """Model, data set and optimiser settings of one run (FP32 training or QAT)."""

    model: str = "resnet18_small"
    data: str = "fashion-mnist"
    data_root: str | None = None
    epochs: int = 2
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 100
    limit_train: int | None = None
    limit_test: int | None = None
    augment: bool = True
    seed: int = 0
    nesterov: bool = True
    lr_batch: int | None = None  # lr is per this many images of global batch (scaled) when set
    warmup_epochs: float = 0.0  # when > 0, replaces warmup_steps
    label_smoothing: float = 0.0
    pretrained: str | None = None  # torchvision state-dict file to start from (fresh runs)
    recipe: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainSpec":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


@dataclass(frozen=True)
class RunOptions:
    """Where a run executes: device (auto, cpu, cuda), DataLoader workers, FP32-phase autocast."""

    device: str = "auto"
    workers: int | None = None  # None: 0 for in-memory data sets, several for image folders
    amp: str = "none"


def finetune_spec(**options: Any) -> TrainSpec:
    """Settings for QAT fine-tuning from a trained model: small lr, low decay, no warm-up."""
    return TrainSpec(**{"lr": 0.001, "weight_decay": 5e-5, "warmup_steps": 0, **options})


def spec_from_recipe(name: str, phase: str = "fp32", **options: Any) -> TrainSpec:
    """A TrainSpec from recipe `name` (see `filmqnn.train.recipes`); options not None override."""
    return TrainSpec(**recipe_options(name, phase, **options))


def loader_augments(spec: TrainSpec) -> bool:
    """Whether the train split augments per item in its loader (image folders)."""
    return spec.augment and spec.data in LOADER_AUGMENTED


def batch_augments(spec: TrainSpec) -> bool:
    """Whether the training loop augments each batch (shift-crop + flip, small images)."""
    return spec.augment and spec.data not in LOADER_AUGMENTED


def load_split(spec: TrainSpec, split: str) -> DatasetInfo:
    """The train or test split of the spec's data set, limited as the spec says."""
    limit = spec.limit_train if split == "train" else spec.limit_test
    augment = split == "train" and loader_augments(spec)
    return load_dataset(spec.data, split, root=spec.data_root, limit=limit, augment=augment)


def build_for(spec: TrainSpec, info: DatasetInfo, pretrained: str | None = None) -> nn.Module:
    """The spec's model shaped for the data set's channels, classes and image size."""
    return build_model(
        spec.model,
        num_classes=info.num_classes,
        in_channels=info.in_channels,
        input_size=info.image_size,
        pretrained_path=pretrained,
    )


def loss_fn(spec: TrainSpec) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy with the spec's label smoothing."""

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y, label_smoothing=spec.label_smoothing)

    return loss


def make_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    """SGD with momentum; no weight decay on biases and quantizer scales (1-element params)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1]
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": spec.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=spec.lr,
        momentum=spec.momentum,
        nesterov=spec.nesterov,
    )
