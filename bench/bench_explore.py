"""Time `explore` per model x board against a baseline measured in the same run.

Run: .venv/bin/python bench/bench_explore.py [--boards zcu102,pynq-z2]
Baseline: tracing the model's layer list from torchvision with torch.fx (uncached).
explore_s: the DSE alone, in this process. cli_s / cli_out_s: the whole command
`filmqnn explore --model M --board B --modes all --json` (without / with `--out DIR`: report
and PNGs) in a new process, start-up and imports included: what a user waits for.
No timing is asserted anywhere; this prints seconds and ratios.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore
from filmqnn.hw.layers import SUPPORTED_MODELS, TABLE_SIZE, model_layers
from filmqnn.hw.trace import build_model, layers_from_module

CLI = [str(Path(sys.executable).with_name("filmqnn"))]


def _wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boards", default="zcu102,pynq-z2")
    args = ap.parse_args()
    shape = (3, TABLE_SIZE, TABLE_SIZE)
    layers_from_module(build_model("resnet18"), shape)  # import torchvision outside the timings
    head = ("model", "board", "trace_s", "explore_s", "ratio", "cli_s", "cli_out_s", "fps")
    print("{:14s} {:10s} {:>8s} {:>10s} {:>6s} {:>7s} {:>10s} {:>7s}".format(*head))
    for model in SUPPORTED_MODELS:
        t0 = time.perf_counter()
        layers_from_module(build_model(model), shape)
        base = time.perf_counter() - t0
        L = model_layers(model)
        for name in args.boards.split(","):
            t0 = time.perf_counter()
            res = explore(L, load_board(name))
            dt = time.perf_counter() - t0
            cmd = [*CLI, "explore", "--model", model, "--board", name, "--modes", "all", "--json"]
            cli = _wall(cmd)
            with tempfile.TemporaryDirectory() as out:
                cli_out = _wall([*cmd, "--out", out])
            print(f"{model:14s} {name:10s} {base:8.3f} {dt:10.3f} {dt / base:6.1f} "
                  f"{cli:7.2f} {cli_out:10.2f} {res.performance['fps']:7.1f}")


if __name__ == "__main__":
    main()
