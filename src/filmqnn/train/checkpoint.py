"""Checkpoints: atomic writes, tensor-only loading (weights_only), a clear error when unreadable.

Tensors are saved on the CPU and loaded with ``map_location="cpu"``: a checkpoint written on a
GPU loads on a CPU-only machine and the other way round.
"""

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from filmqnn.train.device import to_cpu


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or of the wrong kind."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (tensors copied to the CPU) to a temp file beside `path`, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(to_cpu(state), tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
