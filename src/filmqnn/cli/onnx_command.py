"""`filmqnn onnx`: the artifact as an integer-exact ONNX model (and a QDQ float view)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from filmqnn.cli.app import app, emit_json, fail
from filmqnn.cli.quant_commands import JsonOpt


@app.command("onnx")
def onnx_cmd(
    artifact: Annotated[Path, typer.Option(help="artifact directory written by `filmqnn export`")],
    out: Annotated[Path, typer.Option(
        help="integer ONNX model to write, e.g. model.int.onnx (replaced atomically)")],
    qdq: Annotated[Path | None, typer.Option(
        help="also write the QDQ float view (QuantizeLinear / DequantizeLinear) here")] = None,
    check: Annotated[bool, typer.Option(
        help="before writing, run ONNX Runtime against the reference executor on random and "
        "extreme frames and refuse on any difference")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Export an artifact as ONNX (opset 17, standard ops) that ONNX Runtime runs bit-exactly."""
    from filmqnn.lower.artifact import ArtifactError
    from filmqnn.onnx_export.export import export_onnx
    from filmqnn.onnx_export.graph import OnnxExportError

    try:
        result = export_onnx(artifact, out, qdq, check)
    except (ArtifactError, OnnxExportError, OSError) as exc:
        fail(str(exc))
    if json_out:
        emit_json(result)
        return
    checked = ""
    if "check" in result:
        c = result["check"]
        checked = f"; ONNX Runtime == reference on {c['frames']} frames"
    typer.echo(f"wrote {result['out']['path']} ({result['out']['nodes']} ONNX nodes, "
               f"{result['out']['bytes']} bytes){checked}")
    if "qdq" in result:
        typer.echo(f"wrote {result['qdq']['path']} (QDQ view, {result['qdq']['nodes']} nodes)")
