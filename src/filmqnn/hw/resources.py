"""Resource model (LUT, FF, DSP, BRAM18K) of a design point (paper Eqs. 6-7 and 14, extended).

* MACs: each PE position computes ``PIXELS`` products per cycle; on LUTs each costs
  ``mac_cost(family, "lut", b, 5)``, on a packed DSP ``mac_cost(family, "dsp", b, 5)`` LUT/FF of
  glue plus ``1/products_per_dsp`` of a DSP (``best_packing``; general schemes only, because one
  array serves every layer shape). Packing and LUT costs come only from those two modules.
* Weight registers: every PE position holds its weight for one kernel tap (plus a shadow copy
  being reloaded), ``2 * Tn * (4*Tm4 + 8*Tm8)`` FFs.
* Depthwise taps (``dw_taps``): a sliding-window register per PE row and a mux in front of the
  tap columns' activation inputs.
* Buffers on BRAM18K, each a set of banks of (width, depth) mapped onto the cheapest aspect
  ratio 1x16K ... 36x512 (Eq. 14 with all aspect ratios). Input banks are split into (row,
  column) phases so one cycle's reads never share a bank. Input and weight banks keep both
  ping-pong halves in one BRAM (read port computes, write port loads); output accumulators
  are read-modify-write every cycle, so their two halves are separate BRAMs, or, with the
  design's ``acc_lutram``, separate LUTRAMs (``buffers.lutram_luts``: a tile's accumulator
  bank holds ``Tr * ceil(Tc/2)`` words, a tenth of a BRAM18K or less).
* Post-processing (requantize, ReLU, residual add, pool compare): ``post`` lanes (a design
  parameter), each ``POST_DSP`` DSPs (int32 x 16-bit multiplier) + ``POST_LUT`` / ``POST_FF``.
* Control and AXI: ``CTRL_*`` for the FSM / AXI-lite plus ``PORT_*`` per m_axi port, plus
  ``QUEUE_*`` for the descriptor fetcher with ``layer_queue``.
* Feature-map store (``DesignPoint.store`` BRAM18Ks): its BRAMs, the read mux over them, the
  gearboxes to the bank word format and its address control (``feature_store``).
* The Vivado-implied per-MAC LUT costs come from whole-accelerator utilisation (paper Table 4),
  so they already hold the LUTs of the paper's control, 2 AXI ports and post-processing lanes
  (``lut_costs.included_fixed_logic``): LUTs are charged only for ports and lanes beyond those
  (FFs come from Yosys per-MAC slopes and are charged in full).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from filmqnn.formats import ACC_BITS, INPUT_BITS
from filmqnn.hw.buffers import (
    bank_phases,
    bram18k_count,
    buffer_geometry,
    dw_window,
    lutram_luts,
    table_brams,
    weight_banks,
)
from filmqnn.hw.design import (
    ACT_BITS,
    PIXELS,
    DesignPoint,
    EngineOptions,
    design_arrays,
    engine_layers,
    pool_tiling,
)
from filmqnn.hw.devices import Board
from filmqnn.hw.dsp_packing import best_packing
from filmqnn.hw.layers import LayerShape
from filmqnn.hw.lut_costs import included_fixed_logic, mac_cost
from filmqnn.hw.residency import BRAM_WIDTH

#: Post-processing lane: int32 x 16-bit requant multiply on 2 DSPs, rounding/clamp/ReLU/add.
POST_DSP, POST_LUT, POST_FF = 2, 150, 200
#: Engine control (loop FSM, AXI-lite registers, address generators); its LUTs are inside the
#: Vivado-implied MAC costs (``lut_costs.included_fixed_logic``), so only FFs are charged.
CTRL_FF, CTRL_BRAM = 3500, 0
#: Descriptor fetcher of ``layer_queue``: the 160-byte descriptor register (1,280 FFs) and its
#: small FSM.
QUEUE_LUT, QUEUE_FF = 300, 1400
#: Per m_axi port: HLS adapter with burst FIFOs plus its share of the PS interconnect.
PORT_LUT, PORT_FF, PORT_BRAM = 2200, 3000, 2
#: Feature-map store: the address decode of its beat ranges beside the AXI addresses (estimate).
STORE_CTRL_LUT, STORE_CTRL_FF = 400, 600
#: Band rings (``band_fusion``): the read and write address generators wrap a row counter at
#: the ring's rows and add a row offset (two counters, comparators and adders; estimate).
STORE_RING_LUT, STORE_RING_FF = 150, 100


@dataclass(frozen=True)
class Resources:
    """Modelled utilisation of one design point, with a breakdown by part."""

    lut: int
    ff: int
    dsp: int
    bram18k: int
    breakdown: dict[str, dict[str, int]]

    def totals(self) -> dict[str, int]:
        """The four totals keyed like a board's limits."""
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram18k": self.bram18k}


