"""CLI commands of the integer deployment: export (artifact), run (accuracy), verify (bit-exact)."""

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from filmqnn.cli.app import app, emit_json, fail
from filmqnn.cli.quant_commands import USER_ERRORS, DataRootOpt, JsonOpt, LimitOpt
from filmqnn.data import load_dataset
from filmqnn.lower.artifact import ArtifactError, load_artifact
from filmqnn.lower.deploy import to_deploy
from filmqnn.lower.export import export_checkpoint, lower_checkpoint
from filmqnn.lower.graph import IntGraph
from filmqnn.lower.lowering import LoweringError
from filmqnn.lower.reordering import ReorderError
from filmqnn.ref.evaluate import compare_logits, evaluate_artifact
from filmqnn.ref.executor import ReferenceExecutor

DEPLOY_ERRORS = (*USER_ERRORS, ArtifactError, LoweringError, ReorderError, ValueError)
ArtifactOpt = Annotated[Path, typer.Option(help="artifact directory written by `filmqnn export`")]
CkptOpt = Annotated[Path, typer.Option(help="quantized checkpoint (quant.pt of `quantize`)")]


def _reference(graph: IntGraph, artifact: Path, project: Path | None) -> Any:
    return ReferenceExecutor(graph)


def _onnxruntime(graph: IntGraph, artifact: Path, project: Path | None) -> Any:
    from filmqnn.onnx_export.runtime import OnnxRuntimeExecutor

    return OnnxRuntimeExecutor(graph)


def _csim(graph: IntGraph, artifact: Path, project: Path | None) -> Any:
    if project is None:
        raise ValueError("--device csim needs --project DIR: the HLS project generated from "
                         "the artifact (`filmqnn hls --artifact ... --out DIR`)")
    from filmqnn.pynq.csim_executor import CsimExecutor

    return CsimExecutor(graph, artifact, project)


#: `filmqnn run --device`: (label, executor of a checked graph, its artifact directory and
#: --project) per device. An executor has ReferenceExecutor's interface (graph, logits) and
#: may add a `report()` of its own to the result.
DEVICES: dict[str, tuple[str, Callable[[IntGraph, Path, Path | None], Any]]] = {
    "reference": ("integer reference", _reference),
    "onnxruntime": ("ONNX Runtime (CPU)", _onnxruntime),
    "csim": ("C-simulation of the HLS kernel through the board driver", _csim),
}
Device = Enum("Device", {name: name for name in DEVICES}, type=str)
DEFAULT_DEVICE = Device("reference")


def _check_input(executor: ReferenceExecutor, images: torch.Tensor, data: str) -> None:
    want = tuple(executor.graph.tensors[executor.graph.input].shape)
    if tuple(images.shape[1:]) != want:
        raise ValueError(
            f"data set {data} has images of shape {tuple(images.shape[1:])}, the artifact "
            f"expects {want}; use the data set the model was trained on"
        )


def _tiling_of_design(path: Path) -> str:
    """The --tiling text of a design JSON (`filmqnn explore --json`): Tm, Tm8, Tn, G, AXI."""
    from filmqnn.hls.project import read_design

    d, board, _ = read_design(path)
    return (f"tm={d['Tm']},tm8={d['Tm8']},tn={d['Tn']},g={d['G']},"
            f"axi_bits={board.axi_width_bits}")


