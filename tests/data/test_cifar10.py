"""CIFAR-10 python batches: a tiny fake directory, missing data, refused pickles."""

import pickle

import numpy as np
import pytest

from filmqnn.data import DatasetError, load_dataset


def make_fake_cifar(root, n: int = 4) -> None:
    """data_batch_1..5 and test_batch with ``n`` images each; pixel value = batch number."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for value, name in enumerate(names):
        batch = {
            b"data": np.full((n, 3072), value, dtype=np.uint8),
            b"labels": [i % 10 for i in range(n)],
        }
        (root / name).write_bytes(pickle.dumps(batch))


def test_fake_batches_load(tmp_path):
    batch_dir = tmp_path / "cifar-10-batches-py"
    batch_dir.mkdir()
    make_fake_cifar(batch_dir)
    train = load_dataset("cifar10", "train", root=str(tmp_path))  # parent dir also accepted
    assert len(train.dataset) == 20
    assert train.dataset.images.shape == (20, 3, 32, 32)
    assert train.dataset.images[4:8].unique().tolist() == [1]
    test = load_dataset("cifar10", "test", root=str(batch_dir))
    x, y = test.dataset[1]
    assert x.shape == (3, 32, 32) and y == 1
    assert (test.num_classes, test.in_channels, test.image_size) == (10, 3, 32)


def test_no_root_and_wrong_root_explain(tmp_path):
    with pytest.raises(DatasetError, match="--data-root.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", "train")
    with pytest.raises(DatasetError, match="put data_batch_1..5 and test_batch"):
        load_dataset("cifar10", "train", root=str(tmp_path))


def test_missing_train_batch(tmp_path):
    make_fake_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="batch missing.*data_batch_3"):
        load_dataset("cifar10", "train", root=str(tmp_path))


def test_foreign_objects_in_pickle_are_refused(tmp_path):
    make_fake_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": pytest.raises}))
    with pytest.raises(DatasetError, match="not a CIFAR-10 python batch"):
        load_dataset("cifar10", "test", root=str(tmp_path))
