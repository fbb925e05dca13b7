"""CIFAR-10 from the official "python version" batches directory (never downloaded)."""

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from filmqnn.data.errors import DatasetError

CIFAR10_DIRNAME = "cifar-10-batches-py"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

# The batches are pickled dicts of numpy arrays; nothing else may be constructed while reading.
_ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that only resolves the numpy globals a CIFAR batch needs."""

    def find_class(self, module: str, name: str) -> object:
        module = module.replace("numpy.core", "numpy._core")  # batches written by numpy < 2
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")
        return super().find_class(module, name)


def resolve_cifar10_dir(root: str | None) -> Path:
    """The batches directory: ``root`` itself or ``root/cifar-10-batches-py``."""
    if root is None:
        raise DatasetError(
            f"CIFAR-10 needs --data-root: download {CIFAR10_URL} yourself, unpack it and pass "
            f"the {CIFAR10_DIRNAME} directory (data_batch_1..5, test_batch); "
            "filmqnn never downloads data"
        )
    base = Path(root)
    for candidate in (base, base / CIFAR10_DIRNAME):
        if (candidate / "test_batch").is_file():
            return candidate
    raise DatasetError(
        f"CIFAR-10 batches not found in {base}: put data_batch_1..5 and test_batch from "
        f"{CIFAR10_URL} (the {CIFAR10_DIRNAME} directory) there"
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"CIFAR-10 batch missing: {path}")
    try:
        with path.open("rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({err!r})") from err
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f"{path}: expected uint8 data N x 3072, got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(f"{path}: expected {data.shape[0]} labels in 0..9")
    return data, labels


def load_cifar10(batch_dir: Path, split: str) -> tuple[Tensor, Tensor]:
    """Images as uint8 [N, 3, 32, 32] and labels as int64 [N] for split "train" or "test"."""
    parts = [_read_batch(batch_dir / name) for name in _FILES[split]]
    data = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([lab for _, lab in parts]).astype(np.int64)
    return torch.from_numpy(data), torch.from_numpy(labels)