@cache
def _packing(dsp_kind: str, wbits: int, signed_act: bool) -> int:
    return best_packing(dsp_kind, wbits, ACT_BITS, signed_act, general_only=True).products_per_dsp


def pe4_dsp_map(Tm4: Any, Tn: Any, dsp4: Any) -> tuple[Any, Any]:
    """(DSP slices, PE4 positions they hold) when ``dsp4`` positions are asked for on DSPs,
    as the kernel maps them: a packed DSP holds two filters (rows 2q, 2q+1) of one input
    channel (column n), and pair q of column n sits on a DSP when position 2q*Tn + n is below
    ``dsp4`` (hls/templates/engine.cpp.j2 compute_conv). An odd Tm4's last pair holds one
    filter and still takes its DSPs: ceil(Tm4/2)*Tn slices for the whole array."""
    Tm4, Tn, dsp4 = np.asarray(Tm4), np.asarray(Tn), np.asarray(dsp4)
    pairs = -(-Tm4 // 2)
    full = np.minimum(pairs, dsp4 // (2 * Tn))
    part = np.where(full < pairs, np.minimum(dsp4 - full * 2 * Tn, Tn), 0)
    odd_last = Tm4 % 2 == 1
    rows_full = 2 * full - (odd_last & (full == pairs))  # rows the full pairs hold
    rows_part = np.where(odd_last & (full == pairs - 1), 1, 2)
    return full * Tn + part, rows_full * Tn + rows_part * part


@dataclass(frozen=True)
class MacCosts:
    """Per-MAC LUT/FF costs and products per DSP of one family, both precisions."""

    lut4: float
    ff4: float
    lut8: float
    ff8: float
    dlut4: float  # glue LUTs per MAC on a packed DSP
    dff4: float
    dlut8: float
    dff8: float
    ppd4: int
    ppd8: int
    base_ports: int  # AXI ports whose LUTs the per-MAC costs already hold
    base_post: int  # post-processing lanes whose LUTs the per-MAC costs already hold


def mac_costs(board: Board, signed_act: bool) -> MacCosts:
    """Per-MAC costs of the board's family from ``lut_costs`` and ``dsp_packing``."""
    f = board.family
    l4, l8 = mac_cost(f, "lut", 4, ACT_BITS), mac_cost(f, "lut", 8, ACT_BITS)
    d4, d8 = mac_cost(f, "dsp", 4, ACT_BITS), mac_cost(f, "dsp", 8, ACT_BITS)
    inc = included_fixed_logic(f)
    return MacCosts(
        l4.lut, l4.ff, l8.lut, l8.ff, d4.lut, d4.ff, d8.lut, d8.ff,
        _packing(board.dsp_kind, 4, signed_act), _packing(board.dsp_kind, 8, signed_act),
        inc["axi_ports"], inc["post_dsps"] // POST_DSP,
    )


def im2col_unit(layers: list[LayerShape], D: dict[str, Any], opts: EngineOptions) -> dict:
    """LUT / FF / BRAM18K of the on-chip im2col of a raw-input layer (``im2col_onchip``): the
    raw 8-bit tile in ``ch*K`` (channel, row phase) banks (BRAM18Ks, or LUTRAM with the
    design's ``raw_lutram``), each delivering ``PIXELS*S`` new
    columns per cycle into a ``K x (K-1+PIXELS*S)`` window register per channel, and per
    column a mux picking its tap of the step (and the bit plane) plus the 2:1 conv-bus mux."""
    Tn, Tr, Tc = (np.asarray(D[k]) for k in ("Tn", "Tr", "Tc"))
    lutram = np.asarray(D.get("raw_lutram", False))
    zero = np.zeros(np.broadcast(Tn, Tr, Tc, lutram).shape)
    raw = [ly for ly in engine_layers(layers, opts) if ly.raw is not None]
    if not raw:
        return {"lut": zero, "ff": zero, "bram18k": zero}
    ly = raw[0]
    ch, k, st = ly.raw
    tr, tc = np.minimum(Tr, ly.R), np.minimum(Tc, ly.C)
    rin, cin = (tr - 1) * st + k, (tc - 1) * st + k
    width = INPUT_BITS * PIXELS * st
    depth = 2 * -(-rin // k) * -(-cin // (PIXELS * st))  # ping-pong halves in one BRAM
    options = -(-ly.N // Tn) * ly.planes
    banks = ch * k
    return {
        "lut": zero + Tn * PIXELS * ACT_BITS * (-(-(options - 1) // 3) + 1)
        + np.where(lutram, banks * lutram_luts(width, depth), 0),
        "ff": zero + ch * k * (k - 1 + PIXELS * st) * INPUT_BITS,
        "bram18k": zero + np.where(lutram, 0, banks * bram18k_count(width, depth)),
    }


def stem_pool_halo(layers: list[LayerShape], D: dict[str, Any], opts: EngineOptions) -> dict:
    """FF / BRAM18K of a max pool fused into a conv's write-back (``fuse_stem_pool``), as the
    kernel holds it for all M channels (5-bit values): one bank with the halo conv rows above
    the tile row (lines of the map's width) and the pooled rows of the tile row until its
    last tile writes them; the halo columns of the tile to the left in registers
    (``design.pool_tiling``: one halo line for a 3x3 / 2 pool on even tiles, two on odd)."""
    Tr, Tc = np.asarray(D["Tr"]), np.asarray(D["Tc"])
    shape = np.broadcast(Tr, Tc).shape
    zero = np.zeros(shape)
    fused = [ly for ly in engine_layers(layers, opts) if ly.pool is not None]
    if not fused:
        return {"ff": zero, "bram18k": zero}
    ly = fused[0]
    k, st, p = ly.pool
    rows_out, cols_out = (ly.R + 2 * p - k) // st + 1, (ly.C + 2 * p - k) // st + 1
    width = ly.M * ACT_BITS
    ff, bram = np.zeros(shape), np.zeros(shape)
    keys = np.unique(np.ravel(np.asarray(Tr) * (1 << 20) + np.asarray(Tc)))
    for tr, tc in ((int(key >> 20), int(key & ((1 << 20) - 1))) for key in keys):
        h_r, most = pool_tiling(ly.pool, ly.R, rows_out, tr)
        h_r, h_c = max(h_r, 1), max(pool_tiling(ly.pool, ly.C, cols_out, tc)[0], 1)
        at = (Tr == tr) & (Tc == tc)
        ff = np.where(at, h_c * min(tr, ly.R) * width, ff)
        bram = np.where(at, bram18k_count(width, h_r * ly.C + most * cols_out), bram)
    return {"ff": ff, "bram18k": bram}


def feature_store(D: dict[str, Any], axi_bits: int, rings: bool = False) -> dict[str, Any]:
    """LUT / FF / BRAM18K of the feature-map store (``DesignPoint.store`` BRAM18Ks): ``store_banks``
    banks of AXI beats per port (``residency.store_layout``), so it reads and writes ``banks x
    axi_bits`` bits per cycle; a bank stands ``ceil(axi_bits / 36)`` BRAMs wide and ``rows``
    512-beat blocks deep, and every bit of a read port takes a ``rows``:1 mux of LUT6s (3 more
    inputs each); plus the address decode (with the band rings' wrapping address generators when
    ``rings``)."""
    store = np.asarray(D.get("store", 0))
    banks = np.asarray(D["ports"]) * np.asarray(D.get("store_banks", 1))
    width = banks * axi_bits
    rows = store // (banks * -(-axi_bits // BRAM_WIDTH))
    on = store > 0
    mux = width * -(-np.maximum(rows - 1, 0) // 3)
    return {
        "lut": np.where(on, mux + STORE_CTRL_LUT + rings * STORE_RING_LUT, 0),
        "ff": np.where(on, 2 * width + STORE_CTRL_FF + rings * STORE_RING_FF, 0),
        "bram18k": store,
    }


def resources_vec(
    layers: list[LayerShape], D: dict[str, Any], board: Board, opts: EngineOptions,
    costs: MacCosts,
) -> dict[str, Any]:
    """LUT / FF / DSP / BRAM18K arrays for arrays of designs (``D`` adds dsp4, dsp8)."""
    Tm4, Tm8, Tn, Tr, Tc, G = (np.asarray(D[k]) for k in ("Tm4", "Tm8", "Tn", "Tr", "Tc", "G"))
    dsp4, dsp8 = np.asarray(D["dsp4"]), np.asarray(D["dsp8"])
    Tm = Tm4 + Tm8
    has_dw = any(ly.kind == "dwconv" for ly in layers)
    geo = buffer_geometry(layers, D, opts)
    ports = np.asarray(D.get("ports", board.axi_ports))
    # the Vivado-implied MAC costs already hold the LUTs of the paper's control, AXI ports and
    # post-processing lanes: charge LUTs only for what this design has beyond them
    extra_ports = np.maximum(ports - costs.base_ports, 0)
    ctrl_lut = extra_ports * PORT_LUT + (QUEUE_LUT if opts.layer_queue else 0)
    ctrl_ff = CTRL_FF + ports * PORT_FF + (QUEUE_FF if opts.layer_queue else 0)

    # MAC arrays (PIXELS products per PE position)
    dsp4_slices, dsp4 = pe4_dsp_map(Tm4, Tn, dsp4)
    lut4_pos, lut8_pos = Tm4 * Tn - dsp4, Tm8 * Tn - dsp8
    mac_lut = PIXELS * (lut4_pos * costs.lut4 + lut8_pos * costs.lut8)
    mac_ff = PIXELS * (lut4_pos * costs.ff4 + lut8_pos * costs.ff8)
    glue_lut = PIXELS * (dsp4 * costs.dlut4 + dsp8 * costs.dlut8)
    glue_ff = PIXELS * (dsp4 * costs.dff4 + dsp8 * costs.dff8)
    mac_dsp = dsp4_slices + -(-(PIXELS * dsp8) // costs.ppd8)
    wreg_ff = 2 * Tn * (4 * Tm4 + 8 * Tm8)

    lanes = np.asarray(D["post"])  # requantized values per cycle
    post_lut = np.maximum(lanes - costs.base_post, 0) * POST_LUT

    # buffers
    rp, cp = bank_phases(layers, opts)
    in_banks = rp * cp * -(-(np.maximum(Tn, Tm) if has_dw else Tn) // G)
    b_in = in_banks * bram18k_count(ACT_BITS * G, 2 * geo["in_depth"])
    # depthwise taps: a K x (K - 1 + PIXELS*S) window register per PE row and a 2:1 mux in
    # front of every tap column's activation inputs (LUT6_2: two bits per LUT)
    k_dw, s_dw = dw_window(layers, opts)
    win_ff = Tm * ACT_BITS * k_dw * (k_dw - 1 + PIXELS * s_dw)
    win_lut = Tm * np.minimum(Tn, k_dw * k_dw) * PIXELS * -(-ACT_BITS // 2)
    wb = weight_banks(Tm4, Tm8, Tn, geo["w_taps"])  # taps x the design's buf
    b_w4 = -(-Tm4 // wb["rows4"]) * bram18k_count(wb["bank4"], wb["depth"])
    b_w8 = -(-Tm8 // wb["rows8"]) * bram18k_count(wb["bank8"], wb["depth"])
    # two ping-pong halves x PIXELS column banks per PE row, each read-modify-written every
    # cycle: on BRAM18Ks, or on LUTRAM (``acc_lutram``)
    acc_banks, acc_lutram = 2 * PIXELS * Tm, np.asarray(D.get("acc_lutram", False))
    b_acc = np.where(acc_lutram, 0, acc_banks * bram18k_count(ACC_BITS, geo["acc_depth"]))
    acc_lut = np.where(acc_lutram, acc_banks * lutram_luts(ACC_BITS, geo["acc_depth"]), 0)
    # the residual operand's tile, two halves (a pass's waits for its write-back while the
    # next pass's is read), sharing each bank as the input halves do
    b_skip = PIXELS * -(-Tm // G) * bram18k_count(ACT_BITS * G, 2 * geo["acc_depth"])

    im2col = im2col_unit(layers, D, opts)
    pool = stem_pool_halo(layers, D, opts)
    store = feature_store({**D, "ports": ports}, board.axi_width_bits, opts.band_fusion)
    b_tab = table_brams(layers, opts)
    parts = {
        "pe4": {"lut": PIXELS * (lut4_pos * costs.lut4 + dsp4 * costs.dlut4),
                "ff": PIXELS * (lut4_pos * costs.ff4 + dsp4 * costs.dff4),
                "dsp": dsp4_slices, "bram18k": b_w4},
        "pe8": {"lut": PIXELS * (lut8_pos * costs.lut8 + dsp8 * costs.dlut8),
                "ff": PIXELS * (lut8_pos * costs.ff8 + dsp8 * costs.dff8),
                "dsp": -(-(PIXELS * dsp8) // costs.ppd8), "bram18k": b_w8},
        "weight_regs": {"lut": 0, "ff": wreg_ff, "dsp": 0, "bram18k": 0},
        "dw_window": {"lut": win_lut, "ff": win_ff, "dsp": 0, "bram18k": 0},
        "im2col": {"lut": im2col["lut"], "ff": im2col["ff"], "dsp": 0,
                   "bram18k": im2col["bram18k"]},
        "buffers": {"lut": acc_lut, "ff": 0, "dsp": 0, "bram18k": b_in + b_acc + b_skip},
        "post": {"lut": post_lut, "ff": lanes * POST_FF + pool["ff"], "dsp": lanes * POST_DSP,
                 "bram18k": pool["bram18k"]},
        "control_axi": {"lut": ctrl_lut, "ff": ctrl_ff,
                        "dsp": 0, "bram18k": CTRL_BRAM + ports * PORT_BRAM},
        "tables": {"lut": 0, "ff": 0, "dsp": 0, "bram18k": b_tab},
        "feature_store": {"lut": store["lut"], "ff": store["ff"], "dsp": 0,
                          "bram18k": store["bram18k"]},
    }
    tot = {
        "lut": mac_lut + glue_lut + win_lut + im2col["lut"] + post_lut + ctrl_lut
        + store["lut"] + acc_lut,
        "ff": mac_ff + glue_ff + wreg_ff + win_ff + im2col["ff"] + lanes * POST_FF + pool["ff"]
        + ctrl_ff + store["ff"],
        "dsp": mac_dsp + lanes * POST_DSP,
        "bram18k": b_in + b_w4 + b_w8 + b_acc + b_skip + im2col["bram18k"] + pool["bram18k"]
        + CTRL_BRAM + ports * PORT_BRAM + store["bram18k"] + b_tab,
    }
    tot["parts"] = parts
    return tot


def estimate_resources(
    layers: list[LayerShape], d: DesignPoint, board: Board, opts: EngineOptions | None = None
) -> Resources:
    """Modelled LUT / FF / DSP / BRAM18K of one design point on a board."""
    opts = opts or EngineOptions()
    signed = any(ly.signed_in for ly in layers if not ly.first)
    r = resources_vec(layers, design_arrays(d, board), board, opts, mac_costs(board, signed))
    parts = {
        k: {kk: int(math.ceil(float(np.asarray(vv).ravel()[0]))) for kk, vv in v.items()}
        for k, v in r["parts"].items()
    }
    tot = {
        k: int(math.ceil(float(np.asarray(r[k]).ravel()[0])))
        for k in ("lut", "ff", "dsp", "bram18k")
    }
    return Resources(tot["lut"], tot["ff"], tot["dsp"], tot["bram18k"], parts)
