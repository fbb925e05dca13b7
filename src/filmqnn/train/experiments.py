"""Accuracy experiments built from quantize runs: FP32 vs W8A5/W4A5/mixed, and the paper's sweep."""

import json
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from filmqnn.quant.assignment import write_json_atomic
from filmqnn.quant.checkpoint import load_checkpoint
from filmqnn.quant.config import QuantSpec
from filmqnn.train.qat import quantize_fp32
from filmqnn.train.spec import RunOptions, TrainSpec

STUDY_RATIOS = (0.0, 0.03, 0.05, 0.10, 0.20, 1.0)
STUDY_ACT_BITS = (3, 4, 5, 6)
STUDY_LOW_BITS = (4,)
STUDY_CRITERIA = ("output-error",)
SHARED = "-"  # the criterion of a cell where none is needed: R = 0 (no 8-bit filter), R = 100 %


@dataclass(frozen=True)
class Variant:
    """One quantized configuration of an experiment, with the label it gets in tables."""

    label: str
    qspec: QuantSpec

    @property
    def key(self) -> str:
        return "".join(c if c.isalnum() else "_" for c in self.label).strip("_")


def comparison_variants(base: QuantSpec) -> list[Variant]:
    """W8A5, W4A5 and intra-layer mixed (base ratio) at the base activation bits."""
    a = base.config.act_bits
    return [
        Variant(f"W8A{a}", replace(base, ratio=0.0, config=replace(base.config, low_bits=8))),
        Variant(f"W4A{a}", replace(base, ratio=0.0)),
        Variant(f"mixed R={base.ratio:.0%} A{a}", base),
    ]


@dataclass(frozen=True)
class StudyCell:
    """One run of the study grid: mode, activation bits, low weight bits, criterion, R, seed.

    R = 0 and R = 100 % need no criterion (SHARED) and R = 100 % no low bit width (all filters
    take the high one), so those runs are shared by every criterion and low bit width.
    """

    mode: str
    act_bits: int
    low_bits: int
    criterion: str
    ratio: float
    seed: int

    @property
    def key(self) -> str:
        crit = "any" if self.criterion == SHARED else self.criterion
        r = f"{100 * self.ratio:g}"
        return f"{self.mode}-A{self.act_bits}-W{self.low_bits}-{crit}-R{r}-s{self.seed}"

    def qspec(self, base: QuantSpec) -> QuantSpec:
        """The quantize settings of this cell on top of `base`."""
        # a cell without a ranking still assigns: the data-free weight error costs least
        criterion = "weight-error" if self.criterion == SHARED else self.criterion
        config = replace(base.config, act_bits=self.act_bits, low_bits=self.low_bits)
        return replace(base, mode=self.mode, ratio=self.ratio, criterion=criterion, config=config)


def study_cells(
    modes: tuple[str, ...],
    act_bits: tuple[int, ...],
    low_bits: tuple[int, ...],
    criteria: tuple[str, ...],
    ratios: tuple[float, ...],
    seeds: int,
    high_bits: int = 8,
    qat_low_bits: tuple[int, ...] | None = None,
) -> list[StudyCell]:
    """Every run of the grid once, in a fixed order; `qat_low_bits` limits the QAT cells."""
    cells: dict[StudyCell, None] = {}
    for mode in modes:
        lows = low_bits if mode != "qat" or qat_low_bits is None else qat_low_bits
        lows = tuple(b for b in lows if b in low_bits)
        for a in act_bits:
            for low in lows:
                for r in ratios:
                    for c in criteria:
                        for seed in range(seeds):
                            if r >= 1.0:
                                cell = StudyCell(mode, a, high_bits, SHARED, 1.0, seed)
                            elif r <= 0.0:
                                cell = StudyCell(mode, a, low, SHARED, 0.0, seed)
                            else:
                                cell = StudyCell(mode, a, low, c, r, seed)
                            cells[cell] = None
    return list(cells)


