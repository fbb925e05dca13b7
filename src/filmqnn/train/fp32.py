"""FP32 baseline training with per-epoch atomic checkpoints and exact resume."""

import warnings
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from filmqnn.quant.checkpoint import load_checkpoint
from filmqnn.train.batches import EpochBatches, auto_workers
from filmqnn.train.checkpoint import save_checkpoint
from filmqnn.train.device import check_amp, grad_scaler, pin_memory, to_device
from filmqnn.train.distributed import DistInfo, barrier, init_distributed, unwrap, wrap
from filmqnn.train.loop import cosine_lr, evaluate, train_epoch
from filmqnn.train.recipes import effective_lr, warmup_steps
from filmqnn.train.spec import (
    RunOptions,
    TrainSpec,
    batch_augments,
    build_for,
    load_split,
    loss_fn,
    make_optimizer,
)

FP32_CHECKPOINT = "fp32.pt"


def _data_info(info: Any) -> dict[str, int]:
    return {
        "num_classes": info.num_classes,
        "in_channels": info.in_channels,
        "image_size": info.image_size,
    }


def train_fp32(
    spec: TrainSpec,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    run: RunOptions | None = None,
) -> dict[str, Any]:
    """Train `spec.model` on `spec.data` in FP32; `out_dir/fp32.pt` is rewritten every epoch.

    `resume` continues from that checkpoint (on any device and world size); `stop_after` ends
    this call after so many epochs (an interruption, for tests and for slicing long runs).
    A fresh run starts from `spec.pretrained` when set. `run` picks device, workers and autocast.
    """
    run = run or RunOptions()
    dist = init_distributed(run.device)
    check_amp(run.amp, dist.device)
    out = Path(out_dir)
    ckpt_path = out / FP32_CHECKPOINT
    torch.manual_seed(spec.seed)
    train, test = load_split(spec, "train"), load_split(spec, "test")
    resuming = resume and ckpt_path.is_file()
    model = to_device(build_for(spec, train, None if resuming else spec.pretrained), dist.device)
    optimizer = make_optimizer(model, spec)
    scaler = grad_scaler(dist.device, run.amp)
    start, history = 0, []
    if resuming:
        state = load_checkpoint(ckpt_path, kind="fp32")
        if TrainSpec.from_dict(state["spec"]) != spec:
            raise ValueError(
                f"{ckpt_path} was written with other settings; resume with the same "
                "options or use a new --out directory"
            )
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        start, history = state["epoch"], state["history"]
    workers = auto_workers(train.dataset, run.workers, dist.world)
    batches = EpochBatches(
        train.dataset,
        spec.batch_size,
        spec.seed,
        dist.rank,
        dist.world,
        workers,
        pin_memory(dist.device),
    )
    steps = len(batches)
    if steps == 0:
        warnings.warn(
            f"{len(train.dataset)} training images over {dist.world} process(es) make no full "
            f"batch of {spec.batch_size}: the epochs train nothing; lower --batch-size",
            stacklevel=2,
        )
    total_steps = steps * spec.epochs
    peak = effective_lr(spec.lr, spec.lr_batch, spec.batch_size, dist.world)
    warmup = warmup_steps(spec.warmup_steps, spec.warmup_epochs, steps)
    ddp_model = wrap(model, dist)
    end = spec.epochs if stop_after is None else min(spec.epochs, start + stop_after)
    for epoch in tqdm(
        range(start, end),
        desc="fp32 epochs",
        unit="epoch",
        disable=not (progress and dist.is_main),
        initial=start,
        total=spec.epochs,
    ):
        stats = train_epoch(
            ddp_model,
            batches,
            optimizer,
            epoch=epoch,
            seed=spec.seed,
            first_step=epoch * steps,
            augment=batch_augments(spec),
            dist=dist,
            lr=lambda s: cosine_lr(peak, s, total_steps, warmup),
            loss_fn=loss_fn(spec),
            amp=run.amp,
            scaler=scaler,
            desc=f"fp32 epoch {epoch + 1}/{spec.epochs}",
            progress=progress,
        )
        history.append({"epoch": epoch + 1, "world_size": dist.world, **stats})
        if dist.is_main:
            state = {
                "kind": "fp32",
                "spec": spec.to_dict(),
                "epoch": epoch + 1,
                "model_state": unwrap(ddp_model).state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "history": history,
                "data": _data_info(train),
            }
            if scaler.is_enabled():
                state["scaler"] = scaler.state_dict()
            save_checkpoint(ckpt_path, state)
        barrier(dist)
    result = {
        "checkpoint": str(ckpt_path),
        "epochs_done": end,
        "epochs": spec.epochs,
        "history": history,
        "world_size": dist.world,
        "device": str(dist.device),
        "lr_peak": peak,
        "warmup_steps": warmup,
    }
    if end == spec.epochs and dist.is_main:
        result.update(
            test=evaluate(model, test.dataset, progress=progress, desc="fp32 test", workers=workers)
        )
    return result


def import_pretrained(spec: TrainSpec, out_path: str | Path, dist: DistInfo | None = None) -> Path:
    """Write `spec.pretrained` (a torchvision state dict) as an FP32 checkpoint of 0 epochs.

    The weights are checked against `spec.model` shaped for `spec.data`; `quantize` and
    `compare` start from the checkpoint this writes (rank 0 writes it, every rank waits).
    """
    if spec.pretrained is None:
        raise ValueError("import_pretrained needs spec.pretrained (--pretrained PATH)")
    dist = dist or DistInfo()
    out_path = Path(out_path)
    info = load_split(spec, "test")
    model = build_for(spec, info, spec.pretrained)
    if dist.is_main:
        save_checkpoint(
            out_path,
            {
                "kind": "fp32",
                "spec": {**spec.to_dict(), "epochs": 0},
                "epoch": 0,
                "model_state": model.state_dict(),
                "rng": torch.get_rng_state(),
                "history": [],
                "data": _data_info(info),
            },
        )
    barrier(dist)
    return out_path
