"""C-simulation time per frame with the PE multiplies as 64-bit integers (what `filmqnn csim`
builds, ``FILMQNN_NATIVE_PE``) against the ``ap_int`` build (what synthesis sees), same run.

    .venv/bin/python bench/csim_native_pe.py [--model resnet18_small] [--design pynq-z2]

Builds the lowering tests' calibrated small model (28x28), generates the project for one of
the HLS tests' designs, compiles both libraries outside the timed part and prints the median
seconds per frame of each and their ratio. Both must give the same outputs; no timing is
asserted anywhere.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from small_models import design_graph


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18_small")
    ap.add_argument("--design", default="pynq-z2", choices=("zcu102", "pynq-z2", "fabric"))
    ap.add_argument("--frames", type=int, default=3)
    args = ap.parse_args()
    from filmqnn.hls.csim import CsimEngine
    from filmqnn.hls.project import write_project
    from filmqnn.hw.devices import load_board

    graph, board, design = design_graph(args.model, args.design)
    shape = tuple(graph.tensors[graph.input].shape)
    x = np.random.default_rng(0).integers(-128, 128, size=(args.frames, *shape))
    with tempfile.TemporaryDirectory() as tmp:
        write_project(graph, design, load_board(board), Path(tmp) / "prj")
        engines = {name: CsimEngine(Path(tmp) / "prj", native)
                   for name, native in (("native", True), ("ap_int", False))}
        secs, outs = {}, {}
        for name, eng in engines.items():
            times = []
            for f in x:
                t0 = time.perf_counter()
                outs.setdefault(name, []).append(eng.run(f).outputs[0])
                times.append(time.perf_counter() - t0)
            secs[name] = statistics.median(times)
    same = all(np.array_equal(a, b) for a, b in zip(outs["native"], outs["ap_int"], strict=True))
    print(f"{args.model} on the {args.design} test design, {args.frames} frames: "
          f"ap_int {secs['ap_int']:.3f} s/frame, native {secs['native']:.3f} s/frame, "
          f"ratio {secs['ap_int'] / secs['native']:.1f}x; same outputs: {same}")


if __name__ == "__main__":
    main()
