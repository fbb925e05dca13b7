"""Paper anchor: the FILM-QNN paper's own accelerators as design points, modelled vs measured.

Run: .venv/bin/python bench/paper_anchor.py [--json] [--layers] [--implied] [--what-if]
                                            [--spread] [--derive]
  (default) the twelve measured rows of Tables 5 and 6 (intra- and inter-layer ResNet-18,
            ResNet-50, MobileNet-V2 on PYNQ-Z2 @ 100 MHz and ZCU102 @ 150 MHz): the paper's
            design point, measured FPS, modelled FPS, modelled / measured, inside +-25 %
  --json    the same as JSON (option set, design points, rows with per-layer cycles)
  --layers  per row: frame-cycle shares by layer category, the share of memory-bound cycles,
            the array-busy floor of the frame and its five largest layers
  --implied per design: what the measured ResNet-50 / ResNet-18 pair implies without any
            model (the MACs per cycle of the extra ResNet-50 layers, and the cycles left for
            ResNet-18's first conv and FC), beside the model's first conv
  --what-if per row: modelled / measured with one candidate change each (patched for the
            run only, not the model; docs/paper_anchor.md)
  --spread  per row: modelled FPS over the grid of what the paper leaves out (Tn among Table
            4's factorisations, Tr x Tc, AXI ports): min / max, how many inside the band
  --derive  the derivation of the design points (Table 4 products, DSP and BRAM counts of
            Tables 5 / 6 under the resource model, Eq. 13 ports), checked against DESIGNS
Every FPS here is modelled by ``filmqnn.hw.performance`` except the measured column, which is
the paper's (FILM-QNN, FPGA'22, Tables 5 and 6). No per-row factor is applied. The design
points and every inference behind them: docs/paper_anchor.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from filmqnn.hw import performance
from filmqnn.hw.design import PIXELS, DesignPoint, EngineOptions, design_arrays, engine_layers
from filmqnn.hw.devices import load_board
from filmqnn.hw.layers import LayerShape, model_layers
from filmqnn.hw.performance import network_performance
from filmqnn.hw.resources import POST_DSP, estimate_resources, mac_costs

#: The engine the paper describes (§3.2: Algorithm 2 after [50]): every newer mode off but
#: the stem-pool fusion.
#: split8: W8 filters run on their own compute engine (§3.2.2; §4.4 inter-layer design);
#: first_im2col / im2col_onchip: §3.2 runs every conv through the same tiled loop nest;
#: dw_taps: §4.4, depthwise layers lose the input-channel (Tn) parallelism;
#: axi_outstanding: each tile is one burst of the double-buffered load stage (§3.2);
#: layer_queue: nothing in the paper fetches layer descriptors: the host starts each layer;
#: pipe_rewind: Loop L1 is pipelined per tile; fuse_stem_pool on: §3.2.4 runs BN, ReLU,
#: pooling and the skip add before the output buffer is stored (the model fuses the add
#: always, the stem max pool with this mode; the global average pool stays a layer);
#: multi_chunk / input_reuse: one Tn-channel input tile per weight tile (Algorithm 2, Eq. 15);
#: fm_store / band_fusion: every tile is loaded from and stored to DDR (§3.2, §3.3.2).
PAPER_ENGINE = EngineOptions(
    split8=False, first_im2col=False, im2col_onchip=False, dw_taps=False,
    axi_outstanding=False, layer_queue=False, pipe_rewind=False, fuse_stem_pool=True,
    multi_chunk=False, input_reuse=False, fm_store=False, band_fusion=False,
)

BOARDS = ("pynq-z2", "zcu102")
MODELS = ("resnet18", "resnet50", "mobilenet_v2")
SCHEMES = ("intra", "inter")
BAND = 0.25

#: Measured FPS: Table 5 (PYNQ-Z2) and Table 6 (ZCU102); §4.4 repeats the intra-layer rows.
MEASURED: dict[tuple[str, str, str], float] = {
    ("pynq-z2", "resnet18", "intra"): 27.8, ("pynq-z2", "resnet50", "intra"): 13.3,
    ("pynq-z2", "mobilenet_v2", "intra"): 132.3,
    ("pynq-z2", "resnet18", "inter"): 12.9, ("pynq-z2", "resnet50", "inter"): 7.8,
    ("pynq-z2", "mobilenet_v2", "inter"): 49.2,
    ("zcu102", "resnet18", "intra"): 214.8, ("zcu102", "resnet50", "intra"): 109.1,
    ("zcu102", "mobilenet_v2", "intra"): 537.9,
    ("zcu102", "resnet18", "inter"): 72.8, ("zcu102", "resnet50", "inter"): 47.4,
    ("zcu102", "mobilenet_v2", "inter"): 190.1,
}

#: Reported utilisation (Tables 5 / 6): LUTs, DSPs, BRAM36s of each implementation.
REPORTED: dict[tuple[str, str], dict[str, float]] = {
    ("pynq-z2", "intra"): {"lut": 41_300, "dsp": 208, "bram36": 123.0},
    ("pynq-z2", "inter"): {"lut": 39_100, "dsp": 214, "bram36": 126.5},
    ("zcu102", "intra"): {"lut": 180_100, "dsp": 2092, "bram36": 440.5},
    ("zcu102", "inter"): {"lut": 174_500, "dsp": 2096, "bram36": 439.0},
}

#: Table 4, "95% W4 + 5% W8, LUT + DSP": MACs per cycle (ops / 2) by precision and resource.
TABLE4_MACS: dict[str, dict[str, int]] = {
    "pynq-z2": {"lut4": 360, "dsp4": 576, "lut8": 0, "dsp8": 72},
    "zcu102": {"lut4": 0, "dsp4": 8192, "lut8": 512, "dsp8": 0},
}
#: §4.1: clocks and data packing sizes.
CLOCK_MHZ = {"pynq-z2": 100.0, "zcu102": 150.0}
PACKING_G = {"pynq-z2": 6, "zcu102": 8}

#: The paper's design points in the model's terms (``--derive`` rederives them; the docs
#: write each inference down). Inter-layer: a W4 and a W8 array, never busy together (§4.4),
#: W8 rows from the measured ResNet pair (``implied_w8_rows``), W4 rows the most that fit.
DESIGNS: dict[tuple[str, str], DesignPoint] = {
    ("pynq-z2", "intra"): DesignPoint(42, 3, 12, 14, 14, 6, dsp4=288, dsp8=36, post=14,
                                      clock_mhz=100.0, ports=2),
    ("pynq-z2", "inter"): DesignPoint(37, 5, 12, 14, 28, 6, dsp4=246, dsp8=60, post=14,
                                      clock_mhz=100.0, ports=2),
    ("zcu102", "intra"): DesignPoint(136, 8, 32, 14, 28, 8, dsp4=4096, dsp8=0, post=22,
                                     clock_mhz=150.0, ports=3),
    ("zcu102", "inter"): DesignPoint(128, 16, 32, 14, 28, 8, dsp4=3584, dsp8=260, post=22,
                                     clock_mhz=150.0, ports=3),
}


def one_plane_input(layers: list[LayerShape], fuse_pool: bool = True) -> list[LayerShape]:
    """The network input as one 5-bit plane (Tables 5 / 6: the first layer is W4A5 / W8A5;
    Eqs. 14-15 have 5-bit input tiles only). ``engine_layers`` runs the layer marked
    ``first`` as two 5-bit planes of an 8-bit input and no ``EngineOptions`` mode switches
    that off, so the mark is cleared; as ``engine_layers`` fuses the stem max pool only into
    a layer so marked, ``fuse_pool`` fuses it here the same way (§3.2.4: pooling runs before
    the output buffer is stored): the conv takes the pool's (K, stride, pad) and output."""
    out: list[LayerShape] = []
    for ly in layers:
        if (fuse_pool and ly.kind == "maxpool" and out and out[-1].first
                and out[-1].pool is None and (ly.N, ly.H, ly.W) == (out[-1].M, out[-1].R,
                                                                   out[-1].C)):
            out[-1] = replace(out[-1], pool=(ly.K, ly.stride, ly.pad), tout=ly.tout)
            continue
        out.append(ly)
    return [replace(ly, first=False) if ly.first else ly for ly in out]


