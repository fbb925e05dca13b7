"""Accuracy experiments built from quantize runs: FP32 vs W8A5/W4A5/mixed, and the paper's sweep."""

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from filmqnn.quant.assignment import write_json_atomic
from filmqnn.train.checkpoint import load_checkpoint
from filmqnn.train.qat import QuantSpec, quantize_fp32
from filmqnn.train.spec import RunOptions, TrainSpec

STUDY_RATIOS = (0.0, 0.03, 0.05, 0.10, 0.20, 1.0)
STUDY_ACT_BITS = (3, 4, 5, 6)


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


def study_variants(
    base: QuantSpec, ratios: tuple[float, ...], act_bits: tuple[int, ...]
) -> list[Variant]:
    """The paper's Table 2/3 grid: 8-bit ratio R x activation bits."""
    return [
        Variant(f"R={r:.0%} A{a}", replace(base, ratio=r, config=replace(base.config, act_bits=a)))
        for a in act_bits
        for r in ratios
    ]


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


def study_markdown(rows: list[dict[str, Any]], title: str) -> str:
    """Accuracy grid: one row per activation bit width, one column per 8-bit ratio."""
    ratios = sorted({r["ratio"] for r in rows})
    bits = sorted({r["act_bits"] for r in rows})
    acc = {(r["act_bits"], r["ratio"]): r["accuracy"] for r in rows}
    head = "| activations | " + " | ".join(f"R={x:.0%}" for x in ratios) + " |"
    lines = [f"### {title}", "", head, "|---" * (len(ratios) + 1) + "|"]
    for b in bits:
        cells = [f"{100 * acc[(b, x)]:.2f}" if (b, x) in acc else "-" for x in ratios]
        lines.append(f"| A{b} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def study_plot(rows: list[dict[str, Any]], path: str | Path, title: str) -> None:
    """PNG: test accuracy against the 8-bit filter ratio, one line per activation bit width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for b in sorted({r["act_bits"] for r in rows}):
        pts = sorted((r["ratio"], r["accuracy"]) for r in rows if r["act_bits"] == b)
        ax.plot([100 * x for x, _ in pts], [100 * y for _, y in pts], marker="o", label=f"A{b}")
    ax.set_xscale("symlog", linthresh=3)
    ax.set_xticks([100 * x for x in sorted({r["ratio"] for r in rows})])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("8-bit filters per layer R (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


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
