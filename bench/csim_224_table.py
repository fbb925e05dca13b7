"""The docs' table of the implemented engine at 224x224 from `csim_224.py --json` outputs.

    for m in resnet18 resnet50 mobilenet_v2; do for b in zcu102 pynq-z2; do
      .venv/bin/python bench/csim_224.py --model $m --board $b --json > out/$m-$b.json
      .venv/bin/python bench/csim_224.py --model $m --board $b --no-first-last-8bit --json \\
          > out/$m-$b-mixed.json; done; done
    .venv/bin/python bench/csim_224_table.py out/*.json
"""

from __future__ import annotations

import json
import sys

PAPER = {("zcu102", "resnet18"): 214.8, ("zcu102", "resnet50"): 109.1,
         ("zcu102", "mobilenet_v2"): 537.9, ("pynq-z2", "resnet18"): 27.8,
         ("pynq-z2", "resnet50"): 13.3, ("pynq-z2", "mobilenet_v2"): 132.3}


def main() -> None:
    runs = [json.load(open(p)) for p in sys.argv[1:]]
    runs.sort(key=lambda r: (r["board"], r["model"], not r["first_last_8bit"]))
    print("| board @ MHz | model | quantization | paper FPS (measured) | implemented engine, "
          "C-sim cycles (modelled FPS) | model FPS, same design | HLS code as written, C-sim "
          "cycles (modelled FPS) | mismatches | largest layer difference | C-sim s / frame | "
          "x reference |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        q = "first/last 8-bit" if r["first_last_8bit"] else "every layer mixed"
        if r.get("off"):
            q += f", --off {r['off']}"
        elif r.get("im2col") == "host":  # explore's choice
            q += ", first conv unrolled by the host"
        print(f"| {r['board']} @ {r['clock_mhz']:g} | {r['model']} | {q} | "
              f"{PAPER[(r['board'], r['model'])]} | {r['csim_fps']} | {r['model_fps']} | "
              f"{r['as_written_fps']} | "
              f"{r['mismatches']} / {r['frames']} | {100 * r['max_layer_error']:.1f} % | "
              f"{r['csim_s_per_frame']} | {r['csim_vs_ref']:.1f} |")


if __name__ == "__main__":
    main()
