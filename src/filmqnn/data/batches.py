"""Every item of a data set in order, in batches: vectorised for in-memory data sets,
DataLoader workers for folders. Evaluation reads data sets this way (training runs, the
integer reference); the training runs' shuffled, sharded epochs are ``filmqnn.train.batches``.
"""

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from filmqnn.data.memory import InMemoryImageDataset

Batch = tuple[torch.Tensor, torch.Tensor]


def uses_workers(dataset: Dataset) -> bool:
    """Whether batches of `dataset` come through a DataLoader (files) rather than memory."""
    return not (isinstance(dataset, InMemoryImageDataset) and not dataset.augment)


def iterate(
    dataset: Dataset,
    indices: torch.Tensor,
    batch_size: int,
    drop_last: bool = False,
    workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Yield (images, labels) batches of `dataset[indices]` in order."""
    if not uses_workers(dataset):
        assert isinstance(dataset, InMemoryImageDataset)
        stop = len(indices) - (len(indices) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            x, y = dataset.batch(indices[start : start + batch_size])
            yield x, y.long()
        return
    loader = DataLoader(
        Subset(dataset, indices.tolist()),
        batch_size=batch_size,
        drop_last=drop_last,
        num_workers=workers,
        pin_memory=pin_memory,
    )
    for x, y in loader:
        yield x, y.long()


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """Number of batches of `n` items."""
    return n // batch_size if drop_last else -(-n // batch_size)


def progress_batches(
    dataset: Dataset,
    batch_size: int,
    progress: bool,
    desc: str,
    workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Every item of `dataset` in order, in batches, behind a tqdm bar (rate and ETA)."""
    return tqdm(
        iterate(dataset, torch.arange(len(dataset)), batch_size, workers=workers,
                pin_memory=pin_memory),
        total=num_batches(len(dataset), batch_size, False),
        desc=desc,
        unit="batch",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
