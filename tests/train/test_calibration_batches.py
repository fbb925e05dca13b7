"""Calibration batches: seed 0 keeps the first images, other seeds take other blocks."""

import torch

from filmqnn.data import InMemoryImageDataset
from filmqnn.train.batches import first_batches


def test_seeds_calibrate_on_different_images():
    images = torch.arange(100, dtype=torch.uint8).reshape(100, 1, 1, 1).expand(100, 1, 2, 2)
    ds = InMemoryImageDataset(images.contiguous(), torch.arange(100) % 10, [0.0], [1.0], False)
    firsts = [torch.cat([y for _, y in first_batches(ds, 8, 2, seed)]) for seed in range(3)]
    assert firsts[0].tolist() == (torch.arange(16) % 10).tolist()  # seed 0: the first images
    assert all(len(f) == 16 for f in firsts)
    pixels = [
        {int(v) for x, _ in first_batches(ds, 8, 2, s) for v in (x[:, 0, 0, 0] * 255).round()}
        for s in range(3)
    ]
    assert not pixels[0] & pixels[1] and not pixels[1] & pixels[2]
    assert first_batches(ds, 8, 2, 1)[0][0].equal(first_batches(ds, 8, 2, 1)[0][0])
