"""load_dataset: names, splits, limit and synthetic determinism, augmentation, image folders."""

import pytest
import torch
from PIL import Image

from filmqnn.data import DatasetError, augment_batch, limit_indices, load_dataset, synthetic_images


def test_unknown_name_lists_valid_names():
    with pytest.raises(DatasetError, match="fashion-mnist, cifar10, imagenet, synthetic"):
        load_dataset("mnist", "train")
    with pytest.raises(DatasetError, match="valid splits: train, test"):
        load_dataset("synthetic", "val")


def test_synthetic_is_deterministic_and_splits_differ():
    a, b = load_dataset("synthetic", "train"), load_dataset("synthetic", "train")
    assert torch.equal(a.dataset.images, b.dataset.images)
    assert torch.equal(a.dataset.labels, b.dataset.labels)
    test = load_dataset("synthetic", "test")
    assert not torch.equal(test.dataset.images[:10], a.dataset.images[:10])
    x, y = a.dataset[0]
    assert x.shape == (1, 28, 28) and 0 <= y < 10
    images, labels = synthetic_images(6, image_shape=(3, 8, 5), num_classes=4, seed=7)
    assert images.shape == (6, 3, 8, 5) and images.dtype == torch.uint8
    assert int(labels.max()) < 4


def test_limit_is_deterministic_and_mixed():
    first = load_dataset("synthetic", "train", limit=100)
    second = load_dataset("synthetic", "train", limit=100)
    assert len(first.dataset) == 100
    assert torch.equal(first.dataset.images, second.dataset.images)
    assert torch.equal(limit_indices(1000, 10), limit_indices(1000, 10))
    assert limit_indices(1000, 10).max() > 100  # not simply the first items
    assert len(load_dataset("synthetic", "test", limit=10**6).dataset) == 512
    with pytest.raises(DatasetError, match="limit must be >= 1"):
        load_dataset("synthetic", "test", limit=0)


def test_augment_batch_shifts_and_flips_reproducibly():
    x = torch.randn(64, 3, 8, 8)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    b = augment_batch(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.equal(augment_batch(x[:1], padding=0).abs().sum(), x[:1].abs().sum())
    flipped_or_same = [
        torch.equal(o, i) or torch.equal(o, i.flip(-1)) for o, i in zip(a, x, strict=True)
    ]
    assert not all(flipped_or_same)  # some samples were shifted


def test_dataset_augment_flag_changes_items():
    plain = load_dataset("synthetic", "train", limit=8)
    augmented = load_dataset("synthetic", "train", limit=8, augment=True)
    torch.manual_seed(0)
    assert any(not torch.equal(plain.dataset[i][0], augmented.dataset[i][0]) for i in range(8))


def test_imagefolder_layout(tmp_path):
    for split in ("train", "val"):
        for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            Image.new("RGB", (40, 30), colour).save(folder / "a.JPEG")
    info = load_dataset("imagenet", "test", root=str(tmp_path))
    assert info.num_classes == 2 and len(info.dataset) == 2
    x, y = info.dataset[1]
    assert x.shape == (3, 224, 224) and y == 1
    train = load_dataset("imagenet", "train", root=str(tmp_path), augment=True, limit=1)
    assert train.dataset[0][0].shape == (3, 224, 224)


def test_imagefolder_missing_explains_layout(tmp_path):
    with pytest.raises(DatasetError, match="root/train/<class>"):
        load_dataset("imagenet", "train", root=str(tmp_path))
    with pytest.raises(DatasetError, match="--data-root"):
        load_dataset("imagenet", "test")
