"""`filmqnn explore` (design-space exploration) and `filmqnn boards` (the board table)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from filmqnn.cli.app import app, emit_json, fail


def _table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text without rich
        typer.echo(title)
        typer.echo("  ".join(header))
        for r in rows:
            typer.echo("  ".join(str(c) for c in r))
        return
    t = Table(title=title)
    for h in header:
        t.add_column(h)
    for r in rows:
        t.add_row(*(str(c) for c in r))
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(t)


@app.command("boards")
def boards_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the built-in boards and their resources (figures cited in hw/boards/*.json)."""
    from filmqnn.hw.devices import list_boards, load_board

    boards = [load_board(n) for n in list_boards()]
    if as_json:
        emit_json({"boards": [b.to_dict() for b in boards]})
        return
    rows = [
        [b.name, b.part, b.family, b.lut, b.ff, f"{b.dsp} {b.dsp_kind}", b.bram18k, b.uram,
         b.axi_width_bits, f"{b.ddr_peak_gbps:g}", f"{b.default_clock_mhz:g}"]
        for b in boards
    ]
    _table("boards", ["name", "part", "family", "LUT", "FF", "DSP", "BRAM18K", "URAM",
                      "AXI bits", "DDR GB/s", "MHz"], rows)


@app.command("explore")
def explore_command(
    model: str = typer.Option(None, "--model", help="resnet18 | resnet50 | mobilenet_v2"),
    artifact: Path = typer.Option(
        None, "--artifact",
        help="Explore the model of an integer artifact (`filmqnn export`) instead of --model: "
        "its layer shapes and all-8-bit layers (--first-last-8bit does not apply).",
    ),
    board: str = typer.Option(..., "--board", help="Board name or a board JSON file."),
    clock_mhz: float = typer.Option(None, "--clock-mhz", help="Clock (default: the board's)."),
    ratio: float = typer.Option(0.05, "--ratio", help="Fraction of 8-bit filters (mixed)."),
    weights: str = typer.Option("mixed", "--weights", help="mixed | w4 | w8 (--model only)."),
    input_size: int = typer.Option(
        None, "--input-size", help="Square input resolution (--model only; default 224)."
    ),
    first_last_8bit: bool = typer.Option(
        True, help="First conv and last FC all 8-bit, as `quantize --first-last-8bit` makes them."
    ),
    lut_limit: float = typer.Option(0.85, "--lut-limit", help="Max LUT fraction."),
    dsp_limit: float = typer.Option(1.0, "--dsp-limit", help="Max DSP fraction."),
    bram_limit: float = typer.Option(0.90, "--bram-limit", help="Max BRAM18K fraction."),
    off: list[str] = typer.Option(
        [], "--off",
        help="Switch an engine mode off (repeat, or comma-separate): any field of "
        "EngineOptions, e.g. im2col_onchip, split8, dw_taps, multi_chunk (`filmqnn explore "
        "--off help` lists them); the JSON's engine records it and `filmqnn hls --design` "
        "builds the kernel without it.",
    ),
    modes: str = typer.Option(
        "implemented", "--modes",
        help="implemented: only the engine modes the generated HLS kernel has (its designs are "
        "what `filmqnn hls` builds); all: every modelled mode, a what-if.",
    ),
    out: Path = typer.Option(None, "--out", help="Write report.md and PNGs here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Find the fastest modelled design point of a model on a board (DESIGN.md §5)."""
    from filmqnn.hw.design import IMPLEMENTED, EngineOptions, mode_table
    from filmqnn.hw.devices import load_board
    from filmqnn.hw.dse import InfeasibleError, explore
    from filmqnn.hw.layers import TABLE_SIZE, model_layers
    from filmqnn.hw.report import summary, write_report

    if (model is None) == (artifact is None):
        fail("give exactly one of --model NAME (a built-in model) or --artifact DIR "
             "(an integer artifact written by `filmqnn export`)")
    if artifact is not None and weights != "mixed":
        fail("--weights does not apply with --artifact: the artifact's bit widths decide which "
             "layers are all 8-bit; its mixed layers use --ratio's Tm8 rule")
    if artifact is not None and input_size is not None:
        fail("--input-size does not apply with --artifact: the artifact fixes its input shape")
    if weights not in ("mixed", "w4", "w8"):
        fail(f"--weights must be mixed, w4 or w8, got {weights!r}")
    if weights == "mixed" and not 0.0 < ratio < 1.0:
        fail(f"--ratio must lie in (0, 1) for mixed weights, got {ratio}")
    if input_size is None:
        input_size = TABLE_SIZE
    if input_size < 32:
        fail("--input-size must be at least 32")
    try:
        b = load_board(board)
    except ValueError as e:
        fail(str(e))
    try:
        if artifact is not None:
            from filmqnn.hw.artifact_layers import artifact_layers

            layers = artifact_layers(artifact)
            model = artifact.resolve().name
        else:
            layers = model_layers(model, input_size, first_last_8bit)
    except ValueError as e:
        fail(str(e))
    if modes not in ("implemented", "all"):
        fail(f"--modes must be implemented or all, got {modes!r}")
    names = list(EngineOptions().to_dict())
    off_modes = [m.strip() for item in off for m in item.split(",") if m.strip()]
    unknown = [m for m in off_modes if m not in names]
    if unknown:
        fail(f"--off takes engine modes; unknown: {', '.join(unknown)}. The modes: "
             f"{', '.join(names)}")
    if modes == "implemented" and "layer_queue" in off_modes:
        fail("the generated kernel always runs from its descriptor queue: --off layer_queue is "
             "a what-if of --modes all")
    base = IMPLEMENTED if modes == "implemented" else EngineOptions()
    opts = replace(base, **{m: False for m in off_modes})
    limits = {"lut": lut_limit, "dsp": dsp_limit, "bram18k": bram_limit}
    try:
        res = explore(layers, b, clock_mhz, ratio, weights, limits, opts)
    except InfeasibleError as e:
        fail(f"{model} cannot fit: {e}")
    except ValueError as e:
        fail(str(e))
    s = summary(res, b, model)
    s["option_set"] = modes
    s["modes"] = mode_table(res.options)
    if artifact is not None:  # next to "model" in the JSON
        s = {"model": s.pop("model"), "artifact": str(artifact), **s}
    if out is not None:
        s["files"] = [str(p) for p in write_report(res, b, model, out)]
    if as_json:
        emit_json(s)
        return
    d = res.best
    typer.echo(
        f"{model} on {b.name} @ {d.clock_mhz:g} MHz ({weights}): {s['fps']:.1f} FPS modelled, "
        f"Tm={d.Tm} Tm8={d.Tm8} Tn={d.Tn} Tr={d.Tr} Tc={d.Tc} G={d.G} ports={d.ports} "
        f"buf={d.buf}; no fitting design exceeds {s['fps_ceiling']:.1f} FPS; pessimistic "
        f"assumptions (hw/fps_range.py): {s['fps_range']['pessimistic']:.1f} FPS"
    )
    _table("resources (modelled)", ["resource", "used", "limit", "device"],
           [[k, s["resources"][k], s["limits"][k], getattr(b, k)]
            for k in ("lut", "ff", "dsp", "bram18k")])
    _table("layers (modelled)", ["layer", "kind", "cycles", "bound"],
           [[lp["name"], lp["kind"], lp["cycles"], lp["bound"]] for lp in s["layers"]])
