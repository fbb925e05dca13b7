"""Reading checkpoints: the FP32 one a quantization run starts from and the quantized one it
writes (``kind`` 'fp32' or 'quant'), rebuilt as the fake-quantized model.

The quantized checkpoint is the artifact the lowering reads, so reading it lives here and not
with the training runs that write it (``filmqnn.train.checkpoint.save_checkpoint``).
Loading is tensor-only (``weights_only``) with ``map_location="cpu"``: a checkpoint written on
a GPU loads on a CPU-only machine and the other way round.
"""

from pathlib import Path
from typing import Any

import torch
from torch import fx

from filmqnn.models import build_model
from filmqnn.quant.assignment import Assignment, apply_assignment
from filmqnn.quant.config import QuantConfig, QuantSpec
from filmqnn.quant.conversion import convert, quant_layers


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or of the wrong kind."""


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; `kind` ('fp32' or 'quant') is checked."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} not found; create it with `filmqnn train` "
            "(FP32) or `filmqnn quantize` (quantized)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, pickle and torch errors all mean the same to the user
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or "kind" not in state:
        raise CheckpointError(f"{path} is not a filmqnn checkpoint")
    if kind is not None and state["kind"] != kind:
        raise CheckpointError(f"{path} is a {state['kind']!r} checkpoint, expected {kind!r}")
    return state


def quantized_model_from_fp32(fp32_state: dict[str, Any], cfg: QuantConfig) -> fx.GraphModule:
    """Rebuild the FP32 model of a checkpoint and convert it to its fake-quantized form."""
    data = fp32_state["data"]
    model = build_model(
        fp32_state["spec"]["model"],
        num_classes=data["num_classes"],
        in_channels=data["in_channels"],
        input_size=data["image_size"],
    )
    model.load_state_dict(fp32_state["model_state"])
    return convert(model, cfg)


def load_quantized(path: str | Path) -> tuple[fx.GraphModule, dict[str, Any]]:
    """The fake-quantized model saved by `quantize` and its checkpoint dict."""
    state = load_checkpoint(path, kind="quant")
    qspec = QuantSpec.from_dict(state["quant_spec"])
    model = quantized_model_from_fp32(state["fp32"], qspec.config)
    apply_assignment(quant_layers(model), Assignment.from_dict(state["assignment"]))
    model.load_state_dict(state["model_state"])
    return model, state
