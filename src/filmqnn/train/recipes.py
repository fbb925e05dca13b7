"""Named training recipes: optimiser, schedule and regularisation presets for `--recipe`.

``default`` is what filmqnn always did (small data sets, a few epochs). ``film-qnn`` is the
paper's §4.1 setting (NVIDIA's ImageNet recipe): SGD with momentum 0.875 (no Nesterov),
weight decay 1/32768, lr 0.256 per 256 images of global batch (0.512 at batch 512, 1.024 at
1024), 8 linear warm-up epochs then cosine decay, label smoothing 0.1.
"""

from dataclasses import asdict, dataclass
from typing import Any

RECIPE_NAMES = ("default", "film-qnn")
PHASES = ("fp32", "qat")


@dataclass(frozen=True)
class Recipe:
    """Optimiser and schedule settings; `lr` is per `lr_batch` images when `lr_batch` is set."""

    lr: float
    lr_batch: int | None
    momentum: float
    nesterov: bool
    weight_decay: float
    warmup_steps: int
    warmup_epochs: float
    label_smoothing: float

    def options(self) -> dict[str, Any]:
        """The TrainSpec fields this recipe sets."""
        return asdict(self)


_RECIPES: dict[tuple[str, str], Recipe] = {
    ("default", "fp32"): Recipe(0.05, None, 0.9, True, 5e-4, 100, 0.0, 0.0),
    ("default", "qat"): Recipe(0.001, None, 0.9, True, 5e-5, 0, 0.0, 0.0),
}
_FILM_QNN = Recipe(0.256, 256, 0.875, False, 1 / 32768, 0, 8.0, 0.1)
_RECIPES[("film-qnn", "fp32")] = _RECIPES[("film-qnn", "qat")] = _FILM_QNN


def recipe(name: str, phase: str = "fp32") -> Recipe:
    """The preset `name` for the FP32 (`train`) or QAT (`quantize`) phase."""
    if name not in RECIPE_NAMES:
        raise ValueError(f"unknown recipe {name!r}; use one of {', '.join(RECIPE_NAMES)}")
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; use one of {', '.join(PHASES)}")
    return _RECIPES[(name, phase)]


def recipe_options(name: str, phase: str = "fp32", **overrides: Any) -> dict[str, Any]:
    """TrainSpec fields of recipe `name`, with every override that is not None applied."""
    opts = recipe(name, phase).options()
    opts.update({k: v for k, v in overrides.items() if v is not None})
    return {"recipe": name, **opts}


def effective_lr(lr: float, lr_batch: int | None, batch_size: int, world: int) -> float:
    """Peak learning rate: `lr` itself, or scaled linearly by the global batch when per-batch."""
    if lr_batch is None:
        return lr
    return lr * batch_size * world / lr_batch


def warmup_steps(warmup_steps: int, warmup_epochs: float, steps_per_epoch: int) -> int:
    """Linear warm-up length in steps: `warmup_epochs` epochs when set, else `warmup_steps`."""
    if warmup_epochs > 0:
        return round(warmup_epochs * steps_per_epoch)
    return warmup_steps
