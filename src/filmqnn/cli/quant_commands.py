"""CLI commands of the quantization stage: train, assign, quantize, evaluate, compare, study."""

from pathlib import Path
from typing import Annotated

import torch
import typer

from filmqnn.cli.app import app, emit_json, fail
from filmqnn.data import DatasetError
from filmqnn.models import MODEL_NAMES, ModelError, build_model, default_input_size
from filmqnn.quant import (
    CRITERIA,
    DATA_CRITERIA,
    QuantConfig,
    UnsupportedLayerError,
    assign_from_scores,
    calibrate,
    convert,
    filter_scores,
    quant_layers,
)
from filmqnn.quant.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_quantized,
    quantized_model_from_fp32,
)
from filmqnn.quant.config import QuantSpec
from filmqnn.train.batches import auto_workers
from filmqnn.train.device import AMP_CHOICES, DEVICE_CHOICES, resolve_device, to_device
from filmqnn.train.distributed import init_distributed, is_main_process
from filmqnn.train.experiments import (
    STUDY_ACT_BITS,
    STUDY_CRITERIA,
    STUDY_LOW_BITS,
    STUDY_RATIOS,
    comparison_markdown,
    comparison_variants,
    fp32_row,
    run_study,
    run_variants,
    study_cells,
    study_grid_markdown,
    study_grid_plot,
    study_paired_markdown,
    study_summary,
    write_report,
)
from filmqnn.train.fp32 import import_pretrained, train_fp32
from filmqnn.train.loop import evaluate
from filmqnn.train.qat import quantize_fp32
from filmqnn.train.recipes import RECIPE_NAMES
from filmqnn.train.spec import RunOptions, TrainSpec, build_for, load_split, spec_from_recipe

USER_ERRORS = (
    DatasetError,
    ModelError,
    CheckpointError,
    UnsupportedLayerError,
    ValueError,
    FileNotFoundError,
)

