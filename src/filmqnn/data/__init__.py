"""filmqnn.data: Fashion-MNIST, CIFAR-10, ImageNet-style folders, a synthetic set; no downloads."""

from filmqnn.data.augment import augment_batch
from filmqnn.data.errors import DatasetError
from filmqnn.data.memory import InMemoryImageDataset
from filmqnn.data.registry import DATASET_NAMES, DatasetInfo, limit_indices, load_dataset
from filmqnn.data.synthetic import synthetic_images

__all__ = [
    "DATASET_NAMES",
    "DatasetError",
    "DatasetInfo",
    "InMemoryImageDataset",
    "augment_batch",
    "limit_indices",
    "load_dataset",
    "synthetic_images",
]
