"""`filmqnn deploy`: the bundle a PYNQ board runs (DDR image, driver, run.py, bitstream)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from filmqnn.cli.app import app, emit_json, fail
from filmqnn.cli.quant_commands import DataRootOpt, JsonOpt


@app.command("deploy")
def deploy_cmd(
    artifact: Annotated[Path, typer.Option(help="artifact directory (`filmqnn export`)")],
    project: Annotated[Path, typer.Option(
        help="HLS project generated from that artifact (`filmqnn hls`)")],
    out: Annotated[Path, typer.Option(help="bundle directory to write (replaced atomically)")],
    bitstream: Annotated[Path | None, typer.Option(
        help="filmqnn.bit of the Vivado step (its .hwh beside it); default: "
        "<project>/vivado/filmqnn.bit when it exists")] = None,
    samples: Annotated[int, typer.Option(
        help="test images (with labels and the reference's int logits) for the board's "
        "self-test; 0: none")] = 16,
    data_root: DataRootOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write the bundle to copy to the board: DDR image, metadata, the numpy-only driver,
    run.py, README, and the bitstream + .hwh where they have been built."""
    from filmqnn.data.errors import DatasetError
    from filmqnn.hls.project import ProjectError
    from filmqnn.lower.manifest import ArtifactError
    from filmqnn.pynq.deploy import write_bundle

    if samples < 0:
        fail("--samples must be >= 0")
    try:
        result = write_bundle(artifact, project, out, bitstream, samples, data_root)
    except (ProjectError, ArtifactError, DatasetError, ValueError, OSError) as exc:
        fail(str(exc))
    if json_out:
        emit_json(result)
        return
    typer.echo(f"wrote {out}: {len(result['files'])} files, DDR image {result['ddr_bytes']} "
               f"bytes, kernel {result['design_id'][:12]}, {result['samples']} sample images")
    if result["missing"]:
        typer.echo(f"no bitstream yet: build {' and '.join(result['missing'])} with `vitis_hls "
                   f"-f run_hls.tcl` and `vivado -mode batch -source vivado/<board>_bd.tcl` in "
                   f"{project}, then rerun deploy (docs/deployment_board.md)", err=True)