def run_study(
    fp32_checkpoint: str | Path,
    spec: TrainSpec,
    base: QuantSpec,
    cells: list[StudyCell],
    out_dir: str | Path,
    progress: bool = True,
    run: RunOptions | None = None,
) -> list[dict[str, Any]]:
    """Run every cell in OUT/cells/KEY; a cell with a summary.json is read, not rerun.

    Each cell is a `quantize` run (atomic checkpoint every QAT epoch, resumed when cut off,
    summary.json written atomically last), so an interrupted study loses at most one epoch.
    Under torchrun every rank trains each cell; only rank 0 evaluates and gets rows.
    """
    rows = []
    bar = tqdm(cells, desc="study cells", unit="cell", disable=not progress)
    for cell in bar:
        sub = Path(out_dir) / "cells" / cell.key
        summary = sub / "summary.json"
        bar.set_postfix_str(cell.key)
        if summary.is_file():
            result = json.loads(summary.read_text())
        else:
            cell_spec = replace(spec, seed=cell.seed)
            result = quantize_fp32(
                fp32_checkpoint,
                cell_spec,
                cell.qspec(base),
                sub,
                resume=True,
                progress=progress and cell.mode == "qat",
                run=run,
            )
        if "test" not in result:
            continue
        rows.append(
            {
                "mode": cell.mode,
                "act_bits": cell.act_bits,
                "low_bits": cell.low_bits,
                "high_bits": base.config.high_bits,
                "criterion": cell.criterion,
                "ratio": cell.ratio,
                "seed": cell.seed,
                "ratio_8bit": result["ratio_8bit"],
                "accuracy": result["test"]["accuracy"],
                "samples": result["test"]["samples"],
                "dir": str(sub),
            }
        )
    return rows


def study_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, sample standard deviation, min and max over seeds of every grid point."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        key = (r["mode"], r["act_bits"], r["low_bits"], r["criterion"], r["ratio"])
        groups.setdefault(key, []).append(r["accuracy"])
    out = []
    for (mode, a, low, crit, ratio), acc in groups.items():
        out.append(
            {
                "mode": mode,
                "act_bits": a,
                "low_bits": low,
                "criterion": crit,
                "ratio": ratio,
                "seeds": len(acc),
                "mean": statistics.mean(acc),
                "sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "min": min(acc),
                "max": max(acc),
            }
        )
    return out


def _lines(summary: list[dict[str, Any]]) -> dict[tuple, dict[str, dict[float, dict]]]:
    """Per panel (mode, act bits, low bits), per criterion, per R: the summary entry.

    The shared R = 0 (same low bits) and R = 100 % (same mode and act bits) points join
    every criterion's line; a panel without a ranked R gets one line of them.
    """
    shared = [s for s in summary if s["criterion"] == SHARED]
    ranked = [s for s in summary if s["criterion"] != SHARED]
    keys = {(s["mode"], s["act_bits"], s["low_bits"]) for s in ranked}
    keys |= {(s["mode"], s["act_bits"], s["low_bits"]) for s in shared if s["ratio"] < 1.0}
    panels: dict[tuple, dict[str, dict[float, dict]]] = {k: {} for k in keys}
    for s in ranked:
        key = (s["mode"], s["act_bits"], s["low_bits"])
        panels[key].setdefault(s["criterion"], {})[s["ratio"]] = s
    for key, lines in panels.items():
        if not lines:
            lines[SHARED] = {}
        ends = [
            s
            for s in shared
            if (s["mode"], s["act_bits"]) == key[:2]
            and (s["ratio"] >= 1.0 or s["low_bits"] == key[2])
        ]
        for line in lines.values():
            for s in ends:
                line[s["ratio"]] = s
    return panels


def _cell(s: dict[str, Any] | None, low: dict | None, high: dict | None) -> str:
    if s is None:
        return "-"
    text = f"{100 * s['mean']:.2f}"
    if s["seeds"] > 1:
        text += f" ± {100 * s['sd']:.2f}"
    if low is not None and high is not None and 0.0 < s["ratio"] < 1.0:
        gap = high["mean"] - low["mean"]
        if gap > low["sd"] + high["sd"]:  # a share of a gap inside the seed spread means nothing
            text += f" ({(s['mean'] - low['mean']) / gap:.0%})"
    return text


