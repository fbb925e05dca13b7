"""Quantize an FP32 checkpoint: calibrate, assign precisions (Algorithm 1), fine-tune or PTQ.

Fake-quantized steps always run in FP32 (no autocast): the forward pass must round to the
same integer levels as the integer graph it is exported to, and the LSQ scale gradients sum
many small terms that bf16 / fp16 would lose.
"""

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from filmqnn.quant import (
    Assignment,
    QuantSpec,
    apply_assignment,
    assign_from_scores,
    calibrate,
    filter_scores,
    quant_layers,
)
from filmqnn.quant.assignment import write_json_atomic
from filmqnn.quant.checkpoint import load_checkpoint, quantized_model_from_fp32
from filmqnn.train.batches import EpochBatches, auto_workers, first_batches
from filmqnn.train.checkpoint import save_checkpoint
from filmqnn.train.device import pin_memory, to_device
from filmqnn.train.distributed import (
    DistInfo,
    all_reduce_sum_many,
    barrier,
    init_distributed,
    same_on_all_ranks,
    wrap,
)
from filmqnn.train.loop import cosine_lr, evaluate, train_epoch
from filmqnn.train.recipes import effective_lr, warmup_steps
from filmqnn.train.spec import (
    RunOptions,
    TrainSpec,
    batch_augments,
    load_split,
    loss_fn,
    make_optimizer,
)

QUANT_CHECKPOINT = "quant.pt"
ASSIGNMENT_FILE = "assignment.json"
MODES = ("qat", "ptq")


def assign_distributed(
    model: nn.Module,
    qspec: QuantSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    dist: DistInfo,
    seed: int = 0,
) -> Assignment:
    """Score filters on this rank's batch, sum the scores over all ranks, pick and apply.

    Every rank then ranks the same summed scores, so all pick the same 8-bit filters; this is
    checked (one small collective) and a disagreement stops the run instead of diverging.
    """
    layers = quant_layers(model)
    fixed = {layers[0][0], layers[-1][0]} if qspec.config.first_last_high else set()
    scores = filter_scores(qspec.criterion, model, layers, x, y, seed=seed)
    all_reduce_sum_many([scores[name] for name, _ in layers], dist)
    assignment = assign_from_scores(layers, scores, qspec.ratio, qspec.tm, qspec.criterion, fixed)
    chosen = [i for la in assignment.layers for i in (-1, *la.high_filters)]
    if not same_on_all_ranks(torch.tensor(chosen, device=dist.device), dist):
        raise RuntimeError(
            "ranks chose different 8-bit filters from the same reduced scores; rerun with "
            "--assignment FILE to fix the assignment, and report this as a bug"
        )
    apply_assignment(layers, assignment)
    return assignment


