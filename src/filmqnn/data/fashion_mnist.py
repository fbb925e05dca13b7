"""Fashion-MNIST from the IDX files of Debian's ``dataset-fashion-mnist`` package (or any copy)."""

from pathlib import Path

import torch
from torch import Tensor

from filmqnn.data.errors import DatasetError
from filmqnn.data.idx import read_idx_gz

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
_PREFIX = {"train": "train", "test": "t10k"}


def fashion_mnist_files(split: str) -> tuple[str, str]:
    """Names of the (images, labels) IDX files of a split."""
    prefix = _PREFIX[split]
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


def _how_to_get(root: Path) -> str:
    files = ", ".join(name for split in _PREFIX for name in fashion_mnist_files(split))
    return (
        f"Fashion-MNIST not found in {root}. Install it with "
        f"`apt-get install dataset-fashion-mnist` (files go to {FASHION_MNIST_ROOT}) "
        f"or pass --data-root to a directory holding the four IDX .gz files: {files}"
    )


def load_fashion_mnist(root: Path, split: str) -> tuple[Tensor, Tensor]:
    """Images as uint8 [N, 1, 28, 28] and labels as int64 [N] for split "train" or "test"."""
    image_file, label_file = (root / name for name in fashion_mnist_files(split))
    if not image_file.is_file() or not label_file.is_file():
        raise DatasetError(_how_to_get(root))
    images, labels = read_idx_gz(image_file), read_idx_gz(label_file)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != "uint8":
        raise DatasetError(f"{image_file}: expected uint8 images N x 28 x 28, got {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetError(
            f"{label_file}: expected {images.shape[0]} labels, got shape {labels.shape}"
        )
    if labels.size and int(labels.max()) > 9:
        raise DatasetError(f"{label_file}: labels must be 0..9, found {int(labels.max())}")
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long()
