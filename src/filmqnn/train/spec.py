"""What a training run needs: model, data, optimisation settings; saved in every checkpoint."""

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from filmqnn.data import DatasetInfo, load_dataset
from filmqnn.models import build_model


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainSpec":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def finetune_spec(**options: Any) -> TrainSpec:
    """Settings for QAT fine-tuning from a trained model: small lr, low decay, no warm-up."""
    return TrainSpec(**{"lr": 0.001, "weight_decay": 5e-5, "warmup_steps": 0, **options})


def load_split(spec: TrainSpec, split: str) -> DatasetInfo:
    """The train or test split of the spec's data set, limited as the spec says."""
    limit = spec.limit_train if split == "train" else spec.limit_test
    return load_dataset(spec.data, split, root=spec.data_root, limit=limit)


def build_for(spec: TrainSpec, info: DatasetInfo) -> nn.Module:
    """The spec's model shaped for the data set's channels, classes and image size."""
    return build_model(
        spec.model,
        num_classes=info.num_classes,
        in_channels=info.in_channels,
        input_size=info.image_size,
    )


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
        nesterov=True,
    )
