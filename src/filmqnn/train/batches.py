"""Deterministic mini-batches: vectorised for in-memory data sets, DataLoader workers for folders.

Every epoch of a run visits a seeded permutation of the training set; under DDP each rank takes
a disjoint, equally long slice of it (``ShardSampler``, reshuffled per epoch with ``set_epoch``
like torch's ``DistributedSampler``, but dropping the remainder instead of padding with repeated
images, and reproducible from (seed, epoch, rank, world) alone, which an exact resume needs).
"""

import os
from collections.abc import Iterator
from itertools import islice

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from filmqnn.data.batches import Batch, iterate, uses_workers

MAX_AUTO_WORKERS = 8


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    """This rank's shuffled sample indices for `epoch`: same on resume, disjoint across ranks."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)
    per_rank = n // world
    return perm[rank * per_rank : (rank + 1) * per_rank]


class ShardSampler(Sampler[int]):
    """This rank's share of each epoch's seeded permutation; call ``set_epoch`` every epoch."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle: the next iteration yields `epoch`'s order."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(epoch_order(self.n, self.seed, self.epoch, self.rank, self.world).tolist())

    def __len__(self) -> int:
        return self.n // self.world


def auto_workers(dataset: Dataset, workers: int | None, world: int = 1) -> int:
    """`workers`, or for None: 0 for in-memory sets, else min(8, this node's CPUs per process)."""
    if workers is not None:
        if workers < 0:
            raise ValueError(f"--workers must be >= 0, got {workers}")
        return workers
    if not uses_workers(dataset):
        return 0
    local = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    return max(0, min(MAX_AUTO_WORKERS, (os.cpu_count() or 1) // max(local, 1) - 1))


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    sampler: Sampler[int] | None = None,
    drop_last: bool = False,
    workers: int = 0,
    pin_memory: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader with `workers` processes (persistent across epochs) and pinned memory."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),  # worker seeds: per rank, reproducible
    )


class EpochBatches:
    """One rank's training batches, epoch by epoch, in the seeded order of `epoch_order`.

    In-memory data sets are gathered with one indexing op per batch; others (image folders)
    go through one DataLoader whose workers persist across epochs.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.dataset, self.batch_size = dataset, batch_size
        self.sampler = ShardSampler(len(dataset), seed, rank, world)  # type: ignore[arg-type]
        self._loader: DataLoader | None = None
        if uses_workers(dataset):
            self._loader = make_loader(
                dataset,
                batch_size,
                sampler=self.sampler,
                drop_last=True,
                workers=workers,
                pin_memory=pin_memory,
                seed=seed * 1009 + rank,
            )

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """The batches of `epoch` (drop_last: every step has a full batch)."""
        self.sampler.set_epoch(epoch)
        if self._loader is None:
            s = self.sampler
            order = epoch_order(s.n, s.seed, epoch, s.rank, s.world)
            return iterate(self.dataset, order, self.batch_size, drop_last=True)
        return ((x, y.long()) for x, y in self._loader)


def first_batches(
    dataset: Dataset, batch_size: int, count: int, seed: int = 0, workers: int = 0
) -> list[Batch]:
    """`count` batches to calibrate and assign from, the same on every rank.

    In-memory sets (stored shuffled): seed 0 takes their first images, seed s the s-th block
    of `batch_size * count` images after them (wrapping round), so seeds calibrate on
    different images. Image folders, stored sorted by class: the first images of a seeded
    shuffle, so the batches mix classes.
    """
    n = len(dataset)  # type: ignore[arg-type]
    if uses_workers(dataset):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    else:
        order = torch.roll(torch.arange(n), -((seed * batch_size * count) % max(n, 1)))
    order = order[: batch_size * count]
    return list(islice(iterate(dataset, order, batch_size, workers=workers), count))
