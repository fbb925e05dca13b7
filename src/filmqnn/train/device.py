"""The one place that picks the compute device and moves models and batches onto it.

Everything else in filmqnn creates tensors on the device of the tensors it already has
(``device=x.device``), so quantizers, assignment criteria and training loops run unchanged on
CPU or CUDA. Checkpoints are written with CPU tensors (``to_cpu``) and read with
``map_location="cpu"``, so a run may resume on another device.
"""

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

import torch
from torch import nn

DEVICE_CHOICES = ("auto", "cpu", "cuda")
AMP_CHOICES = ("none", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

T = TypeVar("T")


class DeviceError(ValueError):
    """A requested device or mixed-precision mode is not available here."""


def resolve_device(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """``auto`` -> cuda when available else cpu; under torchrun cuda means cuda:LOCAL_RANK."""
    if name not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"--device cuda but no CUDA device is usable here (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda}); use --device cpu (or auto), or run on a "
            "machine with an NVIDIA GPU and a CUDA build of torch"
        )
    index = (local_rank or 0) % torch.cuda.device_count()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def to_device(obj: T, device: torch.device) -> T:
    """``obj`` (a tensor, or a tuple / list / dict of them) on ``device``; non-blocking on CUDA."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=device.type == "cuda")  # type: ignore[return-value]
    if isinstance(obj, nn.Module):
        return obj.to(device)  # type: ignore[return-value]
    if isinstance(obj, tuple | list):
        return type(obj)(to_device(v, device) for v in obj)  # type: ignore[return-value]
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}  # type: ignore[return-value]
    return obj


def to_cpu(obj: Any) -> Any:
    """A copy of a (nested) state with every tensor on the CPU: checkpoints stay device-free."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, tuple | list):
        return type(obj)(to_cpu(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((k, to_cpu(v)) for k, v in obj.items())
    return obj


def module_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter (or buffer); cpu for a model without either."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def pin_memory(device: torch.device) -> bool:
    """Whether DataLoaders should pin host memory for ``device`` (only for CUDA)."""
    return device.type == "cuda"


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (for timing); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_amp(amp: str, device: torch.device) -> None:
    """Refuse an unknown mode and fp16 off CUDA (use bf16 there), naming the fix."""
    if amp not in AMP_CHOICES:
        raise DeviceError(f"unknown --amp {amp!r}; use one of {', '.join(AMP_CHOICES)}")
    if amp == "fp16" and device.type != "cuda":
        raise DeviceError("--amp fp16 needs --device cuda; on the CPU use --amp bf16 or none")


@contextlib.contextmanager
def autocast(device: torch.device, amp: str) -> Iterator[None]:
    """Autocast region for the FP32 phase's forward pass (a no-op for ``amp == 'none'``)."""
    if amp == "none":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=_AMP_DTYPES[amp]):
        yield


def grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler:
    """Loss scaler: active for fp16 only (bf16 has FP32's exponent range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")