def paper_layers(model: str, scheme: str, planes: int = 1) -> list[LayerShape]:
    """Engine layers of a paper row: intra-layer quantizes every layer mixed (Tables 5 / 6,
    "95% W4A5 + 5% W8A5"), inter-layer keeps the first and last layer W8A5 on the W8 array
    and runs the others all 4-bit on the W4 array (``LayerShape.w4_only``: the W8 array
    idles). ``planes=2``: the model's own 8-bit two-plane network input instead."""
    layers = model_layers(model, first_last_8bit=scheme == "inter",
                          inter_layer=scheme == "inter")
    return layers if planes == 2 else one_plane_input(layers, PAPER_ENGINE.fuse_stem_pool)


def evaluate(board: str, model: str, scheme: str, d: DesignPoint | None = None,
             opts: EngineOptions = PAPER_ENGINE, planes: int = 1) -> dict[str, Any]:
    """Modelled FPS and per-layer cycles of one paper row (optionally another design)."""
    b = load_board(board)
    d = d or DESIGNS[(board, scheme)]
    layers = paper_layers(model, scheme, planes)
    perf = network_performance(layers, d, b, opts)
    per = list(perf["layers"])
    shapes = engine_layers(layers, opts)  # as the engine runs them, one per entry of ``per``
    cycles = perf["cycles"]
    fps = d.clock_mhz * 1e6 / cycles
    meas = MEASURED[(board, model, scheme)]
    return {"board": board, "model": model, "scheme": scheme, "design": d, "cycles": cycles,
            "fps": fps, "measured_fps": meas, "ratio": fps / meas,
            "inside": bool(abs(fps / meas - 1) <= BAND), "layers": per, "shapes": shapes}


