"""ImageNet-style folders at scale: DataLoader workers, per-epoch shards, transforms, layouts."""

import json

import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.data import DatasetError, load_dataset
from filmqnn.train.batches import EpochBatches, auto_workers
from filmqnn.train.spec import TrainSpec, batch_augments, load_split

torch.set_num_threads(1)
CLASSES = ("cat", "dog", "eel")


def _tree(root, train_per_class=4, val_per_class=2, val_classes=CLASSES):
    for split, per, classes in (("train", train_per_class, CLASSES),
                                ("val", val_per_class, val_classes)):
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(per):
                colour = (40 * c + 10 * i, 255 - 30 * c, 17 * i)
                Image.new("RGB", (48 + 8 * i, 40), colour).save(root / split / cls / f"{i}.JPEG")
    return root


def test_workers_give_the_same_batches_and_reshuffle_per_epoch(tmp_path):
    ds = load_dataset("imagenet", "test", root=str(_tree(tmp_path, val_per_class=4))).dataset
    plain = EpochBatches(ds, 4, seed=0, rank=1, world=2, workers=0)
    pooled = EpochBatches(ds, 4, seed=0, rank=1, world=2, workers=2)
    assert pooled._loader.persistent_workers and len(pooled) == 12 // 2 // 4
    for epoch in (0, 1):
        a, b = list(plain.epoch(epoch)), list(pooled.epoch(epoch))
        assert len(a) == len(b) == 1
        assert torch.equal(a[0][0], b[0][0]) and torch.equal(a[0][1], b[0][1])
        assert a[0][0].shape == (4, 3, 224, 224)
    orders = []
    for epoch in (0, 1):
        shards = [EpochBatches(ds, 6, seed=0, rank=r, world=2).sampler for r in (0, 1)]
        for s in shards:
            s.set_epoch(epoch)
        first, second = (list(s) for s in shards)
        assert not set(first) & set(second) and len(set(first) | set(second)) == 12
        orders.append(first)
    assert orders[0] != orders[1]  # set_epoch reshuffles


def test_standard_transforms_and_worker_default(tmp_path):
    root = str(_tree(tmp_path))
    spec = TrainSpec(data="imagenet", data_root=root)
    train, val = load_split(spec, "train").dataset, load_split(spec, "test").dataset
    kinds = [type(t) for t in train.transform.transforms]
    assert kinds[:2] == [T.RandomResizedCrop, T.RandomHorizontalFlip]
    resize, crop = val.transform.transforms[:2]
    assert (resize.size, crop.size) == (256, (224, 224))
    assert not batch_augments(spec)  # no shift-crop on top of the random-resized-crop
    assert 0 <= auto_workers(train, None) <= 8 and auto_workers(train, 3) == 3
    assert auto_workers(load_dataset("synthetic", "test").dataset, None) == 0


@pytest.mark.parametrize(
    "mutate,expect",
    [
        ("flat_val", "images lie directly in it: sort them into one folder per class"),
        ("fewer_val_classes", "different class folders (missing in val: ['eel']"),
        ("empty_train", "has no class folders"),
    ],
)
def test_bad_layouts_name_the_fix(tmp_path, mutate, expect):
    if mutate == "fewer_val_classes":
        _tree(tmp_path, val_classes=CLASSES[:2])
        split = "test"
    elif mutate == "flat_val":
        _tree(tmp_path, val_classes=())
        (tmp_path / "val").mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG")
        split = "test"
    else:
        (tmp_path / "train").mkdir()
        split = "train"
    with pytest.raises(DatasetError, match=expect.replace("(", r"\(").replace("[", r"\[")):
        load_dataset("imagenet", split, root=str(tmp_path))


def test_train_on_a_folder_with_workers(tmp_path):
    root = str(_tree(tmp_path / "data"))
    r = CliRunner().invoke(app, ["train", "--model", "tiny_cnn", "--data", "imagenet",
                                 "--data-root", root, "--batch-size", "4", "--epochs", "1",
                                 "--workers", "2", "--device", "cpu", "--out",
                                 str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["history"][0]["steps"] == 12 // 4 and result["test"]["samples"] == 6
