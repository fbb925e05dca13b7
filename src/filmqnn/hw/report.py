"""PNG plots (roofline, Pareto front, utilisation) and a Markdown report of a DSE result."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from filmqnn.hw.devices import Board
from filmqnn.hw.dse import DseResult


def _atomic_write(path: Path, write: Any) -> None:
    """Write via a temp file in the same folder and os.replace, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _savefig(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    _atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    plt.close(fig)


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roofline(result: DseResult, board: Board, path: Path) -> None:
    """Per-layer modelled ops/byte against attainable GOPS (peak compute vs DDR roof)."""
    plt = _plt()
    d = result.best
    clock = d.clock_mhz * 1e6
    peak = 2 * d.macs_per_cycle * clock / 1e9
    bw = board.ddr_peak_gbps * board.ddr_efficiency
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = [10 ** (i / 20) for i in range(-20, 81)]
    ax.plot(xs, [min(peak, bw * x) for x in xs], "k-", lw=1.5, label="roof (peak MACs, DDR)")
    shown = [lp for lp in result.performance["layers"] if lp.macs and lp.ddr_bytes]
    for bound, color in (("compute", "tab:blue"), ("memory", "tab:red")):
        pts = [(2 * lp.macs / lp.ddr_bytes, 2 * lp.macs / (lp.cycles / clock) / 1e9)
               for lp in shown if lp.bound == bound]
        if pts:  # one scatter per colour: one collection to draw, not one per layer
            ax.scatter(*zip(*pts, strict=True), s=14, c=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operations per DDR byte (modelled)")
    ax.set_ylabel("GOPS (modelled)")
    ax.set_title(f"roofline, {board.name} @ {d.clock_mhz:g} MHz (red: memory-bound)")
    ax.legend(loc="lower right", fontsize=8)
    _savefig(fig, path)


def plot_pareto(result: DseResult, path: Path) -> None:
    """Modelled FPS against the largest resource fraction of Pareto-optimal designs."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    lim = result.limits
    for key, mark in (("lut", "o"), ("dsp", "s"), ("bram18k", "^")):
        xs = [p[key] / max(lim[key], 1) for p in result.pareto]
        ax.scatter(xs, [p["fps"] for p in result.pareto], marker=mark, s=16, label=key)
    ax.set_xlabel("utilisation / limit (modelled)")
    ax.set_ylabel("FPS (modelled)")
    ax.set_title("Pareto front: FPS vs LUT / DSP / BRAM18K")
    ax.legend(fontsize=8)
    _savefig(fig, path)


def plot_utilisation(result: DseResult, board: Board, path: Path) -> None:
    """Bars of modelled LUT / FF / DSP / BRAM18K use as a fraction of the board."""
    plt = _plt()
    tot = result.resources.totals()
    keys = ["lut", "ff", "dsp", "bram18k"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.bar(keys, [tot[k] / getattr(board, k) for k in keys], color="tab:blue", label="used")
    ax.plot(keys, [result.limits[k] / getattr(board, k) for k in keys], "r_", ms=30, mew=2,
            label="limit")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of the device (modelled)")
    ax.set_title(f"utilisation on {board.name}")
    ax.legend(fontsize=8)
    _savefig(fig, path)


def summary(result: DseResult, board: Board, model: str) -> dict[str, Any]:
    """The JSON contract of ``filmqnn explore`` (fps, resources, limits, design, layers)."""
    perf = result.performance
    return {
        "model": model,
        "board": board.name,
        "weights": result.mode,
        "ratio": result.ratio,
        "fps": perf["fps"],
        "latency_ms": perf["latency_ms"],
        "gops": perf["gops"],
        "clock_mhz": result.best.clock_mhz,
        "ddr_mbytes_per_frame": perf["ddr_mbytes"],
        "resources": result.resources.totals(),
        "limits": result.limits,
        "design": result.best.to_dict(),
        "engine": result.options.to_dict(),
        "breakdown": result.resources.breakdown,
        "layers": [lp.to_dict() for lp in perf["layers"]],
        "pareto": result.pareto,
        "fps_ceiling": result.fps_ceiling,
        "fps_range": result.fps_range,
        "search": {"evaluated": result.evaluated, "feasible": result.feasible,
                   "notes": result.notes},
        "modelled": True,
    }


def write_report(result: DseResult, board: Board, model: str, out: Path) -> list[Path]:
    """Write report.md and the three PNGs into ``out``; return the written paths."""
    out = Path(out)
    files = [out / "roofline.png", out / "pareto.png", out / "utilisation.png", out / "report.md"]
    plot_roofline(result, board, files[0])
    plot_pareto(result, files[1])
    plot_utilisation(result, board, files[2])
    s = summary(result, board, model)
    d = result.best
    lines = [
        f"# {model} on {board.name}: modelled design point",
        "",
        f"All figures are **modelled** (filmqnn.hw, docs/hardware.md), not measured. "
        f"Weights: {result.mode}" + (f", r = {result.ratio:g}" if result.mode == "mixed" else "")
        + f"; clock {d.clock_mhz:g} MHz.",
        "",
        f"- FPS: **{s['fps']:.1f}** (latency {s['latency_ms']:.3f} ms, {s['gops']:.1f} GOPS)",
        f"- FPS range: {s['fps_range']['pessimistic']:.1f} (pessimistic: DDR efficiency "
        f"{s['fps_range']['assumptions']['pessimistic']['ddr_efficiency']}, pipeline depth "
        f"{s['fps_range']['assumptions']['pessimistic']['pipe_depth']}, "
        f"{s['fps_range']['assumptions']['pessimistic']['group_overhead']} cycles per output "
        f"group, clock x{s['fps_range']['assumptions']['pessimistic']['clock_derate']} at "
        f"100 % DSP; hw/fps_range.py) to {s['fps_range']['nominal']:.1f} (nominal)",
        f"- DDR traffic per frame: {s['ddr_mbytes_per_frame']:.2f} MB",
        f"- Design: Tm={d.Tm} (Tm8={d.Tm8}), Tn={d.Tn}, Tr={d.Tr}, Tc={d.Tc}, G={d.G}, "
        f"PE4 positions on DSP {d.dsp4}/{d.Tm4 * d.Tn}, PE8 on DSP {d.dsp8}/{d.Tm8 * d.Tn}, "
        f"post lanes {d.post}, AXI ports {d.ports}, bank depth x{d.buf}, "
        f"feature-map store {d.store} BRAM18K in {d.store_banks} bank(s) per port, on LUTRAM: "
        + (", ".join(n for n, on in (("accumulators", d.acc_lutram),
                                    ("im2col raw tile", d.raw_lutram)) if on) or "nothing"),
        f"- Ceiling: no design of the grid within the limits exceeds "
        f"{s['fps_ceiling']:.1f} FPS (per layer the larger of its compute and its fewest "
        "DDR bits)",
        f"- Search: {result.evaluated} candidates, {result.feasible} within limits",
        "",
        "| resource | used | limit | device |",
        "|---|---:|---:|---:|",
    ]
    for k in ("lut", "ff", "dsp", "bram18k"):
        lines.append(f"| {k} | {s['resources'][k]} | {s['limits'][k]} | {getattr(board, k)} |")
    lines += ["", "| layer | kind | cycles | compute | memory | bound | on chip (ring: band "
              "fused with the layer before) |",
              "|---|---|---:|---:|---:|---|---|"]
    for lp in result.performance["layers"]:
        lines.append(
            f"| {lp.name} | {lp.kind} | {lp.cycles} | {lp.compute_cycles} | "
            f"{lp.memory_cycles} | {lp.bound} | {_on_chip(lp)} |"
        )
    lines += ["", "![roofline](roofline.png)", "![pareto](pareto.png)",
              "![utilisation](utilisation.png)", ""]
    text = "\n".join(lines)

    def write_md(tmp: str) -> None:
        Path(tmp).write_text(text)

    _atomic_write(files[3], write_md)
    return files


def _on_chip(lp: Any) -> str:
    """The report's on-chip cell of a layer: its tensors in the store, the input marked as a
    band ring when the layer runs interleaved with its producer."""
    names = [f"{t} ring" if t == "input" and lp.fused else t for t in lp.on_chip]
    return ", ".join(names) or "-"