def all_rows() -> list[dict[str, Any]]:
    """The twelve measured rows, modelled."""
    return [evaluate(b, m, s) for b in BOARDS for s in SCHEMES for m in MODELS]


def design_cell(d: DesignPoint, scheme: str) -> str:
    """Tm4+Tm8 (inter: W4|W8 rows), Tn, Tr x Tc, G, ports, clock."""
    tm = f"{d.Tm4}+{d.Tm8}" if scheme == "intra" else f"{d.Tm4}\\|{d.Tm8}"
    return f"{tm}, {d.Tn}, {d.Tr}x{d.Tc}, {d.G}, {d.ports}, {d.clock_mhz:g}"


def print_table(rows: list[dict[str, Any]]) -> None:
    """The markdown table of the twelve rows."""
    print("| board | model | scheme | design: Tm4+Tm8 (inter W4\\|W8), Tn, Tr x Tc, G, ports, "
          "MHz | measured FPS | modelled FPS | modelled / measured | within +-25 % |")
    print("|---|---|---|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['board']} | {r['model']} | {r['scheme']} | "
              f"{design_cell(r['design'], r['scheme'])} | {r['measured_fps']:.1f} | "
              f"{r['fps']:.1f} | {r['ratio']:.2f} | {'yes' if r['inside'] else 'no'} |")


def category(ly: LayerShape, first: bool) -> str:
    """Layer category for the cycle shares."""
    if first:
        return "first conv"
    if ly.kind == "dwconv":
        return "depthwise"
    if ly.kind in ("maxpool", "gap"):
        return "pools"
    if ly.kind == "fc":
        return "FC"
    return f"{ly.K}x{ly.K} conv"


def breakdown(r: dict[str, Any]) -> dict[str, Any]:
    """Frame-cycle shares by category, memory-bound share, array-busy floor and the five
    largest layers of one evaluated row."""
    b = load_board(r["board"])
    d = r["design"]
    first = next(i for i, ly in enumerate(r["shapes"]) if ly.kind in ("conv", "dwconv", "fc"))
    cats: dict[str, float] = {}
    floors: dict[str, float] = {}
    mem = 0
    for i, (ly, p) in enumerate(zip(r["shapes"], r["layers"], strict=True)):
        k = category(ly, i == first)
        cats[k] = cats.get(k, 0.0) + p.cycles
        mem += p.cycles if p.bound == "memory" else 0
        busy = performance.compute_bound_vec(ly, design_arrays(d, b), PAPER_ENGINE)
        floors[k] = floors.get(k, 0.0) + float(np.ravel(busy)[0])
    floor = sum(floors.values())
    top = sorted(zip(r["shapes"], r["layers"], strict=True), key=lambda t: -t[1].cycles)[:5]
    return {
        "shares": {k: 100 * v / r["cycles"] for k, v in cats.items()},
        "floors": {k: round(v) for k, v in floors.items()},
        "memory_bound_share": 100 * mem / r["cycles"],
        "floor_cycles": round(floor),
        "floor_fps": d.clock_mhz * 1e6 / floor,
        "measured_cycles": round(d.clock_mhz * 1e6 / r["measured_fps"]),
        "top": [(p.name, p.kind, p.cycles, p.compute_cycles, p.memory_cycles, p.bound)
                for _, p in top],
    }


