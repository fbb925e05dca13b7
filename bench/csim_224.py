"""Full-size networks at 224x224 through the generated kernel's C-simulation.

    .venv/bin/python bench/csim_224.py --model resnet18 --board zcu102 [--no-first-last-8bit]
        [--off MODE,...] [--frames 1] [--json]

`explore` picks the implemented engine's best design for the model on the board (the paper's
clock: ZCU102 150 MHz, PYNQ-Z2 100 MHz); the torchvision model (random weights, randomised
BatchNorm statistics, random 8-bit filters within the design's tile rule) is quantized,
calibrated on random images, lowered, exported for the design's tiling and generated as an
HLS project. Each frame runs through C-sim and the integer reference: mismatches, the
per-layer cycles the kernel counted beside the model's, the frame rate from the C-sim
cycles (and from its count of the kernel as the HLS code is written), and the C-sim time per
frame (the engine run alone: DDR image in, outputs and counters out) as a ratio to the
reference executor's in this run: the fastest frame of each (the reference runs every frame
three times), the statistic least moved by a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from small_models import lower_builders

CLOCKS = {"zcu102": 150.0, "pynq-z2": 100.0}


def _seconds(fn, *args) -> float:
    """Wall time of one call."""
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _quantized(model: str, first_last: bool, tm: int, tm8: int, seed: int = 0):
    from filmqnn.models import build_model
    from filmqnn.quant import calibrate, convert, quant_layers
    from filmqnn.quant.config import QuantConfig
    from filmqnn.tile_rule import tile_high_filters

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = build_model(model, num_classes=1000, in_channels=3, input_size=224)
    with torch.no_grad():
        lower_builders().randomise_bn(net, gen)
    q = convert(net, QuantConfig(first_last_high=first_last))
    layers = quant_layers(q)
    mixed = layers[1:-1] if first_last else layers
    for _, layer in mixed:
        m = layer.num_filters
        n8 = min(m, tile_high_filters(tm, tm8 / tm) * math.ceil(m / tm))
        layer.set_high_precision(torch.randperm(m, generator=gen)[:n8].tolist())
    calibrate(q, [torch.randn(2, 3, 224, 224, generator=gen)])
    return q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18",
                    choices=("resnet18", "resnet50", "mobilenet_v2"))
    ap.add_argument("--board", default="zcu102", choices=tuple(CLOCKS))
    ap.add_argument("--no-first-last-8bit", dest="first_last", action="store_false",
                    help="every layer mixed 4/8-bit, as the paper's intra-layer designs")
    ap.add_argument("--off", default="", help="kernel modes to switch off, comma-separated")
    ap.add_argument("--frames", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, default=None,
                    help="keep the artifact and the HLS project in this directory")
    args = ap.parse_args()

    from filmqnn.hls.compare import compare, cycle_table
    from filmqnn.hls.csim import CsimEngine
    from filmqnn.hls.ddr_image import write_input
    from filmqnn.hls.project import write_project
    from filmqnn.hw.design import IMPLEMENTED
    from filmqnn.hw.devices import load_board
    from filmqnn.hw.dse import explore
    from filmqnn.hw.layers import model_layers
    from filmqnn.lower.artifact import save_artifact
    from filmqnn.lower.lowering import lower
    from filmqnn.lower.reordering import reorder
    from filmqnn.lower.tiling import Tiling
    from filmqnn.ref.executor import ReferenceExecutor

    board = load_board(args.board)
    clock = CLOCKS[args.board]
    opts = replace(IMPLEMENTED, **{m: False for m in args.off.split(",") if m})
    res = explore(model_layers(args.model, 224, args.first_last), board, clock, 0.05, "mixed",
                  opts=opts)
    opts = res.options  # explore may place the first conv's im2col on the host
    d = res.best
    design = {k: v for k, v in d.to_dict().items() if k not in ("Tm4", "macs_per_cycle")}
    t0 = time.perf_counter()
    q = _quantized(args.model, args.first_last, d.Tm, d.Tm8)
    graph = reorder(lower(q, (3, 224, 224)),
                    Tiling(tm=d.Tm, tm8=d.Tm8, tn=d.Tn, g=d.G, axi_bits=board.axi_width_bits))
    t_build = time.perf_counter() - t0
    x = np.random.default_rng(0).integers(-128, 128, size=(args.frames, 3, 224, 224))
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            tmp = args.keep
            Path(tmp).mkdir(parents=True, exist_ok=True)
        save_artifact(graph, Path(tmp) / "art")
        write_project(graph, design, board, Path(tmp) / "prj", Path(tmp) / "art", opts=opts)
        r = compare(Path(tmp) / "prj", x)
        eng = CsimEngine(Path(tmp) / "prj")  # loaded and compiled outside the timed runs
        eng.run(x[0])  # warm-up
        t_csim = min(_seconds(eng.run, f) for f in x)
        # of it, the host's side: the frame's input written into the DDR image
        t_input = min(_seconds(write_input, eng.image, eng.base.copy(), f) for f in x)
    ref = ReferenceExecutor(graph)
    ref.run_int(torch.from_numpy(x[:1]).to(torch.int32))  # warm-up
    t_ref = min(_seconds(ref.run_int, torch.from_numpy(f[None]).to(torch.int32))
                for _ in range(3) for f in x)
    out = {
        "model": args.model, "board": args.board, "clock_mhz": clock,
        "first_last_8bit": args.first_last, "off": args.off,
        "im2col": "chip" if opts.im2col_onchip else "host", "design": design,
        "frames": len(x), "mismatches": r["mismatches"],
        "csim_cycles": r["cycles"]["total"], "model_cycles": r["cycles"]["model_total"],
        "csim_fps": round(r["fps"], 1), "model_fps": round(res.performance["fps"], 1),
        "as_written_cycles": r["cycles"]["as_written_total"],
        "as_written_fps": round(r["as_written_fps"], 1),
        "max_layer_error": r["max_layer_error"],
        "csim_s_per_frame": round(t_csim, 2), "input_s_per_frame": round(t_input, 3),
        "ref_s_per_frame": round(t_ref, 3),
        "csim_vs_ref": round(t_csim / t_ref, 1), "build_s": round(t_build, 1),
        "layers": r["cycles"]["layers"],
    }
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"{args.model} @224 on {args.board} ({clock:g} MHz, "
          f"{'first/last 8-bit' if args.first_last else 'every layer mixed'}), design "
          f"{design}: {out['mismatches']} mismatches in {len(x)} frame(s); C-sim "
          f"{out['csim_cycles']} cycles = {out['csim_fps']} FPS (implemented engine), model "
          f"{out['model_cycles']} = {out['model_fps']} FPS; as the HLS code is written "
          f"{out['as_written_cycles']} = {out['as_written_fps']} FPS; largest layer difference "
          f"{100 * out['max_layer_error']:.1f} %; C-sim {t_csim:.2f} s/frame = "
          f"{out['csim_vs_ref']}x the reference ({t_ref:.3f} s)")
    print(cycle_table(out["layers"]))


if __name__ == "__main__":
    main()
