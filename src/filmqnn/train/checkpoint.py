"""Writing checkpoints: atomic, tensors copied to the CPU.

A checkpoint written on a GPU loads on a CPU-only machine and the other way round. Reading them
(``load_checkpoint``, ``CheckpointError``, the quantized model of ``load_quantized``) is the
quantization stage's, ``filmqnn.quant.checkpoint``: the lowering reads the quantized checkpoint
without importing the training runs.
"""

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from filmqnn.train.device import to_cpu


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