def print_layers(rows: list[dict[str, Any]]) -> None:
    """Per row: category shares, memory-bound share, array-busy floor, largest layers."""
    for r in rows:
        bd = breakdown(r)
        sh = ", ".join(f"{k} {v:.1f} %" for k, v in sorted(bd["shares"].items(),
                                                            key=lambda t: -t[1]))
        print(f"\n{r['board']} {r['model']} {r['scheme']}: modelled {r['cycles']} cycles "
              f"({r['fps']:.1f} FPS), measured {bd['measured_cycles']}; array-busy floor "
              f"{bd['floor_cycles']} cycles ({bd['floor_fps']:.1f} FPS); memory-bound layers "
              f"{bd['memory_bound_share']:.1f} % of the frame")
        print(f"  shares: {sh}")
        fl = ", ".join(f"{k} {v}" for k, v in sorted(bd["floors"].items(), key=lambda t: -t[1]))
        print(f"  array-busy floor by category (cycles, with each layer's start): {fl}")
        for name, kind, cyc, cmp_, mem, bound in bd["top"]:
            print(f"  {name:24s} {kind:7s} {cyc:8d} cycles ({100 * cyc / r['cycles']:4.1f} %), "
                  f"compute {cmp_}, memory {mem}: {bound}")


def first_pass_cycles(ly: LayerShape) -> int:
    """Array-busy cycles of one output pass of a conv with fewer channels than Tn (the first
    conv): every tap of every output pixel, ``PIXELS`` pixels per cycle (Algorithm 2)."""
    return ly.K * ly.K * ly.R * -(-ly.C // PIXELS)


def pair_implied(board: str, scheme: str) -> dict[str, float]:
    """What the measured ResNet-18 / ResNet-50 pair implies, without the model: the extra
    ResNet-50 layers (MACs_50 - MACs_18, all on the array of the middle layers) take
    T_50 - T_18 cycles, so they run at E MACs per cycle; ResNet-18's other layers at that E
    leave ``first_and_fc`` cycles of its frame for its first conv (the same layer in both
    networks) and FC: a lower bound on them where ResNet-18's other layers run at least as
    fast as ResNet-50's extra (mostly 1x1) layers."""
    t18, t50 = (CLOCK_MHZ[board] * 1e6 / MEASURED[(board, m, scheme)]
                for m in ("resnet18", "resnet50"))
    l18, l50 = (model_layers(m) for m in ("resnet18", "resnet50"))
    macs = [sum(ly.macs for ly in L) for L in (l18, l50)]
    e = (macs[1] - macs[0]) / (t50 - t18)
    first = next(ly for ly in l18 if ly.kind == "conv")
    return {"macs_per_cycle": e, "first_and_fc": t18 - (macs[0] - first.macs) / e,
            "first_pass": first_pass_cycles(first), "first_filters": first.M}


def implied_w8_rows(board: str) -> int:
    """W8 rows of the inter-layer design: the first conv's output passes the measured pair
    leaves room for (``pair_implied``, rounded), as rows: ceil(filters / passes)."""
    x = pair_implied(board, "inter")
    passes = max(1, round(x["first_and_fc"] / x["first_pass"]))
    return -(-x["first_filters"] // passes)


def print_implied() -> None:
    """``pair_implied`` for the four designs, beside their arrays and modelled first conv."""
    print("| board | scheme | extra ResNet-50 layers, MACs per cycle (measured pair) | peak "
          "MACs per cycle of the middle layers' array (design) | ResNet-18 first conv + FC, "
          "cycles (implied) | first conv, cycles (model) | first-conv passes implied |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for b in BOARDS:
        for s in SCHEMES:
            x = pair_implied(b, s)
            d = DESIGNS[(b, s)]
            peak = 2 * (d.Tm if s == "intra" else d.Tm4) * d.Tn
            first = evaluate(b, "resnet18", s)["layers"][0].cycles
            print(f"| {b} | {s} | {x['macs_per_cycle']:.0f} | {peak} | "
                  f"{x['first_and_fc']:.0f} | {first} | "
                  f"{x['first_and_fc'] / x['first_pass']:.1f} |")


@contextlib.contextmanager
def patched(obj: Any, **values: Any) -> Iterator[None]:
    """Set attributes of a module for the block only."""
    old = {k: getattr(obj, k) for k in values}
    try:
        for k, v in values.items():
            setattr(obj, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(obj, k, v)


#: The clock at which the model's ``AXI_LATENCY`` cycles were set (docs/hardware.md).
AXI_LATENCY_MHZ = 150.0


def what_if(r: dict[str, Any], name: str) -> float | None:
    """Modelled / measured of row ``r`` with one candidate change, or with the changes of a
    combination in ``COMBOS`` together (None: not applicable to the row)."""
    board, model, scheme, d = r["board"], r["model"], r["scheme"], r["design"]
    names = COMBOS.get(name, (name,))
    if name.startswith("inter:") and scheme != "inter":
        return None
    opts, planes = PAPER_ENGINE, 1
    with contextlib.ExitStack() as stack:
        for n in names:
            if n == "two-plane input":
                planes = 2
            elif n == "AXI latency in ns":
                cyc = round(performance.AXI_LATENCY * d.clock_mhz / AXI_LATENCY_MHZ)
                stack.enter_context(patched(performance, AXI_LATENCY=cyc))
            elif n == "post lanes x2":
                d = replace(d, post=2 * d.post)
            elif n == "depthwise 2 px":
                stack.enter_context(patched(
                    performance, dw_pixels=lambda dsp4: np.full(np.shape(dsp4), 2)))
            elif n == "depthwise taps on Tn":
                opts = replace(opts, dw_taps=True)
            elif n == "all-8-bit passes ceil(M / rows)":
                stack.enter_context(patched(
                    performance, m_passes=_whole_w8_passes(performance.m_passes)))
            elif n == "newer engine modes":
                opts = replace(opts, axi_outstanding=True, multi_chunk=True, input_reuse=True,
                               pipe_rewind=True, layer_queue=True)
            elif n == "all AXI ports":
                d = replace(d, ports=load_board(board).axi_ports)
            elif n == "inter: Tm4 = Tm8":
                d = balanced_rows(board)
            elif n == "inter: intra arrays":
                d = DESIGNS[(board, "intra")]
            else:
                raise ValueError(f"unknown what-if {n!r}")
        return evaluate(board, model, scheme, d, opts, planes)["ratio"]


def _whole_w8_passes(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``m_passes`` with an all-8-bit layer in ceil(M / capacity) passes (not grouped per
    Tm-filter tile, which leaves a negative last pass in ``pass_split``)."""

    def wrapped(ly: LayerShape, Tm4: Any, Tm8: Any, opts: EngineOptions) -> Any:
        if not ly.all8 or ly.kind in ("maxpool", "gap"):
            return fn(ly, Tm4, Tm8, opts)
        cap = np.maximum(performance.split8_capacity(Tm4, Tm8, opts), 1)
        zero = np.zeros_like(np.asarray(Tm4) + np.asarray(Tm8))
        return -(-ly.M // cap) + zero, zero, zero + ly.M

    return wrapped


@functools.cache
def balanced_rows(board: str) -> DesignPoint:
    """The other reading of "balanced" (§4.4): W4 and W8 arrays of equal rows."""
    return inter_design(board, tm8=0)


#: Combinations: the paper-consistent changes together (A), then with the project's newer
#: engine modes and every AXI port on top (B); the modes are not in the paper.
COMBOS: dict[str, tuple[str, ...]] = {
    "A: together": ("AXI latency in ns", "post lanes x2", "depthwise 2 px",
                    "depthwise taps on Tn", "all-8-bit passes ceil(M / rows)"),
}
COMBOS["B: A + newer modes, all ports"] = (*COMBOS["A: together"], "newer engine modes",
                                           "all AXI ports")
WHAT_IFS = ("two-plane input", "AXI latency in ns", "post lanes x2", "depthwise 2 px",
            "depthwise taps on Tn", "all-8-bit passes ceil(M / rows)", "inter: Tm4 = Tm8",
            "inter: intra arrays", *COMBOS)


def print_what_if(rows: list[dict[str, Any]]) -> None:
    """Modelled / measured per row with each candidate change alone."""
    print("| board | model | scheme | as modelled | " + " | ".join(WHAT_IFS) + " |")
    print("|---|---|---|---:|" + "---:|" * len(WHAT_IFS))
    for r in rows:
        cells = [what_if(r, n) for n in WHAT_IFS]
        print(f"| {r['board']} | {r['model']} | {r['scheme']} | {r['ratio']:.2f} | "
              + " | ".join("" if c is None else f"{c:.2f}" for c in cells) + " |")


#: Tile sizes tried, smallest first (divisors of the 112/56/28/14/7 maps, Tc >= Tr).
TILES = ((7, 7), (7, 14), (14, 14), (14, 28), (28, 28), (28, 56), (56, 56))
#: The spread grid: tiles and AXI ports (Eq. 13 leaves p_in, p_wgt open).
SPREAD_TILES = ((7, 14), (14, 14), (14, 28), (28, 28))
SPREAD_PORTS = {"pynq-z2": (2, 3, 4), "zcu102": (2, 3, 4, 6)}


def tn_options(board: str) -> list[int]:
    """Tn of the Table-4 factorisations MACs = 2 x (Tm4 + Tm8) x Tn with whole rows, G | Tn
    and G | Tm (one output pass writes whole G-channel words, Eq. 14)."""
    t, g = TABLE4_MACS[board], PACKING_G[board]
    m4, m8 = (t["lut4"] + t["dsp4"]) // 2, (t["lut8"] + t["dsp8"]) // 2
    return [tn for tn in range(g, m4 + 1, g)
            if m4 % tn == 0 and m8 % tn == 0 and ((m4 + m8) // tn) % g == 0]


def table4_design(board: str, tn: int, tile: tuple[int, int] = (14, 14),
                  ports: int = 2) -> DesignPoint:
    """The intra-layer design of Table 4's mixed LUT + DSP row with ``Tn`` columns: its MACs
    per cycle as PE rows, its DSP MACs as DSP positions, and post lanes from the DSPs Table
    5 / 6 report beyond the MAC DSPs (``POST_DSP`` each)."""
    t = TABLE4_MACS[board]
    m4, m8 = (t["lut4"] + t["dsp4"]) // 2, (t["lut8"] + t["dsp8"]) // 2
    mac_dsp = t["dsp4"] // 4 + t["dsp8"] // 2  # 4 W4A5 / 2 W8A5 products per DSP (Fig. 1)
    post = (REPORTED[(board, "intra")]["dsp"] - mac_dsp) // POST_DSP
    return DesignPoint((m4 + m8) // tn, m8 // tn, tn, *tile, PACKING_G[board],
                       dsp4=t["dsp4"] // 2, dsp8=t["dsp8"] // 2, post=post,
                       clock_mhz=CLOCK_MHZ[board], ports=ports)


def eq13_ports(d: DesignPoint, board: str) -> int:
    """p_in + p_wgt from Eq. 13 (max{C_in, C_wgt} <= C_cmpt) as the paper writes it, for
    the layer that needs most, a 1x1 conv (C_cmpt = Tr*Tc): p_in = ceil(5 Tn / S_port),
    p_wgt = ceil(Tm Tn (8R + 4(1-R)) / (S_port Tr Tc)). The output port's write channel is
    not separate in the model: writes share the same ports."""
    s = load_board(board).axi_width_bits
    r = d.Tm8 / d.Tm
    p_in = math.ceil(5 * d.Tn / s)
    p_wgt = math.ceil(d.Tm * d.Tn * (8 * r + 4 * (1 - r)) / (s * d.Tr * d.Tc))
    return p_in + p_wgt


def modelled_resources(d: DesignPoint, board: str, scheme: str) -> dict[str, int]:
    """The resource model's LUT / DSP / BRAM18K of a design, the largest over the three
    networks (one bitstream per board and scheme runs all three). Without this project's
    layer tables (``resources`` part ``tables``: the kernel's requantization table and gather
    arrays, as deep as the widest layer): the paper does not say how its engine holds its
    requantization parameters, so its reported BRAMs are matched by the buffers it does
    describe."""
    b = load_board(board)
    rs = []
    for m in MODELS:
        r = estimate_resources(model_layers(m, first_last_8bit=scheme == "inter"), d, b,
                               PAPER_ENGINE)
        rs.append({**r.totals(), "bram18k": r.bram18k - r.breakdown["tables"]["bram18k"]})
    return {k: max(r[k] for r in rs) for k in ("lut", "dsp", "bram18k")}


def bram_tile(d: DesignPoint, board: str, scheme: str, eq13: bool = False) -> DesignPoint:
    """``d`` with the largest tile of ``TILES`` whose modelled BRAM18Ks fit the BRAM36s
    Table 5 / 6 report for the implementation (x 2); ``eq13``: with ``eq13_ports`` at each
    tile (the ports' FIFOs take BRAMs too)."""
    cap = 2 * REPORTED[(board, scheme)]["bram36"]
    best = replace(d, Tr=TILES[0][0], Tc=TILES[0][1])
    for tr, tc in TILES:
        t = replace(d, Tr=tr, Tc=tc)
        t = replace(t, ports=eq13_ports(t, board)) if eq13 else t
        if modelled_resources(t, board, scheme)["bram18k"] <= cap:
            best = t
    return best


def dsp_split(board: str, tm4: int, tm8: int, tn: int, budget: int) -> tuple[int, int]:
    """(dsp4, dsp8) as the DSE splits ``budget`` DSPs: the precision that saves most LUTs
    per DSP first (UltraScale+: 4-bit, 7-series: 8-bit); two W4 filters of one column per
    DSP, whole pairs first (``dsp4`` is the kernel's position bound, ``pe4_dsp_map``), one W8
    position per DSP."""
    c = mac_costs(load_board(board), False)

    def w4(slices: int) -> tuple[int, int]:
        s4 = min(-(-tm4 // 2) * tn, slices)
        return min(tm4 * tn, 2 * (s4 // tn) * tn + s4 % tn), s4

    if c.ppd4 * (c.lut4 - c.dlut4) >= c.ppd8 * (c.lut8 - c.dlut8):
        d4, s4 = w4(budget)
        return d4, min(tm8 * tn, budget - s4)
    d8 = min(tm8 * tn, budget)
    return w4(budget - d8)[0], d8


def inter_design(board: str, tm8: int | None = None,
                 base: DesignPoint | None = None) -> DesignPoint:
    """The inter-layer design on the intra design's Tn, G, post lanes, ports and clock: a W8
    array of ``tm8`` rows (default ``implied_w8_rows``) and the largest W4 array whose
    modelled LUTs and DSPs fit what Table 5 / 6 report for the inter-layer implementation;
    ``tm8=0``: the "balanced rows" reading instead, Tm4 = Tm8 as large as fits. DSPs split
    by ``dsp_split``; the tile by ``bram_tile``."""
    base = base or DESIGNS[(board, "intra")]
    rep = REPORTED[(board, "inter")]
    budget = int(rep["dsp"]) - POST_DSP * base.post
    w8 = implied_w8_rows(board) if tm8 is None else tm8
    best = None
    for x in range(1, 1024):
        tm4, t8 = x, (w8 if w8 else x)
        d4, d8 = dsp_split(board, tm4, t8, base.Tn, budget)
        d = replace(base, Tm=tm4 + t8, Tm8=t8, dsp4=d4, dsp8=d8)
        res = modelled_resources(d, board, "inter")
        if res["lut"] > rep["lut"] or res["dsp"] > rep["dsp"]:
            break
        best = d
    assert best is not None
    return bram_tile(best, board, "inter")


def derive() -> dict[tuple[str, str], DesignPoint]:
    """Rederive the four design points and check them against ``DESIGNS``. Intra: of Table
    4's factorisations (``tn_options``) the largest Tn whose modelled BRAM18Ks fit Table 5 /
    6 at the smallest tile, then ``bram_tile`` with Eq. 13 ports; inter: ``inter_design``."""
    out = {}
    for board in BOARDS:
        cap = 2 * REPORTED[(board, "intra")]["bram36"]
        fit = []
        for tn in tn_options(board):
            d = bram_tile(table4_design(board, tn), board, "intra", eq13=True)
            res = modelled_resources(d, board, "intra")
            print(f"{board} intra Tn={tn}: {d.Tm4}+{d.Tm8} rows, BRAM18K {res['bram18k']} at "
                  f"{d.Tr}x{d.Tc} (reported {cap:g}), DSP {res['dsp']} (reported "
                  f"{REPORTED[(board, 'intra')]['dsp']:g}), LUT {res['lut']} (reported "
                  f"{REPORTED[(board, 'intra')]['lut']:g})")
            if res["bram18k"] <= cap:
                fit.append(d)
        out[(board, "intra")] = fit[-1]
    for board in BOARDS:
        x = pair_implied(board, "inter")
        print(f"{board} inter: the measured pair leaves {x['first_and_fc']:.0f} cycles for the "
              f"first conv + FC = {x['first_and_fc'] / x['first_pass']:.2f} passes of "
              f"{x['first_pass']} cycles: {implied_w8_rows(board)} W8 rows")
        out[(board, "inter")] = inter_design(board, base=out[(board, "intra")])
    for k, d in out.items():
        res = modelled_resources(d, *k)
        same = "matches DESIGNS" if d == DESIGNS[k] else f"DIFFERS from DESIGNS {DESIGNS[k]}"
        print(f"{k[0]} {k[1]}: {design_cell(d, k[1])}, dsp4 {d.dsp4} dsp8 {d.dsp8} post "
              f"{d.post}; modelled LUT {res['lut']} DSP {res['dsp']} BRAM18K {res['bram18k']} "
              f"vs reported {REPORTED[k]}: {same}")
    print_tile_table(out)
    return out


def print_tile_table(designs: dict[tuple[str, str], DesignPoint],
                     tiles: tuple[tuple[int, int], ...] = ((14, 14), (14, 28), (28, 28))) -> None:
    """docs/paper_anchor.md's Tr x Tc table: each design's modelled BRAM18Ks at ``tiles``
    (with Eq. 13's ports at each tile), the reported BRAM36 x 2 and the chosen tile."""
    print("\n| design | " + " | ".join(f"{r}x{c}" for r, c in tiles) + " | reported | chosen |")
    print("|---|" + "---:|" * (len(tiles) + 1) + "---|")
    for board, scheme in sorted(designs, key=lambda k: (BOARDS.index(k[0]), k[1] == "inter")):
        d = designs[(board, scheme)]
        cells = []
        for tr, tc in tiles:
            t = replace(d, Tr=tr, Tc=tc)
            t = replace(t, ports=eq13_ports(t, board))
            cells.append(str(modelled_resources(t, board, scheme)["bram18k"]))
        cap = 2 * REPORTED[(board, scheme)]["bram36"]
        print(f"| {board.upper()} {scheme} | " + " | ".join(cells)
              + f" | {cap:g} | {d.Tr}x{d.Tc} |")


def spread_designs(board: str, scheme: str) -> Iterator[DesignPoint]:
    """The grid around one design: the other Table-4 Tn (intra), tiles and AXI ports."""
    d0 = DESIGNS[(board, scheme)]
    bases = [d0]
    if scheme == "intra":
        bases += [replace(table4_design(board, tn), ports=d0.ports)
                  for tn in tn_options(board) if tn != d0.Tn]
    for d, (tr, tc), p in itertools.product(bases, SPREAD_TILES, SPREAD_PORTS[board]):
        yield replace(d, Tr=tr, Tc=tc, ports=p)


def print_spread(rows: list[dict[str, Any]]) -> None:
    """Modelled FPS over the grid per row: min and max with their designs."""
    print("| board | model | scheme | measured | modelled | grid min (Tm4+Tm8, Tn, tile, "
          "ports) | grid max | grid designs within +-25 % |")
    print("|---|---|---|---:|---:|---|---|---:|")

    def cell(t: tuple[float, DesignPoint]) -> str:
        f, d = t
        return f"{f:.1f} ({d.Tm4}+{d.Tm8}, {d.Tn}, {d.Tr}x{d.Tc}, {d.ports})"

    for r in rows:
        runs = [(evaluate(r["board"], r["model"], r["scheme"], d)["fps"], d)
                for d in spread_designs(r["board"], r["scheme"])]
        inside = sum(abs(f / r["measured_fps"] - 1) <= BAND for f, _ in runs)
        print(f"| {r['board']} | {r['model']} | {r['scheme']} | {r['measured_fps']:.1f} | "
              f"{r['fps']:.1f} | {cell(min(runs, key=lambda t: t[0]))} | "
              f"{cell(max(runs, key=lambda t: t[0]))} | {inside} / {len(runs)} |")


def to_json(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON form: option set, design points with the reported utilisation, rows, layers."""
    return {
        "source": "FILM-QNN (FPGA'22) Tables 4-6 (measured); filmqnn.hw.performance (modelled)",
        "band": BAND,
        "options": PAPER_ENGINE.to_dict(),
        "designs": {f"{b}/{s}": {**d.to_dict(), "reported": REPORTED[(b, s)]}
                    for (b, s), d in DESIGNS.items()},
        "rows": [
            {k: r[k] for k in ("board", "model", "scheme", "cycles", "measured_fps", "inside")}
            | {"modelled_fps": round(r["fps"], 2), "ratio": round(r["ratio"], 4),
               "layers": [p.to_dict() for p in r["layers"]]}
            for r in rows
        ],
    }


SECTIONS: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "layers": print_layers,
    "implied": lambda rows: print_implied(),
    "what_if": print_what_if,
    "spread": print_spread,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    ap.add_argument("--layers", action="store_true", help="per-row cycle shares and floors")
    ap.add_argument("--implied", action="store_true", help="what the measured pairs imply")
    ap.add_argument("--what-if", action="store_true", help="candidate changes, one each")
    ap.add_argument("--spread", action="store_true", help="FPS over the inference grid")
    ap.add_argument("--derive", action="store_true", help="rederive the design points")
    args = ap.parse_args()
    if args.derive:
        derive()
        return
    rows = all_rows()
    if args.json:
        print(json.dumps(to_json(rows), indent=1))
        return
    print_table(rows)
    for name, fn in SECTIONS.items():
        if getattr(args, name):
            print()
            fn(rows)


if __name__ == "__main__":
    main()
