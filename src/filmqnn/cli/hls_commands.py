"""`filmqnn hls` (generate the Vitis HLS project) and `filmqnn csim` (C-simulate it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from filmqnn.cli.app import app, emit_json, fail
from filmqnn.cli.quant_commands import DataRootOpt, JsonOpt


def _explore_design(artifact: Path, board: str, opts) -> dict:
    """explore --artifact's best design (the kernel's modes ``opts``) as `explore --json`
    prints it."""
    from filmqnn.hw.artifact_layers import artifact_layers, artifact_tiling
    from filmqnn.hw.devices import load_board
    from filmqnn.hw.dse import explore
    from filmqnn.hw.report import summary

    b = load_board(board)
    tiling = artifact_tiling(artifact)
    res = explore(artifact_layers(artifact), b, None, tiling["tm8"] / tiling["tm"], "mixed",
                  None, opts)
    return summary(res, b, artifact.name)


@app.command("hls")
def hls_cmd(
    artifact: Annotated[Path, typer.Option(help="artifact directory (`filmqnn export`)")],
    out: Annotated[Path, typer.Option(help="project directory to write (replaced atomically)")],
    design: Annotated[Path | None, typer.Option(
        help="design JSON of `filmqnn explore --json` (the artifact must be exported with it)")]
    = None,
    board: Annotated[str | None, typer.Option(
        help="instead of --design: run explore --artifact on this board (the artifact's tiling "
        "must then match the design it finds)")] = None,
    off: Annotated[list[str] | None, typer.Option(
        "--off", help="switch a kernel mode off (repeat, or comma-separate), e.g. "
        "im2col_onchip, first_im2col, split8, multi_chunk, input_reuse, fm_store; default: "
        "every mode the kernel has, less those the --design was explored without")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Write a Vitis HLS project (kernel, C-sim library, DDR image, tcl) for an artifact."""
    from dataclasses import replace

    from filmqnn.hls.project import read_design, write_project
    from filmqnn.hw.design import IMPLEMENTED, KERNEL_MODES
    from filmqnn.hw.devices import load_board
    from filmqnn.lower.artifact import load_artifact

    if (design is None) == (board is None):
        fail("give exactly one of --design FILE (from `filmqnn explore --json`) or --board B")
    switchable = sorted(KERNEL_MODES - {"layer_queue"})  # the queue is how the kernel runs
    off_modes = [m.strip() for item in off or [] for m in item.split(",") if m.strip()]
    unknown = [m for m in off_modes if m not in switchable]
    if unknown:
        fail(f"--off takes the kernel's modes; unknown: {', '.join(unknown)}. The modes: "
             f"{', '.join(switchable)}")
    opts = replace(IMPLEMENTED, **{m: False for m in off_modes})
    try:
        graph = load_artifact(artifact)
        if design is not None:
            d, b, explored_off = read_design(design)
            opts = replace(opts, **{m: False for m in explored_off})
        else:
            found = _explore_design(artifact, board, opts)
            d, b = found["design"], load_board(board)
            opts = replace(opts, **{m: False for m, on in found["engine"].items() if not on})
        result = write_project(graph, d, b, out, artifact, opts=opts)
    except ValueError as exc:  # FitError, ProjectError, ArtifactError, a bad board
        fail(str(exc))
    if json_out:
        emit_json(result)
        return
    e = result["engine"]
    typer.echo(f"wrote {out}: {result['layers']} engine layers on {result['board']} "
               f"(Tm={e['Tm']} Tm8={e['Tm8']} Tn={e['Tn']} Tr={e['Tr']} Tc={e['Tc']} G={e['G']}, "
               f"{e['ports']} AXI ports), DDR image {result['ddr_bytes']} bytes")


@app.command("csim")
def csim_cmd(
    project: Annotated[Path, typer.Option(help="project directory (`filmqnn hls`)")],
    data: Annotated[str | None, typer.Option(help="data set of test images (fashion-mnist, ...)")]
    = None,
    samples: Annotated[int, typer.Option(help="test images with --data")] = 10,
    random: Annotated[int | None, typer.Option(
        help="instead of --data: this many random int8 frames")] = None,
    seed: int = 0,
    jobs: Annotated[int, typer.Option(
        help="processes sharing the frames (each runs its own C-sim library)")] = 1,
    data_root: DataRootOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """C-simulate the generated kernel frame by frame against the integer reference; report
    mismatches and the cycles the code's loops take beside the model's. Exit 1 on a mismatch."""
    from filmqnn.hls.compare import compare
    from filmqnn.hls.csim import CsimError
    from filmqnn.hls.project import ProjectError, load_project

    if (data is None) == (random is None):
        fail("give exactly one of --data NAME (with --samples N) or --random N")
    n = random if random is not None else samples
    if n < 1:
        fail("the number of frames must be >= 1")
    if jobs < 1:
        fail("--jobs must be >= 1")
    try:
        meta = load_project(project)
        shape = tuple(meta["input_shape"])
        if random is not None:
            frames = np.random.default_rng(seed).integers(-128, 128, size=(n, *shape))
        else:
            import torch

            from filmqnn.data import load_dataset
            from filmqnn.lower.requant import quantize_input

            info = load_dataset(data, "test", root=data_root, limit=n)
            x = torch.stack([info.dataset[i][0] for i in range(min(n, len(info.dataset)))])
            if tuple(x.shape[1:]) != shape:
                raise ValueError(f"data set {data} has images of shape {tuple(x.shape[1:])}; "
                                 f"the project's network takes {shape}")
            frames = quantize_input(x, meta["input_scale"]).numpy()
        result = compare(project, frames, progress=not json_out, jobs=jobs)
    except (ProjectError, CsimError, ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    if json_out:
        emit_json(result)
    else:
        c = result["cycles"]
        typer.echo(f"compared {result['compared']} frames: {result['mismatches']} mismatches; "
                   f"{c['total']} cycles per frame counted in C-sim ({result['fps']:.1f} FPS at "
                   f"{result['clock_mhz']:g} MHz), model {c['model_total']}; largest per-layer "
                   f"difference {100 * result['max_layer_error']:.1f} %; as the HLS code is "
                   f"written {c['as_written_total']} cycles ({result['as_written_fps']:.1f} FPS)")
    if result["mismatches"]:
        raise typer.Exit(1)