def quantize_fp32(
    fp32_checkpoint: str | Path,
    spec: TrainSpec,
    qspec: QuantSpec,
    out_dir: str | Path,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    run: RunOptions | None = None,
) -> dict[str, Any]:
    """Quantize an FP32 checkpoint to mixed precision; writes quant.pt and assignment.json.

    QAT (Algorithm 1): the assignment is recomputed on the first batch of each of the first
    `qspec.assign_epochs` epochs, then frozen while the remaining `spec.epochs` fine-tune.
    PTQ: calibrate and assign only. `spec` supplies data and optimiser settings; `run` the
    device and DataLoader workers (its `amp` is ignored: QAT steps run in FP32).
    """
    if qspec.mode not in MODES:
        raise ValueError(f"unknown quantization mode {qspec.mode!r}; use one of {MODES}")
    run = run or RunOptions()
    dist = init_distributed(run.device)
    out = Path(out_dir)
    ckpt_path = out / QUANT_CHECKPOINT
    fp32_state = load_checkpoint(fp32_checkpoint, kind="fp32")
    spec = TrainSpec.from_dict({**spec.to_dict(), "model": fp32_state["spec"]["model"]})
    torch.manual_seed(spec.seed)
    train, test = load_split(spec, "train"), load_split(spec, "test")
    workers = auto_workers(train.dataset, run.workers, dist.world)
    model = to_device(quantized_model_from_fp32(fp32_state, qspec.config), dist.device)
    fixed_assignment = Assignment.load(qspec.assignment_file) if qspec.assignment_file else None
    epochs = spec.epochs if qspec.mode == "qat" else 0
    optimizer = make_optimizer(model, spec)
    start, history = 0, []
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, kind="quant")
        same_spec = TrainSpec.from_dict(state["spec"]) == spec
        if not same_spec or QuantSpec.from_dict(state["quant_spec"]) != qspec:
            raise ValueError(
                f"{ckpt_path} was written with other settings; resume with the same "
                "options or use a new --out directory"
            )
        assignment = Assignment.from_dict(state["assignment"])
        apply_assignment(quant_layers(model), assignment)
        model.load_state_dict(state["model_state"])  # after: restores the clip-search state
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start, history = state["epoch"], state["history"]
    else:
        pairs = to_device(
            first_batches(train.dataset, spec.batch_size, qspec.calib_batches, spec.seed, workers),
            dist.device,
        )
        calib = [x for x, _ in pairs]
        calibrate(model, calib)
        if fixed_assignment is not None:
            assignment = fixed_assignment
            apply_assignment(quant_layers(model), assignment)
        else:
            assignment = assign_distributed(model, qspec, calib[0], pairs[0][1], dist, spec.seed)
        calibrate(model, calib)

    state_holder = {"assignment": assignment}

    def reassign(x: torch.Tensor, y: torch.Tensor, epoch: int) -> None:
        if fixed_assignment is None and epoch < qspec.assign_epochs:
            state_holder["assignment"] = assign_distributed(model, qspec, x, y, dist, spec.seed)

    batches = EpochBatches(
        train.dataset,
        spec.batch_size,
        spec.seed,
        dist.rank,
        dist.world,
        workers if epochs > 0 else 0,
        pin_memory(dist.device),
    )
    steps = len(batches)
    if steps == 0 and epochs > 0:
        warnings.warn(
            f"{len(train.dataset)} training images over {dist.world} process(es) make no full "
            f"batch of {spec.batch_size}: the epochs train nothing; lower --batch-size",
            stacklevel=2,
        )
    peak = effective_lr(spec.lr, spec.lr_batch, spec.batch_size, dist.world)
    warmup = warmup_steps(spec.warmup_steps, spec.warmup_epochs, steps)
    ddp_model = wrap(model, dist)
    end = epochs if stop_after is None else min(epochs, start + stop_after)
    for epoch in tqdm(
        range(start, end),
        desc="qat epochs",
        unit="epoch",
        initial=start,
        total=epochs,
        disable=not (progress and dist.is_main),
    ):
        phase = "assign" if epoch < qspec.assign_epochs and fixed_assignment is None else "finetune"
        stats = train_epoch(
            ddp_model,
            batches,
            optimizer,
            epoch=epoch,
            seed=spec.seed,
            first_step=epoch * steps,
            augment=batch_augments(spec),
            dist=dist,
            lr=lambda s: cosine_lr(peak, s, steps * epochs, warmup),
            on_first_batch=lambda x, y, e=epoch: reassign(x, y, e),
            loss_fn=loss_fn(spec),
            desc=f"qat epoch {epoch + 1}/{epochs} ({phase})",
            progress=progress,
        )
        history.append({"epoch": epoch + 1, "phase": phase, "world_size": dist.world, **stats})
        if dist.is_main:
            _save(
                ckpt_path,
                fp32_state,
                spec,
                qspec,
                model,
                optimizer,
                state_holder["assignment"],
                epoch + 1,
                history,
            )
        barrier(dist)
    assignment = state_holder["assignment"]
    if epochs == 0 and dist.is_main:
        _save(ckpt_path, fp32_state, spec, qspec, model, optimizer, assignment, 0, history)
    result: dict[str, Any] = {
        "checkpoint": str(ckpt_path),
        "epochs_done": end,
        "epochs": epochs,
        "history": history,
        "ratio_8bit": assignment.ratio_high,
        "world_size": dist.world,
        "device": str(dist.device),
    }
    if end == epochs and dist.is_main:
        assignment.save(out / ASSIGNMENT_FILE)
        result.update(
            assignment=str(out / ASSIGNMENT_FILE),
            test=evaluate(
                model, test.dataset, progress=progress, desc="quant test", workers=workers
            ),
        )
        write_json_atomic(out / "summary.json", result)
    # the other ranks wait for rank 0's test pass: a rank that exits while another still
    # holds the process group can abort in gloo's teardown
    barrier(dist)
    return result


def _save(
    path: Path,
    fp32_state: dict[str, Any],
    spec: TrainSpec,
    qspec: QuantSpec,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    assignment: Assignment,
    epoch: int,
    history: list[dict[str, Any]],
) -> None:
    fp32 = {k: fp32_state[k] for k in ("spec", "data", "model_state")}
    save_checkpoint(
        path,
        {
            "kind": "quant",
            "fp32": fp32,
            "spec": spec.to_dict(),
            "quant_spec": qspec.to_dict(),
            "epoch": epoch,
            "model_state": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "assignment": assignment.to_dict(),
            "history": history,
        },
    )
