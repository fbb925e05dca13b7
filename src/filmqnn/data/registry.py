"""``load_dataset``: one entry point from a data-set name and split to a ready torch Dataset."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from filmqnn.data.cifar10 import load_cifar10, resolve_cifar10_dir
from filmqnn.data.errors import DatasetError
from filmqnn.data.fashion_mnist import FASHION_MNIST_ROOT, load_fashion_mnist
from filmqnn.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD, load_imagefolder
from filmqnn.data.memory import InMemoryImageDataset
from filmqnn.data.synthetic import SYNTHETIC_MEAN, SYNTHETIC_STD, synthetic_images

DATASET_NAMES = ("fashion-mnist", "cifar10", "imagenet", "synthetic")
SPLITS = ("train", "test")
LIMIT_SEED = 0
SYNTHETIC_SIZES = {"train": 2048, "test": 512}
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class DatasetInfo:
    """A data set plus what a model and the hardware flow need to know about its images."""

    name: str
    dataset: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _fashion_mnist(split: str, root: str | None, augment: bool) -> DatasetInfo:
    images, labels = load_fashion_mnist(Path(root) if root else FASHION_MNIST_ROOT, split)
    ds = InMemoryImageDataset(images, labels, FASHION_MNIST_MEAN, FASHION_MNIST_STD, augment)
    return DatasetInfo("fashion-mnist", ds, 10, 1, 28, FASHION_MNIST_MEAN, FASHION_MNIST_STD)


def _cifar10(split: str, root: str | None, augment: bool) -> DatasetInfo:
    images, labels = load_cifar10(resolve_cifar10_dir(root), split)
    ds = InMemoryImageDataset(images, labels, CIFAR10_MEAN, CIFAR10_STD, augment)
    return DatasetInfo("cifar10", ds, 10, 3, 32, CIFAR10_MEAN, CIFAR10_STD)


def _imagenet(split: str, root: str | None, augment: bool) -> DatasetInfo:
    ds = load_imagefolder(root, split, image_size=224, augment=augment)
    return DatasetInfo("imagenet", ds, len(ds.classes), 3, 224, IMAGENET_MEAN, IMAGENET_STD)


def _synthetic(split: str, root: str | None, augment: bool) -> DatasetInfo:
    del root  # generated, nothing to read
    images, labels = synthetic_images(SYNTHETIC_SIZES[split], seed=SPLITS.index(split))
    mean, std = (SYNTHETIC_MEAN,), (SYNTHETIC_STD,)
    return DatasetInfo(
        "synthetic", InMemoryImageDataset(images, labels, mean, std, augment), 10, 1, 28, mean, std
    )


_LOADERS: dict[str, Callable[[str, str | None, bool], DatasetInfo]] = {
    "fashion-mnist": _fashion_mnist,
    "cifar10": _cifar10,
    "imagenet": _imagenet,
    "synthetic": _synthetic,
}


def limit_indices(total: int, limit: int) -> torch.Tensor:
    """The first ``limit`` indices of a fixed seeded permutation of ``range(total)``, sorted."""
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(LIMIT_SEED))
    return perm[:limit].sort().values


def _take(dataset: Dataset, limit: int) -> Dataset:
    indices = limit_indices(len(dataset), limit)
    if isinstance(dataset, InMemoryImageDataset):
        return dataset.subset(indices)
    return Subset(dataset, indices.tolist())


def load_dataset(
    name: str,
    split: str,
    root: str | None = None,
    limit: int | None = None,
    augment: bool = False,
) -> DatasetInfo:
    """Load ``split`` ("train" or "test"; imagenet "test" is its val folder) of data set ``name``.

    ``limit`` keeps a deterministic, class-mixed subset of that many items; ``augment`` turns on
    the train-time augmentation (shift-crop + flip, or random-resized-crop + flip for imagenet).
    """
    if name not in _LOADERS:
        raise DatasetError(f"unknown data set {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise DatasetError(f"limit must be >= 1, got {limit}")
    info = _LOADERS[name](split, root, augment)
    if limit is not None and limit < len(info.dataset):
        info = replace(info, dataset=_take(info.dataset, limit))
    return info
