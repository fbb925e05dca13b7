"""FP32 baseline training with per-epoch atomic checkpoints and exact resume."""

from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from filmqnn.train.checkpoint import load_checkpoint, save_checkpoint
from filmqnn.train.distributed import barrier, init_distributed, unwrap, wrap
from filmqnn.train.loop import cosine_lr, evaluate, train_epoch
from filmqnn.train.spec import TrainSpec, build_for, load_split, make_optimizer

FP32_CHECKPOINT = "fp32.pt"


def train_fp32(
    spec: TrainSpec,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train `spec.model` on `spec.data` in FP32; `out_dir/fp32.pt` is rewritten every epoch.

    `resume` continues from that checkpoint; `stop_after` ends this call after so many epochs
    (an interruption, for tests and for slicing long runs).
    """
    dist = init_distributed()
    out = Path(out_dir)
    ckpt_path = out / FP32_CHECKPOINT
    torch.manual_seed(spec.seed)
    train, test = load_split(spec, "train"), load_split(spec, "test")
    model = build_for(spec, train)
    optimizer = make_optimizer(model, spec)
    start, history = 0, []
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, kind="fp32")
        if TrainSpec.from_dict(state["spec"]) != spec:
            raise ValueError(
                f"{ckpt_path} was written with other settings; resume with the same "
                "options or use a new --out directory"
            )
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start, history = state["epoch"], state["history"]
    steps = len(train.dataset) // dist.world // spec.batch_size
    total_steps = steps * spec.epochs
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
            train.dataset,
            optimizer,
            epoch=epoch,
            seed=spec.seed,
            batch_size=spec.batch_size,
            first_step=epoch * steps,
            augment=spec.augment,
            dist=dist,
            lr=lambda s: cosine_lr(spec.lr, s, total_steps, spec.warmup_steps),
            desc=f"fp32 epoch {epoch + 1}/{spec.epochs}",
            progress=progress,
        )
        history.append({"epoch": epoch + 1, **stats})
        if dist.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "kind": "fp32",
                    "spec": spec.to_dict(),
                    "epoch": epoch + 1,
                    "model_state": unwrap(ddp_model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng": torch.get_rng_state(),
                    "history": history,
                    "data": {
                        "num_classes": train.num_classes,
                        "in_channels": train.in_channels,
                        "image_size": train.image_size,
                    },
                },
            )
        barrier(dist)
    result = {
        "checkpoint": str(ckpt_path),
        "epochs_done": end,
        "epochs": spec.epochs,
        "history": history,
        "world_size": dist.world,
    }
    if end == spec.epochs and dist.is_main:
        result.update(test=evaluate(model, test.dataset, progress=progress, desc="fp32 test"))
    return result
