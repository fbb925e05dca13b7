"""One training epoch and one evaluation pass, with progress bars (rate, ETA) on stderr."""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from filmqnn.data import augment_batch
from filmqnn.data.batches import progress_batches
from filmqnn.train.batches import EpochBatches
from filmqnn.train.device import autocast, module_device, pin_memory, to_device
from filmqnn.train.distributed import DistInfo, all_reduce_sum

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cosine_lr(base: float, step: int, total: int, warmup: int = 0) -> float:
    """Learning rate at `step` of `total`: linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def train_epoch(
    model: nn.Module,
    batches: EpochBatches,
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    seed: int,
    lr: Callable[[int], float],
    first_step: int,
    augment: bool,
    dist: DistInfo,
    on_first_batch: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    loss_fn: LossFn = F.cross_entropy,
    amp: str = "none",
    scaler: torch.amp.GradScaler | None = None,
    desc: str = "train",
    progress: bool = True,
) -> dict[str, float]:
    """Train one epoch in a seeded order; returns mean loss and train accuracy of this epoch.

    `augment` shift-crops and flips each batch (on the CPU, before it moves to the device);
    `amp` autocasts the forward pass (FP32 phase only), with `scaler` for fp16.
    """
    model.train()
    device = dist.device
    gen = torch.Generator().manual_seed(seed * 7919 + epoch * 31 + dist.rank)
    total = len(batches)
    stats = torch.zeros(3, dtype=torch.float64, device=device)
    bar = tqdm(
        batches.epoch(epoch),
        total=total,
        desc=desc,
        unit="batch",
        disable=not (progress and dist.is_main),
        leave=False,
        dynamic_ncols=True,
    )
    step_lr = lr(first_step)
    for i, (x, y) in enumerate(bar):
        if augment:
            x = augment_batch(x, gen)
        x, y = to_device((x, y), device)
        if i == 0 and on_first_batch is not None:
            on_first_batch(x, y)
        step_lr = lr(first_step + i)
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        with autocast(device, amp):
            out = model(x)
            loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            stats += torch.stack(
                [
                    loss.detach().double() * len(y),
                    (out.argmax(1) == y).sum().double(),
                    torch.tensor(float(len(y)), dtype=torch.float64, device=device),
                ]
            )
        if i % 20 == 0 and progress and dist.is_main:
            s = stats.tolist()
            bar.set_postfix(loss=f"{s[0] / s[2]:.3f}", acc=f"{s[1] / s[2]:.3f}")
    bar.close()
    all_reduce_sum(stats, dist)
    s = stats.tolist()
    return {
        "loss": s[0] / max(s[2], 1),
        "train_accuracy": s[1] / max(s[2], 1),
        "steps": total,
        "lr": step_lr,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 500,
    progress: bool = True,
    desc: str = "eval",
    workers: int = 0,
) -> dict[str, float]:
    """Top-1 accuracy and mean loss of `model` on all of `dataset`, on the model's device."""
    was_training = model.training
    model.eval()
    device = module_device(model)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    n = 0
    for x, y in progress_batches(dataset, batch_size, progress, desc, workers, pin_memory(device)):
        x, y = to_device((x, y), device)
        out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum").double()
        correct += (out.argmax(1) == y).sum()
        n += len(y)
    model.train(was_training)
    return {"accuracy": int(correct) / max(n, 1), "loss": float(loss_sum) / max(n, 1), "samples": n}
