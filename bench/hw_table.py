"""The docs table: modelled FPS / resources of the paper's models vs the paper and W4/W8.

Run: .venv/bin/python bench/hw_table.py [--ratio 0.05] [--csim out/*.json]
ResNet-18, ResNet-50, MobileNet-V2 at 224x224 on ZCU102 @ 150 MHz and PYNQ-Z2 @ 100 MHz:
the mixed design (r = 5 %) with its FPS under the pessimistic assumptions
(``hw.fps_range``), the uniform W8A5 and W4A5 designs found by the same DSE, the
paper's reported FPS (FILM-QNN, FPGA'22, Tables 5 and 6) and the project's FPS target with
whether the mixed design meets it; then the share of the mixed design's frame cycles per
layer category. Every filmqnn figure is modelled. ``--csim`` adds the implemented engine's
columns from ``bench/csim_224.py --json`` results (C-sim cycles at the paper's clock, first/last
8-bit / every layer mixed: the engine as modelled, and the HLS code as written).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore
from filmqnn.hw.layers import model_layers

PAPER_FPS = {
    ("zcu102", "resnet18"): 214.8, ("zcu102", "resnet50"): 109.1,
    ("zcu102", "mobilenet_v2"): 537.9, ("pynq-z2", "resnet18"): 27.8,
    ("pynq-z2", "resnet50"): 13.3, ("pynq-z2", "mobilenet_v2"): 132.3,
}
TARGET_FPS = {
    ("zcu102", "resnet18"): 450, ("zcu102", "resnet50"): 220, ("zcu102", "mobilenet_v2"): 800,
    ("pynq-z2", "resnet18"): 40, ("pynq-z2", "resnet50"): 20, ("pynq-z2", "mobilenet_v2"): 180,
}
BOARDS = (("zcu102", 150.0), ("pynq-z2", 100.0))
MODELS = ("resnet18", "resnet50", "mobilenet_v2")
CATEGORIES = ("3x3 conv", "1x1 conv", "first conv", "depthwise", "FC", "pools", "frame start")


def _category(ly) -> str:
    if ly.first:
        return "first conv"
    if ly.kind == "dwconv":
        return "depthwise"
    if ly.kind == "fc":
        return "FC"
    if ly.kind in ("maxpool", "gap"):
        return "pools"
    return f"{ly.K}x{ly.K} conv"


def _shares(layers, perf) -> dict[str, float]:
    """Percent of the frame's cycles per layer category (the rest is the frame start)."""
    by_name = {ly.name: ly for ly in layers}
    out = dict.fromkeys(CATEGORIES, 0.0)
    for lp in perf["layers"]:
        out[_category(by_name[lp.name])] += 100 * lp.cycles / perf["cycles"]
    out["frame start"] = 100 - sum(out.values())
    return out


def _res(r) -> str:
    t = r.resources.totals()
    return f"{t['lut'] / 1000:.1f}k / {t['dsp']} / {t['bram18k']}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratio", type=float, default=0.05)
    ap.add_argument("--csim", type=Path, nargs="*", default=[],
                    help="bench/csim_224.py --json results for the implemented-engine column")
    args = ap.parse_args()
    csim = {}
    for f in args.csim:
        r = json.loads(f.read_text())
        if not r.get("off"):  # the runs with every implemented mode on
            csim[(r["board"], r["model"], r["first_last_8bit"])] = (r["csim_fps"],
                                                                    r["as_written_fps"])
    col = (" implemented engine, C-sim cycles (first/last 8-bit / every layer mixed) |"
           " HLS code as written, C-sim cycles (first/last 8-bit / every layer mixed) |")
    print("| board @ MHz | model | paper FPS | mixed FPS (modelled) | pessimistic | target | met "
          "| ceiling "
          "| mixed LUT / DSP / BRAM18K "
          "| mixed design Tm,Tm8,Tn,Tr,Tc,G,ports,buf,store (x2: two store banks per port; "
          "L, R: accumulators, im2col raw tile on LUTRAM) "
          "| W8A5 FPS | W4A5 FPS |" + (col if csim else ""))
    print("|---|---|---:|---:|---:|---:|---|---:|---|---|---:|---:|"
          + ("---:|---:|" if csim else ""))
    shares = []
    for board, clock in BOARDS:
        b = load_board(board)
        for model in MODELS:
            L = model_layers(model)
            mixed = explore(L, b, clock, args.ratio, "mixed")
            w8 = explore(L, b, clock, args.ratio, "w8")
            w4 = explore(L, b, clock, args.ratio, "w4")
            d, fps, target = mixed.best, mixed.performance["fps"], TARGET_FPS[(board, model)]
            print(f"| {board} @ {clock:g} | {model} | {PAPER_FPS[(board, model)]} | "
                  f"{fps:.1f} | {mixed.fps_range['pessimistic']:.1f} | {target} | "
                  f"{'yes' if fps >= target else 'no'} | "
                  f"{mixed.fps_ceiling:.1f} | {_res(mixed)} | "
                  f"{d.Tm},{d.Tm8},{d.Tn},{d.Tr},{d.Tc},{d.G},{d.ports},{d.buf},{d.store}"
                  f"{'x2' if d.store_banks == 2 else ''}{',L' if d.acc_lutram else ''}"
                  f"{',R' if d.raw_lutram else ''} | "
                  f"{w8.performance['fps']:.1f} | {w4.performance['fps']:.1f} |"
                  + ("".join(f" {csim.get((board, model, True), ('', ''))[i]} / "
                             f"{csim.get((board, model, False), ('', ''))[i]} |"
                             for i in (0, 1)) if csim else ""))
            shares.append((board, model, _shares(L, mixed.performance)))
    print("\nShare of the mixed design's frame cycles (modelled):\n")
    print("| board | model | " + " | ".join(CATEGORIES) + " |")
    print("|---|---|" + "---:|" * len(CATEGORIES))
    for board, model, sh in shares:
        cells = " | ".join(f"{sh[c]:.1f} %" if sh[c] >= 0.05 else "" for c in CATEGORIES)
        print(f"| {board} | {model} | {cells} |")


if __name__ == "__main__":
    main()
