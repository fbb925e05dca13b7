"""DDR bytes per inference (packed vs byte-aligned) and reordering index storage, full-size
models at 224x224 (the figures issue 3 asks for; data packing and reordering, paper §3.2).

    .venv/bin/python bench/traffic_table.py [--models resnet18,resnet50,mobilenet_v2]

Random weights and a random tile-rule assignment (r = 5 %; first conv and last FC 8-bit):
the byte counts depend only on shapes and the assignment's counts, not on the values.
"""

import argparse
import math

from bench_ref import quantized

from filmqnn.lower.lowering import lower
from filmqnn.lower.reordering import reorder
from filmqnn.lower.tiling import Tiling
from filmqnn.lower.traffic import traffic_report
from filmqnn.models import build_model

PAPER_INDEX_KBIT = {"resnet18": (67.97, 27.75), "resnet50": (323.0, 198.8),
                    "mobilenet_v2": (211.6, 9.28)}
BOARDS = {"ZCU102": Tiling(tm=32, tm8=2, tn=8, g=8, axi_bits=128),
          "PYNQ-Z2": Tiling(tm=32, tm8=2, tn=8, g=6, axi_bits=64)}


def mib(n: int) -> str:
    return f"{n / 2**20:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet18,resnet50,mobilenet_v2")
    args = p.parse_args()
    print("| model | tiling | weights MiB packed / byte-aligned | activations MiB packed / "
          "byte-aligned | total ratio | index kbit (ours) | without reordering: flags / "
          "filter index kbit | paper before / after kbit |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        fp32 = build_model(name, num_classes=1000, in_channels=3, input_size=224).eval()
        graph = None
        for board, tiling in BOARDS.items():
            if graph is None:
                graph = lower(quantized(fp32, 224, tiling, 0.05), (3, 224, 224))
            r = traffic_report(reorder(graph, tiling))
            w, a, t, u = (r["weight_bytes"], r["activation_bytes"], r["total_bytes"],
                          r["unreordered_index_bits"])
            paper = PAPER_INDEX_KBIT.get(name, (math.nan, math.nan))
            print(f"| {name} | {board} (G={tiling.g}, {tiling.axi_bits}-bit AXI, Tm={tiling.tm}, "
                  f"Tm8={tiling.tm8}) | {mib(w['packed'])} / {mib(w['byte_aligned'])} | "
                  f"{mib(a['packed'])} / {mib(a['byte_aligned'])} | {t['ratio']:.2f}x | "
                  f"{r['index_bits'] / 1000:.2f} | {u['flag_bits'] / 1000:.2f} / "
                  f"{u['filter_index_bits'] / 1000:.2f} | {paper[0]} / {paper[1]} |", flush=True)


if __name__ == "__main__":
    main()
