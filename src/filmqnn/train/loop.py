"""One training epoch and one evaluation pass, with progress bars (rate, ETA) on stderr."""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from filmqnn.data import augment_batch
from filmqnn.train.batches import epoch_order, iterate, num_batches, progress_batches
from filmqnn.train.distributed import DistInfo, all_reduce_sum


def cosine_lr(base: float, step: int, total: int, warmup: int = 0) -> float:
    """Learning rate at `step` of `total`: linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def train_epoch(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    seed: int,
    batch_size: int,
    lr: Callable[[int], float],
    first_step: int,
    augment: bool,
    dist: DistInfo,
    on_first_batch: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    desc: str = "train",
    progress: bool = True,
) -> dict[str, float]:
    """Train one epoch in a seeded order; returns mean loss and train accuracy of this epoch."""
    model.train()
    order = epoch_order(len(dataset), seed, epoch, dist.rank, dist.world)
    gen = torch.Generator().manual_seed(seed * 7919 + epoch * 31 + dist.rank)
    total = num_batches(len(order), batch_size, drop_last=True)
    stats = torch.zeros(3, dtype=torch.float64)
    bar = tqdm(
        iterate(dataset, order, batch_size, drop_last=True),
        total=total,
        desc=desc,
        unit="batch",
        disable=not (progress and dist.is_main),
        leave=False,
        dynamic_ncols=True,
    )
    for i, (x, y) in enumerate(bar):
        if augment:
            x = augment_batch(x, gen)
        if i == 0 and on_first_batch is not None:
            on_first_batch(x, y)
        for group in optimizer.param_groups:
            group["lr"] = lr(first_step + i)
        out = model(x)
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        stats += torch.tensor(
            [loss.item() * len(y), (out.argmax(1) == y).sum().item(), len(y)], dtype=torch.float64
        )
        if i % 20 == 0:
            bar.set_postfix(loss=f"{stats[0] / stats[2]:.3f}", acc=f"{stats[1] / stats[2]:.3f}")
    bar.close()
    all_reduce_sum(stats, dist)
    return {
        "loss": float(stats[0] / stats[2]),
        "train_accuracy": float(stats[1] / stats[2]),
        "steps": total,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 500,
    progress: bool = True,
    desc: str = "eval",
) -> dict[str, float]:
    """Top-1 accuracy and mean loss of `model` on all of `dataset`."""
    was_training = model.training
    model.eval()
    correct, loss_sum, n = 0, 0.0, 0
    for x, y in progress_batches(dataset, batch_size, progress, desc):
        out = model(x)
        loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
        n += len(y)
    model.train(was_training)
    return {"accuracy": correct / max(n, 1), "loss": loss_sum / max(n, 1), "samples": n}
