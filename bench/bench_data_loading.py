"""Data-loading rate (images/s) of an ImageNet-style folder with 0 vs N DataLoader workers.

    .venv/bin/python bench/bench_data_loading.py --folder /tmp/fm224 [--make 400]
        [--workers 0,2] [--batch 32] [--epochs 2]

`--make N` first writes an ImageNet-style tree from N Fashion-MNIST training images resized
to 224x224 RGB JPEG (train/<class>/, and N/4 test images under val/<class>/). The rate is
that of the training path (`filmqnn.train.batches.EpochBatches`: the per-epoch shard sampler,
random-resized-crop + flip, ToTensor, normalise, persistent workers), one pass per epoch.
The first epoch includes starting the workers; later epochs reuse them.
"""

import argparse
import time
from pathlib import Path

import torch
from PIL import Image

from filmqnn.data import load_dataset
from filmqnn.data.fashion_mnist import FASHION_MNIST_ROOT, load_fashion_mnist
from filmqnn.train.batches import EpochBatches

CLASSES = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "boot")


def make_folder(root: Path, count: int, size: int = 224) -> None:
    """Write `count` train and count//4 val Fashion-MNIST images as size x size RGB JPEGs."""
    for split, n, src in (("train", count, "train"), ("val", max(count // 4, 10), "test")):
        images, labels = load_fashion_mnist(FASHION_MNIST_ROOT, src)
        for i in range(n):
            folder = root / split / CLASSES[int(labels[i])]
            folder.mkdir(parents=True, exist_ok=True)
            img = Image.fromarray(images[i].reshape(28, 28).numpy())
            img = img.resize((size, size), Image.BILINEAR)
            img.convert("RGB").save(folder / f"{split}_{i:06d}.JPEG", quality=90)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folder", type=Path, required=True)
    p.add_argument("--make", type=int, default=0, help="write N images first (if absent)")
    p.add_argument("--workers", default="0,2")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.make and not (args.folder / "train").is_dir():
        t = time.perf_counter()
        make_folder(args.folder, args.make)
        print(f"wrote {args.make} train images to {args.folder} in {time.perf_counter() - t:.1f} s")
    ds = load_dataset("imagenet", "train", root=str(args.folder), augment=True).dataset
    print(f"{len(ds)} images, batch {args.batch}, {args.epochs} epochs, torch threads 1")
    cols = " ".join(f"{'epoch ' + str(e + 1):>10s}" for e in range(args.epochs))
    print(f"{'workers':>7s} {cols}   (images/s)")
    for w in (int(v) for v in args.workers.split(",")):
        batches = EpochBatches(ds, args.batch, seed=0, workers=w)
        rates = []
        for epoch in range(args.epochs):
            t, n = time.perf_counter(), 0
            for x, _ in batches.epoch(epoch):
                n += len(x)
            rates.append(n / (time.perf_counter() - t))
        print(f"{w:7d} " + " ".join(f"{r:10.1f}" for r in rates), flush=True)
        del batches


if __name__ == "__main__":
    main()
