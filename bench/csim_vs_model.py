"""C-simulation cycles of the generated kernel against the hardware model, layer by layer.

    .venv/bin/python bench/csim_vs_model.py [--model resnet18_small] [--design zcu102]

Builds the lowering tests' calibrated small model (28x28 Fashion-MNIST shape), exports it for
one of the HLS tests' designs, generates the project, runs one frame through C-sim against the
integer reference and prints the per-layer cycles (C-sim count, model, difference).
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from small_models import design_graph


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18_small")
    ap.add_argument("--design", default="zcu102", choices=("zcu102", "pynq-z2", "fabric"))
    args = ap.parse_args()
    from filmqnn.hls.compare import compare, cycle_table
    from filmqnn.hls.project import write_project
    from filmqnn.hw.devices import load_board
    from filmqnn.lower.artifact import save_artifact

    graph, board, design = design_graph(args.model, args.design)
    with tempfile.TemporaryDirectory() as tmp:
        save_artifact(graph, Path(tmp) / "art")
        write_project(graph, design, load_board(board), Path(tmp) / "prj", Path(tmp) / "art")
        shape = graph.tensors[graph.input].shape
        x = np.random.default_rng(0).integers(-128, 128, size=(1, *shape))
        r = compare(Path(tmp) / "prj", x)
    c = r["cycles"]
    print(f"{args.model} on the {args.design} test design: {r['mismatches']} mismatches; "
          f"C-sim {c['total']} cycles, model {c['model_total']}; largest layer difference "
          f"{100 * r['max_layer_error']:.1f} %")
    print(cycle_table(c["layers"]))


if __name__ == "__main__":
    main()
