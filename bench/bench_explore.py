"""Time `explore` per model x board against a baseline measured in the same run.

Run: .venv/bin/python bench/bench_explore.py [--boards zcu102,pynq-z2]
Baseline: building the model's layer list from torchvision (model_layers, uncached).
No timing is asserted anywhere; this prints seconds and ratios.
"""

from __future__ import annotations

import argparse
import time

from filmqnn.hw import layers as layers_mod
from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore

MODELS = ("resnet18", "resnet50", "mobilenet_v2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="zcu102,pynq-z2")
    args = ap.parse_args()
    layers_mod.model_layers("resnet18")  # import torchvision once, outside the timings
    head = ("model", "board", "layers_s", "explore_s", "ratio", "fps")
    print("{:14s} {:10s} {:>9s} {:>10s} {:>7s} {:>8s}".format(*head))
    for model in MODELS:
        layers_mod._CACHE.clear()
        t0 = time.perf_counter()
        L = layers_mod.model_layers(model)
        base = time.perf_counter() - t0
        for name in args.boards.split(","):
            b = load_board(name)
            t0 = time.perf_counter()
            res = explore(L, b)
            dt = time.perf_counter() - t0
            print(f"{model:14s} {name:10s} {base:9.3f} {dt:10.3f} {dt / base:7.1f} "
                  f"{res.performance['fps']:8.1f}")


if __name__ == "__main__":
    main()
