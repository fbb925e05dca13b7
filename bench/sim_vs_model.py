"""Largest deviation of the analytic cycle model from the schedule simulator, per network.

Run: .venv/bin/python bench/sim_vs_model.py
For the DSE's best mixed design (r = 5 %) of ResNet-18, ResNet-50 and MobileNet-V2 at
224x224 on ZCU102 and PYNQ-Z2 (default clocks and engine options), every layer is simulated
tile by tile and compared with the analytic model; the worst layer is printed (the tests
require |deviation| <= 5 % on every layer). The last column is the network's total in the
search's closed form (``network_cycles_vec``, overlapped) against the exact lock-step walk.
"""

from __future__ import annotations

from filmqnn.hw.design import design_arrays
from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore
from filmqnn.hw.layers import model_layers
from filmqnn.hw.performance import network_cycles_vec, network_performance
from filmqnn.hw.schedule_sim import simulate_network


def main() -> None:
    print(f"{'board':10s} {'model':14s} {'worst layer':28s} {'analytic':>9s} {'simulated':>9s} "
          f"{'deviation':>9s} {'search':>7s}")
    for board in ("zcu102", "pynq-z2"):
        b = load_board(board)
        for model in ("resnet18", "resnet50", "mobilenet_v2"):
            layers = model_layers(model)
            r = explore(layers, b)
            d = r.best
            perf = network_performance(layers, d, b, r.options)
            ana = perf["layers"]
            closed = float(network_cycles_vec(layers, design_arrays(d, b), b, d.clock_mhz,
                                              r.options)[0])
            sim = simulate_network(layers, d, b, r.options)
            a, (name, s) = max(zip(ana, sim, strict=True),
                               key=lambda p: abs(p[0].cycles - p[1][1]) / p[1][1])
            print(f"{board:10s} {model:14s} {name:28s} {a.cycles:9d} {s:9d} "
                  f"{100 * (a.cycles - s) / s:+8.1f}% "
                  f"{100 * (closed - perf['cycles']) / perf['cycles']:+6.1f}%")


if __name__ == "__main__":
    main()