def study_grid_markdown(summary: list[dict[str, Any]], title: str) -> str:
    """One table per mode and activation width: a row per low bit width and criterion, a column
    per R; cells are mean ± sd over seeds and, for 0 < R < 100 %, the share of the gap from
    R = 0 to R = 100 % (all 8-bit) that R closes, where that gap exceeds the two ends' sds."""
    panels = _lines(summary)
    ratios = sorted({s["ratio"] for s in summary})
    seeds = max((s["seeds"] for s in summary), default=1)
    lines = [f"### {title}", ""]
    if seeds > 1:
        lines += [f"Test accuracy (%), mean ± standard deviation over {seeds} seeds.", ""]
    for mode, a in sorted({k[:2] for k in panels}):
        head = "| weights | criterion | " + " | ".join(f"R={100 * x:g}%" for x in ratios) + " |"
        lines += [f"#### {mode.upper()}, A{a}", "", head, "|---|---" + "|---" * len(ratios) + "|"]
        for (m2, a2, low), crits in sorted(panels.items()):
            if (m2, a2) != (mode, a):
                continue
            for crit, pts in sorted(crits.items()):
                lo, hi = pts.get(0.0), pts.get(1.0)
                cells = [_cell(pts.get(x), lo, hi) for x in ratios]
                lines.append(f"| W{low}/W8 | {crit} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def study_paired_markdown(rows: list[dict[str, Any]], control: str = "random") -> str:
    """Each criterion minus `control` at the same grid point and seed (same calibration
    images, data order), mean ± sd over seeds: the paired test of whether a criterion beats
    the control; the table is empty without the control."""
    acc = {
        (r["mode"], r["act_bits"], r["low_bits"], r["criterion"], r["ratio"], r["seed"]): r[
            "accuracy"
        ]
        for r in rows
    }
    points = sorted({k[:3] + (k[4],) for k in acc if k[3] == control})
    crits = sorted({k[3] for k in acc if k[3] not in (control, SHARED)})
    if not points or not crits:
        return ""
    lines = [
        f"#### Paired difference to `{control}` (points, mean ± sd over seeds)",
        "",
        "| mode | weights | R | " + " | ".join(crits) + " |",
        "|---|---|---" + "|---" * len(crits) + "|",
    ]
    for mode, a, low, ratio in points:
        cells = []
        for c in crits:
            diffs = [
                100 * (v - acc[(mode, a, low, control, ratio, k[5])])
                for k, v in acc.items()
                if k[:5] == (mode, a, low, c, ratio) and (mode, a, low, control, ratio, k[5]) in acc
            ]
            if not diffs:
                cells.append("-")
                continue
            sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
            cells.append(f"{statistics.mean(diffs):+.2f} ± {sd:.2f}")
        lines.append(
            f"| {mode.upper()} A{a} | W{low}/W8 | {100 * ratio:g}% | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def study_grid_plot(summary: list[dict[str, Any]], path: str | Path, title: str) -> None:
    """PNG: accuracy against R, a panel per mode, activation bits and low bit width (one row
    per mode and activation width, one column per low width; a single low width wraps its
    panels in up to three columns), a line per criterion with its seed spread (± 1 sd) as a
    band."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _lines(summary)
    rows_ = sorted({k[:2] for k in panels})
    cols = sorted({k[2] for k in panels})
    keys = [(mode, a, low) for mode, a in rows_ for low in cols]
    ncols = len(cols) if len(cols) > 1 else min(3, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.6 * ncols + 0.6, 2.9 * nrows + 0.9), squeeze=False
    )
    ratios = sorted({s["ratio"] for s in summary})
    colors = {c: f"C{i}" for i, c in enumerate(sorted({c for p in panels.values() for c in p}))}
    for ax in axes.flat[len(keys):]:
        ax.set_axis_off()
    for n, (mode, a, low) in enumerate(keys):
        ax = axes.flat[n]
        if (mode, a, low) not in panels:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{mode.upper()} W{low}/W8 A{a}\nnot run", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9, color="0.5")
            continue
        for crit, pts in sorted(panels[(mode, a, low)].items()):
            xs = sorted(pts)
            mean = [100 * pts[x]["mean"] for x in xs]
            sd = [100 * pts[x]["sd"] for x in xs]
            px = [100 * x for x in xs]
            ax.plot(px, mean, marker="o", ms=3, color=colors[crit], label=crit)
            ax.fill_between(
                px, [m - d for m, d in zip(mean, sd, strict=True)],
                [m + d for m, d in zip(mean, sd, strict=True)], color=colors[crit], alpha=0.2,
            )
        ax.set_xscale("symlog", linthresh=3)
        ax.set_xticks([100 * x for x in ratios])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_title(f"{mode.upper()} W{low}/W8 A{a}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xlabel("8-bit filters per layer R (%)", fontsize=8)
        if n % ncols == 0:
            ax.set_ylabel("test accuracy (%)")
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def run_variants(
    fp32_checkpoint: str | Path,
    spec: TrainSpec,
    variants: list[Variant],
    out_dir: str | Path,
    progress: bool = True,
    run: RunOptions | None = None,
) -> list[dict[str, Any]]:
    """Run every variant in its own sub-directory; finished ones (summary.json) are reused.

    Under torchrun every rank trains each variant; only rank 0 evaluates and gets rows.
    """
    rows = []
    for v in variants:
        sub = Path(out_dir) / v.key
        summary = sub / "summary.json"
        if summary.is_file():
            result = json.loads(summary.read_text())
        else:
            if progress:
                print(f"== {v.label}", flush=True)
            result = quantize_fp32(
                fp32_checkpoint, spec, v.qspec, sub, resume=True, progress=progress, run=run
            )
        if "test" not in result:
            continue  # a rank other than 0: it trained, rank 0 evaluates and reports
        rows.append(
            {
                "label": v.label,
                "ratio": v.qspec.ratio,
                "act_bits": v.qspec.config.act_bits,
                "low_bits": v.qspec.config.low_bits,
                "high_bits": v.qspec.config.high_bits,
                "ratio_8bit": 1.0 if v.qspec.config.low_bits >= 8 else result["ratio_8bit"],
                "accuracy": result["test"]["accuracy"],
                "samples": result["test"]["samples"],
                "dir": str(sub),
            }
        )
    return rows


def fp32_row(fp32_checkpoint: str | Path, accuracy: float, samples: int) -> dict[str, Any]:
    state = load_checkpoint(fp32_checkpoint, kind="fp32")
    return {
        "label": "FP32",
        "ratio": None,
        "act_bits": 32,
        "low_bits": 32,
        "high_bits": 32,
        "ratio_8bit": None,
        "accuracy": accuracy,
        "samples": samples,
        "dir": str(Path(fp32_checkpoint).parent),
        "model": state["spec"]["model"],
    }


def comparison_markdown(rows: list[dict[str, Any]], title: str) -> str:
    """A Markdown table of accuracy per configuration, with the gap to the W8 row."""
    w8 = next((r["accuracy"] for r in rows if r["label"].startswith("W8")), None)
    lines = [
        f"### {title}",
        "",
        "| configuration | 8-bit filters | test accuracy | vs W8 |",
        "|---|---|---|---|",
    ]
    for r in rows:
        share = "-" if r["ratio_8bit"] is None else f"{r['ratio_8bit']:.1%}"
        gap = "" if w8 is None or r["label"] == "FP32" else f"{100 * (r['accuracy'] - w8):+.2f}"
        lines.append(f"| {r['label']} | {share} | {100 * r['accuracy']:.2f} % | {gap} |")
    return "\n".join(lines) + "\n"


def write_report(
    out_dir: str | Path,
    name: str,
    rows: list[dict[str, Any]],
    markdown: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write `name`.json and `name`.md atomically."""
    out = Path(out_dir)
    write_json_atomic(out / f"{name}.json", {"rows": rows, **(extra or {})})
    tmp = out / f".{name}.md.tmp"
    tmp.write_text(markdown)
    tmp.replace(out / f"{name}.md")
