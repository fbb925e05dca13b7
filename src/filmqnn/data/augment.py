"""Light, vectorised train-time augmentation for small images: random shift-crop and h-flip."""

import torch
from torch import Tensor
from torch.nn import functional as F


def augment_batch(x: Tensor, generator: torch.Generator | None = None, padding: int = 2) -> Tensor:
    """Zero-pad by ``padding``, crop back to the original size at a random offset, flip half.

    ``x`` is [N, C, H, W] (already normalised, so the padding is the data-set mean); each
    sample gets its own offset and flip from ``generator`` (global RNG when None).
    """
    n, c, h, w = x.shape
    dev = x.device  # random draws come from the (CPU) generator, then move to x's device
    offsets = torch.randint(0, 2 * padding + 1, (2, n, 1), generator=generator).to(dev)
    flip = (torch.rand(n, 1, generator=generator) < 0.5).to(dev)
    rows = offsets[0] + torch.arange(h, device=dev)
    cols = offsets[1] + torch.where(
        flip, torch.arange(w - 1, -1, -1, device=dev), torch.arange(w, device=dev)
    )
    # One gather over the flattened padded image: source pixel (row, col) for every output pixel.
    padded = F.pad(x, (padding, padding, padding, padding)).flatten(2)
    index = rows[:, :, None] * (w + 2 * padding) + cols[:, None, :]
    return padded.gather(2, index.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
