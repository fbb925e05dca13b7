"""`filmqnn dsp-pack`: show a DSP packing scheme and check it bit-exactly."""

from __future__ import annotations

import typer

from filmqnn.cli.app import app, emit_json, fail
from filmqnn.hw.dsp_packing import (
    DSP_KINDS,
    PackingScheme,
    best_packing,
    check_scheme,
    get_scheme,
)


def _describe(s: PackingScheme) -> str:
    lines = [
        f"scheme            {s.name} ({s.dsp}, W{s.wbits}A{s.abits}, "
        f"{'signed' if s.signed_act else 'unsigned'} activations)",
        f"products_per_dsp  {s.products_per_dsp}",
        f"accumulate_depth  {s.accumulate_depth}",
        f"loop              {s.loop}",
        f"weights   (range {s.weight_range[0]}..{s.weight_range[1]}): "
        + ", ".join(f"w{i}@{t.port}<<{t.offset}" for i, t in enumerate(s.weight_terms)),
        f"activations (range {s.act_range[0]}..{s.act_range[1]}): "
        + ", ".join(f"a{j}@{t.port}<<{t.offset}" for j, t in enumerate(s.act_terms)),
        "fields of P:",
    ]
    for f, r in zip(s.fields, s.read_widths, strict=True):
        prods = " + ".join(f"w{i}*a{j}" for i, j in f.products)
        lines.append(f"  P[{f.lsb + r - 1:2d}:{f.lsb:2d}] (slot {f.width:2d} bits)  {prods}")
    return "\n".join(lines)


@app.command("dsp-pack")
def dsp_pack(
    dsp: str = typer.Option(..., "--dsp", help=f"DSP kind: {', '.join(DSP_KINDS)}"),
    wbits: int = typer.Option(..., "--wbits", help="weight bits (signed, narrow range)"),
    abits: int = typer.Option(..., "--abits", help="activation bits"),
    signed_act: bool = typer.Option(False, "--signed-act", help="signed activations"),
    scheme: str | None = typer.Option(None, "--scheme", help="scheme name (default: best)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run the exhaustive packing check for one DSP and precision; exit 1 on any mismatch."""
    try:
        s = (
            get_scheme(dsp, wbits, abits, scheme, signed_act)
            if scheme
            else best_packing(dsp, wbits, abits, signed_act)
        )
    except ValueError as e:
        fail(str(e))
        return
    r = check_scheme(s)
    if as_json:
        emit_json(
            {
                "scheme": s.name,
                "dsp": s.dsp,
                "wbits": s.wbits,
                "abits": s.abits,
                "signed_act": s.signed_act,
                "products_per_dsp": s.products_per_dsp,
                "accumulate_depth": s.accumulate_depth,
                "general": s.general,
                "loop": s.loop,
                "layout": s.layout(),
                "checked_cases": r.checked_cases,
                "exhaustive_cases": r.exhaustive_cases,
                "extremal_cases": r.extremal_cases,
                "random_cases": r.random_cases,
                "mismatches": r.mismatches,
            }
        )
    else:
        typer.echo(_describe(s))
        typer.echo(
            f"check: {r.checked_cases} cases ({r.exhaustive_cases} exhaustive single-cycle, "
            f"{r.extremal_cases} extremal + {r.random_cases} random at depth {r.depth}), "
            f"{r.mismatches} mismatches"
        )
    if r.mismatches:
        raise typer.Exit(1)