@app.command("export")
def export_cmd(
    checkpoint: CkptOpt,
    out: Annotated[Path, typer.Option(help="artifact directory to write (replaced atomically)")],
    tiling: Annotated[
        str | None,
        typer.Option(help="tm=32,tm8=2,tn=8,g=8,axi_bits=128 (omitted keys: defaults; "
                     "tm8 from the ratio; tm from the assignment's --tm)"),
    ] = None,
    reorder: Annotated[bool, typer.Option(help="reorder filters into tile slots")] = True,
    design: Annotated[Path | None, typer.Option(
        help="design JSON of `filmqnn explore --json`: lay the artifact out for its tiling "
        "(instead of --tiling), as `filmqnn hls` needs")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Lower a quantized checkpoint to a packed, reordered integer artifact."""
    if design is not None and tiling:
        fail("give --design or --tiling, not both")
    try:
        if design is not None:
            tiling = _tiling_of_design(design)
        result = export_checkpoint(checkpoint, out, tiling, reorder)
    except DEPLOY_ERRORS as exc:
        fail(str(exc))
    if json_out:
        emit_json(result)
        return
    t = result["total_bytes"]
    typer.echo(
        f"wrote {out} ({result['nodes']} nodes); DDR bytes per inference: {t['packed']} packed, "
        f"{t['byte_aligned']} byte-aligned ({t['ratio']}x); index storage "
        f"{result['index_bits']} bits"
    )


@app.command("run")
def run_cmd(
    artifact: ArtifactOpt,
    data: Annotated[str, typer.Option(help="fashion-mnist, cifar10, imagenet, synthetic")],
    data_root: DataRootOpt = None,
    limit_test: LimitOpt = None,
    batch_size: int = 250,
    device: Annotated[Device, typer.Option(
        help="executor: the integer reference, the integer ONNX model on ONNX Runtime's CPU "
        "execution provider, or the HLS kernel's C-simulation through the board driver "
        "(csim: needs --project; also counts frames whose int logits differ from the "
        "reference's)")] = DEFAULT_DEVICE,
    project: Annotated[Path | None, typer.Option(
        help="HLS project of the artifact (`filmqnn hls`), for --device csim")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Accuracy of an artifact on a test set: integer reference, ONNX Runtime or C-sim."""
    from filmqnn.pynq.device import DeviceError

    label, make_executor = DEVICES[device.value]
    if project is not None and device.value != "csim":
        fail("--project is for --device csim")
    try:
        executor = make_executor(load_artifact(artifact), artifact, project)
        info = load_dataset(data, "test", root=data_root, limit=limit_test)
        _check_input(executor, info.dataset[0][0][None], data)
        result = evaluate_artifact(executor, info.dataset, batch_size, progress=not json_out)
    except (*DEPLOY_ERRORS, DeviceError) as exc:
        fail(str(exc))
    result.update(artifact=str(artifact), data=data, device=device.value)
    if hasattr(executor, "report"):
        result.update(executor.report())
    if json_out:
        emit_json(result)
    else:
        typer.echo(f"{label} on {data}: {100 * result['accuracy']:.2f} % "
                   f"({result['samples']} images)")
        if "mismatches" in result:
            typer.echo(f"{result['compared']} frames compared with the integer reference: "
                       f"{result['mismatches']} with different int logits; "
                       f"{result['images_per_s']:.2f} images/s")
    if result.get("mismatches"):
        raise typer.Exit(1)


@app.command("verify")
def verify_cmd(
    checkpoint: CkptOpt,
    artifact: ArtifactOpt,
    samples: Annotated[int, typer.Option(help="test images to compare")] = 500,
    data: Annotated[str | None, typer.Option(help="data set (default: the checkpoint's)")] = None,
    data_root: DataRootOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compare deploy-mode torch (from the checkpoint) with the integer reference (artifact)."""
    if samples < 1:
        fail("--samples must be >= 1")
    try:
        graph, state = lower_checkpoint(checkpoint)
        executor = ReferenceExecutor(load_artifact(artifact))
        theirs = [n.name for n in executor.graph.nodes]
        if theirs != [n.name for n in graph.nodes]:
            raise ValueError(
                f"artifact {artifact} was exported from another model "
                f"({executor.graph.meta.get('model')!r}, {executor.graph.meta.get('checkpoint')}), "
                f"not from {checkpoint} ({graph.meta['model']!r}); export this checkpoint first"
            )
        name = data or state["spec"]["data"]
        info = load_dataset(name, "test", root=data_root or state["spec"]["data_root"],
                            limit=samples)
        _check_input(executor, info.dataset[0][0][None], name)
        result = compare_logits(to_deploy(graph), executor, info.dataset, progress=not json_out)
    except DEPLOY_ERRORS as exc:
        fail(str(exc))
    result.update(checkpoint=str(checkpoint), artifact=str(artifact), data=name)
    if json_out:
        emit_json(result)
    else:
        typer.echo(f"compared {result['compared']} images: {result['mismatches']} with different "
                   "integer logits")
    if result["mismatches"]:
        raise typer.Exit(1)
