"""Fashion-MNIST loading from IDX files: a tiny fake copy, the real Debian package, errors."""

import numpy as np
import pytest
import torch

from filmqnn.data import DatasetError, load_dataset
from filmqnn.data.fashion_mnist import FASHION_MNIST_ROOT, fashion_mnist_files


def make_fake_fashion_mnist(root, write_idx, n: int = 20) -> None:
    """Four IDX files with ``n`` 28x28 images each and labels ``i % 10``."""
    for split in ("train", "test"):
        image_name, label_name = fashion_mnist_files(split)
        write_idx(root / image_name, np.full((n, 28, 28), 255, dtype=np.uint8))
        write_idx(root / label_name, (np.arange(n) % 10).astype(np.uint8))


def test_fake_copy_loads_normalised(tmp_path, write_idx):
    make_fake_fashion_mnist(tmp_path, write_idx)
    info = load_dataset("fashion-mnist", "test", root=str(tmp_path))
    assert (info.num_classes, info.in_channels, info.image_size) == (10, 1, 28)
    x, y = info.dataset[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y == 3
    expected = (1.0 - info.mean[0]) / info.std[0]
    assert torch.allclose(x, torch.full_like(x, expected))


def test_missing_directory_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset("fashion-mnist", "train", root=str(tmp_path / "nowhere"))
    assert "apt-get install dataset-fashion-mnist" in str(err.value)
    assert "--data-root" in str(err.value)


def test_label_count_mismatch(tmp_path, write_idx):
    make_fake_fashion_mnist(tmp_path, write_idx)
    write_idx(tmp_path / fashion_mnist_files("train")[1], np.zeros(3, dtype=np.uint8))
    with pytest.raises(DatasetError, match="expected 20 labels"):
        load_dataset("fashion-mnist", "train", root=str(tmp_path))


@pytest.mark.skipif(
    not (FASHION_MNIST_ROOT / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed (apt-get install it to run this)",
)
def test_real_debian_copy():
    info = load_dataset("fashion-mnist", "test")
    assert len(info.dataset) == 10000
    assert info.dataset.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(info.dataset.labels).tolist() == [1000] * 10
    x, _ = info.dataset[0]
    assert x.shape == (1, 28, 28)