ModelOpt = Annotated[str, typer.Option(help=f"model name: {', '.join(MODEL_NAMES)}")]
DataOpt = Annotated[str, typer.Option(help="data set: fashion-mnist, cifar10, imagenet, synthetic")]
DataRootOpt = Annotated[
    str | None,
    typer.Option(
        help="directory of the data set (cifar10, imagenet; fashion-mnist defaults to Debian's)"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print a machine-readable JSON summary")]
OutOpt = Annotated[Path, typer.Option(help="output directory (checkpoints, reports)")]
RatioOpt = Annotated[float, typer.Option(help="fraction r of 8-bit filters per layer")]
TmOpt = Annotated[
    int | None,
    typer.Option(
        help="output tile Tm: Tm8=max(1,round(r*Tm)) 8-bit filters per tile; omit for a plain ratio"
    ),
]
LimitOpt = Annotated[int | None, typer.Option(help="use only this many images (quick runs)")]
DeviceOpt = Annotated[
    str,
    typer.Option(
        help=f"{', '.join(DEVICE_CHOICES)}: auto is cuda when available, else cpu; under "
        "torchrun each process takes cuda:LOCAL_RANK (NCCL) or the CPU (gloo)"
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="DataLoader worker processes per process for image folders (default: "
        "min(8, CPUs per process - 1)); in-memory data sets need none",
    ),
]
AmpOpt = Annotated[
    str,
    typer.Option(
        help=f"FP32-phase autocast: {', '.join(AMP_CHOICES)} (fp16 on cuda only, with loss "
        "scaling); QAT steps always run in FP32"
    ),
]
PretrainedOpt = Annotated[
    Path | None,
    typer.Option(
        help="local torchvision state-dict file to start from (checked against the model; "
        "never downloaded)"
    ),
]
RecipeOpt = Annotated[
    str,
    typer.Option(
        help=f"training preset, one of {', '.join(RECIPE_NAMES)}; film-qnn is the paper's: SGD "
        "momentum 0.875, weight decay 1/32768, lr 0.256 per 256 images of global batch, 8 "
        "linear warm-up epochs then cosine, label smoothing 0.1; options given override it"
    ),
]
LrOpt = Annotated[
    float | None,
    typer.Option(help="peak learning rate (default: the recipe's; per 256 images for film-qnn)"),
]
MomentumOpt = Annotated[float | None, typer.Option(help="SGD momentum (default: the recipe's)")]
DecayOpt = Annotated[float | None, typer.Option(help="weight decay (default: the recipe's)")]
WarmupOpt = Annotated[
    float | None, typer.Option(help="linear warm-up epochs (default: the recipe's)")
]
SmoothingOpt = Annotated[
    float | None, typer.Option(help="label smoothing (default: the recipe's)")
]


def _set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def _quant_config(
    act_bits: int,
    act_mode: str,
    weight_scale: str,
    weight_clip: str,
    low_bits: int,
    high_bits: int,
    first_last_8bit: bool,
) -> QuantConfig:
    return QuantConfig(
        act_bits=act_bits,
        low_bits=low_bits,
        high_bits=high_bits,
        weight_scale=weight_scale,
        weight_clip=weight_clip,
        act_mode=act_mode,
        first_last_high=first_last_8bit,
    )


@app.command()
def train(
    model: ModelOpt = "resnet18_small",
    data: DataOpt = "fashion-mnist",
    data_root: DataRootOpt = None,
    epochs: int = typer.Option(2, min=1),
    batch_size: int = typer.Option(128, min=1, help="images per step and process"),
    recipe: RecipeOpt = "default",
    lr: LrOpt = None,
    momentum: MomentumOpt = None,
    weight_decay: DecayOpt = None,
    warmup_epochs: WarmupOpt = None,
    label_smoothing: SmoothingOpt = None,
    limit_train: LimitOpt = None,
    limit_test: LimitOpt = None,
    augment: bool = typer.Option(
        True, help="random shift-crop and flip (image folders: random-resized-crop and flip)"
    ),
    seed: int = 0,
    pretrained: PretrainedOpt = None,
    out: OutOpt = Path("runs/fp32"),
    resume: bool = typer.Option(False, help="continue from OUT/fp32.pt"),
    device: DeviceOpt = "auto",
    workers: WorkersOpt = None,
    amp: AmpOpt = "none",
    threads: int | None = typer.Option(None, help="torch CPU threads"),
    json_out: JsonOpt = False,
) -> None:
    """Train the FP32 baseline; OUT/fp32.pt is checkpointed every epoch (torchrun for DDP)."""
    _set_threads(threads)
    try:
        spec = spec_from_recipe(
            recipe,
            "fp32",
            model=model,
            data=data,
            data_root=data_root,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            label_smoothing=label_smoothing,
            limit_train=limit_train,
            limit_test=limit_test,
            augment=augment,
            seed=seed,
            pretrained=str(pretrained) if pretrained else None,
        )
        run = RunOptions(device=device, workers=workers, amp=amp)
        result = train_fp32(spec, out, resume=resume, progress=not json_out, run=run)
    except USER_ERRORS as exc:
        fail(str(exc))
    if "test" not in result:
        return
    if json_out:
        emit_json(result)
    else:
        typer.echo(
            f"FP32 {model} on {data}: test accuracy {100 * result['test']['accuracy']:.2f} %"
            f" ({result['test']['samples']} images); checkpoint {result['checkpoint']}"
        )


@app.command()
def assign(
    model: ModelOpt = "resnet18",
    ratio: RatioOpt = 0.05,
    tm: TmOpt = None,
    criterion: str = typer.Option("weight-error", help=f"one of {', '.join(CRITERIA)}"),
    seed: int = typer.Option(0, help="seed of the random criterion"),
    input_size: int | None = typer.Option(None, help="input side (default: the model's)"),
    num_classes: int = 1000,
    in_channels: int = 3,
    checkpoint: Path | None = typer.Option(None, help="FP32 checkpoint to rank real weights"),
    first_last_8bit: bool = typer.Option(True, help="first conv and last FC all 8-bit"),
    out: Path | None = typer.Option(None, help="also save the assignment JSON artifact here"),
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Assign 8-bit filters per layer without training and print the per-layer counts."""
    size = input_size or default_input_size(model)
    cfg = QuantConfig(first_last_high=first_last_8bit)
    try:
        dev = resolve_device(device)
        if checkpoint is not None:
            state = load_checkpoint(checkpoint, kind="fp32")
            model = state["spec"]["model"]
            qmodel = quantized_model_from_fp32(state, cfg)
            size, in_channels = state["data"]["image_size"], state["data"]["in_channels"]
        else:
            qmodel = convert(build_model(model, num_classes, in_channels, size), cfg)
        qmodel = to_device(qmodel, dev)
        layers = quant_layers(qmodel)
        batch = target = None
        if criterion in DATA_CRITERIA:
            gen = torch.Generator().manual_seed(0)
            batch = torch.randn(8, in_channels, size, size, generator=gen)
            target = torch.randint(0, layers[-1][1].num_filters, (8,), generator=gen)
            batch, target = to_device((batch, target), dev)
            calibrate(qmodel, [batch])
        scores = filter_scores(criterion, qmodel, layers, batch, target, seed=seed)
        fixed = {layers[0][0], layers[-1][0]} if first_last_8bit else set()
        result = assign_from_scores(layers, scores, ratio, tm, criterion, fixed)
    except USER_ERRORS as exc:
        fail(str(exc))
    if out is not None:
        result.save(out)
    d = result.to_dict()
    summary = {
        "model": model,
        "ratio": ratio,
        "tm": tm,
        "criterion": criterion,
        "layers": [
            {k: la[k] for k in ("name", "kind", "filters", "filters_8bit")} for la in d["layers"]
        ],
        "ratio_8bit": d["ratio_8bit"],
        "ratio_8bit_all_layers": d["ratio_8bit_all_layers"],
    }
    if json_out:
        emit_json(summary)
        return
    for la in summary["layers"]:
        typer.echo(f"{la['name']:40s} {la['kind']:9s} {la['filters_8bit']:5d} / {la['filters']}")
    typer.echo(
        f"8-bit filters: {summary['ratio_8bit']:.2%} of ranked layers, "
        f"{summary['ratio_8bit_all_layers']:.2%} of all"
    )


def _qspec(
    ratio: float,
    tm: int | None,
    criterion: str,
    mode: str,
    assign_epochs: int,
    calib_batches: int,
    assignment: Path | None,
    cfg: QuantConfig,
) -> QuantSpec:
    return QuantSpec(
        config=cfg,
        ratio=ratio,
        tm=tm,
        criterion=criterion,
        mode=mode,
        assign_epochs=assign_epochs,
        calib_batches=calib_batches,
        assignment_file=str(assignment) if assignment else None,
    )


def _fp32_checkpoint(
    checkpoint: Path | None,
    pretrained: Path | None,
    model: str | None,
    data: str,
    data_root: str | None,
    out: Path,
    device: str,
) -> Path:
    """The FP32 checkpoint to quantize: --checkpoint, or --pretrained imported as one."""
    if (checkpoint is None) == (pretrained is None):
        raise ValueError(
            "give either --checkpoint (an FP32 checkpoint from `filmqnn train`) or "
            "--pretrained PATH --model NAME (a torchvision state-dict file), not both or neither"
        )
    if checkpoint is not None:
        return checkpoint
    if model is None:
        raise ValueError(f"--pretrained needs --model NAME ({', '.join(MODEL_NAMES)})")
    spec = TrainSpec(model=model, data=data, data_root=data_root, pretrained=str(pretrained))
    return import_pretrained(spec, out / "fp32_pretrained.pt", init_distributed(device))


@app.command()
def quantize(
    checkpoint: Path | None = typer.Option(None, help="FP32 checkpoint from `filmqnn train`"),
    pretrained: PretrainedOpt = None,
    model: str | None = typer.Option(None, help="model name, with --pretrained"),
    data: DataOpt = "fashion-mnist",
    data_root: DataRootOpt = None,
    ratio: RatioOpt = 0.05,
    tm: TmOpt = None,
    criterion: str = typer.Option("output-error", help=f"one of {', '.join(CRITERIA)}"),
    mode: str = typer.Option("qat", help="qat (assignment + fine-tune) or ptq (calibrate only)"),
    epochs: int = typer.Option(2, min=0, help="QAT epochs in all"),
    assign_epochs: int = typer.Option(1, min=0, help="epochs that re-assign (Algorithm 1)"),
    calib_batches: int = typer.Option(4, min=1),
    assignment: Path | None = typer.Option(None, help="reuse a saved assignment JSON"),
    act_bits: int = 5,
    act_mode: str = typer.Option("lsq", help="lsq, pact or fixed (paper)"),
    weight_scale: str = typer.Option("per-filter", help="per-filter or per-layer (paper)"),
    weight_clip: str = typer.Option("mse", help="mse or max (paper)"),
    low_bits: int = 4,
    high_bits: int = 8,
    first_last_8bit: bool = True,
    batch_size: int = typer.Option(128, min=1, help="images per step and process"),
    recipe: RecipeOpt = "default",
    lr: LrOpt = None,
    momentum: MomentumOpt = None,
    weight_decay: DecayOpt = None,
    warmup_epochs: WarmupOpt = None,
    label_smoothing: SmoothingOpt = None,
    limit_train: LimitOpt = None,
    limit_test: LimitOpt = None,
    seed: int = typer.Option(
        0, help="QAT data order and augmentation, the calibration images, the random criterion"
    ),
    out: OutOpt = Path("runs/quant"),
    resume: bool = typer.Option(False, help="continue from OUT/quant.pt"),
    device: DeviceOpt = "auto",
    workers: WorkersOpt = None,
    threads: int | None = None,
    json_out: JsonOpt = False,
) -> None:
    """Quantize an FP32 checkpoint (or --pretrained weights) to intra-layer mixed precision."""
    _set_threads(threads)
    cfg = _quant_config(
        act_bits, act_mode, weight_scale, weight_clip, low_bits, high_bits, first_last_8bit
    )
    qspec = _qspec(ratio, tm, criterion, mode, assign_epochs, calib_batches, assignment, cfg)
    try:
        spec = spec_from_recipe(
            recipe,
            "qat",
            data=data,
            data_root=data_root,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            label_smoothing=label_smoothing,
            limit_train=limit_train,
            limit_test=limit_test,
            seed=seed,
        )
        fp32 = _fp32_checkpoint(checkpoint, pretrained, model, data, data_root, out, device)
        run = RunOptions(device=device, workers=workers)
        result = quantize_fp32(fp32, spec, qspec, out, resume=resume, progress=not json_out,
                               run=run)
    except USER_ERRORS as exc:
        fail(str(exc))
    if "test" not in result:
        return
    if json_out:
        emit_json(result)
    else:
        typer.echo(
            f"quantized ({result['ratio_8bit']:.1%} 8-bit filters, A{act_bits}): test "
            f"accuracy {100 * result['test']['accuracy']:.2f} %; {result['checkpoint']}, "
            f"{result['assignment']}"
        )


@app.command("evaluate")
def evaluate_cmd(
    checkpoint: Path = typer.Option(..., help="FP32 or quantized checkpoint"),
    data: str | None = typer.Option(None, help="data set (default: the checkpoint's)"),
    data_root: DataRootOpt = None,
    limit_test: LimitOpt = None,
    batch_size: int = typer.Option(500, min=1),
    device: DeviceOpt = "auto",
    workers: WorkersOpt = None,
    threads: int | None = None,
    json_out: JsonOpt = False,
) -> None:
    """Test accuracy of a checkpoint (fake-quantized for quantized checkpoints)."""
    _set_threads(threads)
    try:
        dev = resolve_device(device)
        state = load_checkpoint(checkpoint)
        if state["kind"] == "quant":
            model, _ = load_quantized(checkpoint)
            spec = TrainSpec.from_dict(state["spec"])
        else:
            spec = TrainSpec.from_dict(state["spec"])
            model = build_for(spec, load_split(spec, "test"))
            model.load_state_dict(state["model_state"])
        spec = TrainSpec.from_dict(
            {
                **spec.to_dict(),
                "data": data or spec.data,
                "data_root": data_root or spec.data_root,
                "limit_test": limit_test,
            }
        )
        test = load_split(spec, "test").dataset
        result = evaluate(
            to_device(model, dev),
            test,
            batch_size=batch_size,
            progress=not json_out,
            workers=auto_workers(test, workers),
        )
    except USER_ERRORS as exc:
        fail(str(exc))
    result.update(kind=state["kind"], model=spec.model, data=spec.data, device=str(dev))
    if json_out:
        emit_json(result)
    else:
        typer.echo(
            f"{state['kind']} {spec.model} on {spec.data}: "
            f"{100 * result['accuracy']:.2f} % ({result['samples']} images)"
        )


def _fp32_for(
    out: Path,
    spec: TrainSpec,
    checkpoint: Path | None,
    run: RunOptions,
    progress: bool,
) -> tuple[Path, dict | None]:
    """The FP32 checkpoint of an experiment and its test result (None on ranks other than 0).

    --checkpoint is evaluated; --pretrained with 0 epochs is imported and evaluated as it is;
    otherwise the FP32 model is trained (from --pretrained weights when given), resumably.
    """
    if checkpoint is not None or (spec.pretrained and spec.epochs == 0):
        dist = init_distributed(run.device)
        if checkpoint is None:
            checkpoint = import_pretrained(spec, out / "fp32" / "pretrained.pt", dist)
        if not dist.is_main:
            return checkpoint, None
        state = load_checkpoint(checkpoint, kind="fp32")
        fspec = TrainSpec.from_dict({**state["spec"], "limit_test": spec.limit_test})
        test = load_split(fspec, "test").dataset
        m = to_device(build_for(fspec, load_split(fspec, "test")), dist.device)
        m.load_state_dict(state["model_state"])
        return checkpoint, evaluate(
            m, test, progress=progress, workers=auto_workers(test, run.workers)
        )
    result = train_fp32(spec, out / "fp32", resume=True, progress=progress, run=run)
    return Path(result["checkpoint"]), result.get("test")


@app.command()
def compare(
    model: ModelOpt = "resnet18_small",
    data: DataOpt = "fashion-mnist",
    data_root: DataRootOpt = None,
    checkpoint: Path | None = typer.Option(None, help="FP32 checkpoint (else train one)"),
    pretrained: PretrainedOpt = None,
    epochs: int = typer.Option(
        2, min=0, help="FP32 epochs when training (0: use --pretrained as it is)"
    ),
    qat_epochs: int = typer.Option(2, min=0),
    assign_epochs: int = 1,
    ratio: RatioOpt = 0.05,
    tm: TmOpt = None,
    criterion: str = "output-error",
    act_bits: int = 5,
    batch_size: int = typer.Option(128, min=1, help="images per step and process"),
    recipe: RecipeOpt = "default",
    lr: float | None = typer.Option(
        None, help="QAT peak learning rate (default: the recipe's; 0.001 for default)"
    ),
    limit_train: LimitOpt = None,
    limit_test: LimitOpt = None,
    seed: int = typer.Option(
        0, help="seed of the quantized runs (data order, augmentation, calibration images)"
    ),
    out: OutOpt = Path("runs/compare"),
    device: DeviceOpt = "auto",
    workers: WorkersOpt = None,
    amp: AmpOpt = "none",
    threads: int | None = None,
    json_out: JsonOpt = False,
) -> None:
    """FP32 vs W8A5, W4A5 and mixed R% A5 on one model: the accuracy table (resumable)."""
    _set_threads(threads)
    progress = not json_out
    try:
        if epochs == 0 and checkpoint is None and pretrained is None:
            raise ValueError("--epochs 0 needs --pretrained PATH (or --checkpoint)")
        fp32_spec = spec_from_recipe(
            recipe,
            "fp32",
            model=model,
            data=data,
            data_root=data_root,
            epochs=epochs,
            batch_size=batch_size,
            limit_train=limit_train,
            limit_test=limit_test,
            pretrained=str(pretrained) if pretrained else None,
        )
        run = RunOptions(device=device, workers=workers, amp=amp)
        fp32_ckpt, fp32_test = _fp32_for(out, fp32_spec, checkpoint, run, progress)
        base = _qspec(
            ratio, tm, criterion, "qat", assign_epochs, 4, None, QuantConfig(act_bits=act_bits)
        )
        spec = spec_from_recipe(
            recipe,
            "qat",
            data=data,
            data_root=data_root,
            epochs=qat_epochs,
            batch_size=batch_size,
            lr=lr,
            limit_train=limit_train,
            limit_test=limit_test,
            seed=seed,
        )
        variants = run_variants(fp32_ckpt, spec, comparison_variants(base), out, progress, run)
        if fp32_test is None or not is_main_process():
            return  # ranks other than 0 train; rank 0 reports
        rows = [fp32_row(fp32_ckpt, fp32_test["accuracy"], fp32_test["samples"]), *variants]
    except USER_ERRORS as exc:
        fail(str(exc))
    model_name = rows[0]["model"]
    md = comparison_markdown(rows, f"{model_name} on {data}")
    write_report(out, "compare", rows, md, {"model": model_name, "data": data})
    if json_out:
        emit_json({"model": model_name, "data": data, "rows": rows})
    else:
        typer.echo(md + f"\nwritten: {out / 'compare.md'}, {out / 'compare.json'}")


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) / 100 for x in text.split(","))


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"{what}: give comma-separated integers, got {text!r}") from None


def _names(text: str, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [x for x in names if x not in known]
    if unknown or not names:
        raise ValueError(f"{what}: unknown {unknown or text!r}; use some of {', '.join(known)}")
    return names


@app.command()
def study(
    checkpoint: Path = typer.Option(..., help="FP32 checkpoint of the model to study"),
    data: DataOpt = "fashion-mnist",
    data_root: DataRootOpt = None,
    ratios: str = typer.Option(
        ",".join(f"{100 * r:g}" for r in STUDY_RATIOS), help="8-bit ratios in percent"
    ),
    act_bits: str = typer.Option(",".join(map(str, STUDY_ACT_BITS)), help="activation bits"),
    low_bits: str = typer.Option(
        ",".join(map(str, STUDY_LOW_BITS)),
        help="low weight bit widths to sweep, e.g. 2,3,4 (the high one stays --high-bits)",
    ),
    high_bits: int = typer.Option(8, help="weight bits of the high-precision filters"),
    criteria: str = typer.Option(
        ",".join(STUDY_CRITERIA),
        "--criteria",
        "--criterion",
        help=f"ranking criteria to compare, comma-separated: {', '.join(CRITERIA)} (random is "
        "the seeded control)",
    ),
    seeds: int = typer.Option(
        1, min=1, help="runs per grid point (seeds 0..N-1: calibration images, QAT data order, "
        "random ranking); the table gives mean and standard deviation"
    ),
    qat_epochs: int = typer.Option(1, min=0),
    assign_epochs: int | None = typer.Option(
        None, min=0, help="epochs that re-assign (default: 1 when QAT epochs > 0)"
    ),
    mode: str = typer.Option(
        "qat", "--mode", "--modes", help="qat, ptq, or both comma-separated (ptq,qat)"
    ),
    qat_low_bits: str | None = typer.Option(
        None, help="run QAT cells only for these low bit widths (default: all of --low-bits)"
    ),
    tm: TmOpt = None,
    batch_size: int = typer.Option(128, min=1, help="images per step and process"),
    recipe: RecipeOpt = "default",
    lr: LrOpt = None,
    limit_train: LimitOpt = None,
    limit_test: LimitOpt = None,
    out: OutOpt = Path("runs/study"),
    device: DeviceOpt = "auto",
    workers: WorkersOpt = None,
    threads: int | None = None,
    json_out: JsonOpt = False,
) -> None:
    """Accuracy against the 8-bit ratio R, swept over activation bits, low weight bits,
    criteria, PTQ/QAT and seeds: table (MD+JSON) and one PNG. Finished cells are kept, so a
    rerun resumes."""
    _set_threads(threads)
    try:
        r = _floats(ratios)
        a = _ints(act_bits, "--act-bits")
        lows = _ints(low_bits, "--low-bits")
        qat_lows = _ints(qat_low_bits, "--qat-low-bits") if qat_low_bits else None
        crits = _names(criteria, CRITERIA, "--criteria")
        modes = _names(mode, ("ptq", "qat"), "--mode")
        phases = min(1, qat_epochs) if assign_epochs is None else assign_epochs
        base = _qspec(0.05, tm, crits[0], modes[0], phases, 4, None,
                      QuantConfig(high_bits=high_bits))
        spec = spec_from_recipe(
            recipe,
            "qat",
            data=data,
            data_root=data_root,
            epochs=qat_epochs,
            batch_size=batch_size,
            lr=lr,
            limit_train=limit_train,
            limit_test=limit_test,
        )
        cells = study_cells(modes, a, lows, crits, r, seeds, high_bits, qat_lows)
        run = RunOptions(device=device, workers=workers)
        rows = run_study(checkpoint, spec, base, cells, out, not json_out, run)
        if not is_main_process():
            return
        model_name = load_checkpoint(checkpoint, kind="fp32")["spec"]["model"]
    except USER_ERRORS as exc:
        fail(str(exc))
    title = f"{model_name} on {data}: accuracy vs 8-bit filter ratio R"
    summary = study_summary(rows)
    md = study_grid_markdown(summary, title)
    paired = study_paired_markdown(rows)
    if paired:
        md += "\n" + paired
    extra = {"model": model_name, "data": data, "summary": summary}
    write_report(out, "study", rows, md, extra)
    study_grid_plot(summary, out / "study.png", title)
    if json_out:
        emit_json({**extra, "rows": rows, "plot": str(out / "study.png")})
    else:
        typer.echo(md + f"\nwritten: {out / 'study.md'}, {out / 'study.json'}, {out / 'study.png'}")
