"""Fast, deterministic mini-batches from a data set (vectorised for in-memory data sets)."""

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from filmqnn.data import InMemoryImageDataset


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """This rank's shuffled sample indices for `epoch`: same on resume, disjoint across ranks."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)
    per_rank = n // world
    return perm[rank * per_rank : (rank + 1) * per_rank]


def iterate(
    dataset: Dataset, indices: torch.Tensor, batch_size: int, drop_last: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (images, labels) batches of `dataset[indices]` in order."""
    if isinstance(dataset, InMemoryImageDataset) and not dataset.augment:
        stop = len(indices) - (len(indices) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            x, y = dataset.batch(indices[start : start + batch_size])
            yield x, y.long()
        return
    loader = DataLoader(
        Subset(dataset, indices.tolist()), batch_size=batch_size, drop_last=drop_last, num_workers=0
    )
    for x, y in loader:
        yield x, y.long()


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


def progress_batches(
    dataset: Dataset, batch_size: int, progress: bool, desc: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Every item of `dataset` in order, in batches, behind a tqdm bar (rate and ETA)."""
    return tqdm(
        iterate(dataset, torch.arange(len(dataset)), batch_size),
        total=num_batches(len(dataset), batch_size, False),
        desc=desc,
        unit="batch",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
