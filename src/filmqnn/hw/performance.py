"""Analytic cycle model of the tiled, double-buffered engine (paper Eqs. 13 and 15, extended).

Loop nest per layer (outer to inner): output rows ``Tr`` x columns ``Tc`` tiles, output
channel passes (``Tm4`` 4-bit + ``Tm8`` 8-bit filters each), input channel steps (``Tn``).
A *step* loads one input tile and one weight tile and computes ``K*K*Tr*ceil(Tc/PIXELS)``
cycles; its load overlaps the previous step's compute (double buffering). A *group* is the
``ceil(N/Tn)`` steps that finish one output tile; its write-back (requantize + DDR write, plus
the residual operand read) overlaps the next group. Channel-wise layers (depthwise conv, max
pool, global average pool) map channels onto the ``Tm`` rows, one column each, input
channels = output channels of the pass.

Every function is vectorised over candidate designs: pass numpy arrays for the tiling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from filmqnn.hw.design import (
    ACT_BITS,
    PIXELS,
    DesignPoint,
    EngineOptions,
    design_arrays,
    engine_layers,
)
from filmqnn.hw.devices import Board
from filmqnn.hw.layers import LayerShape

#: Cycles to fill the PE pipeline at the start of every step (DSP 4 stages, extraction,
#: adder tree, accumulator read-modify-write); HLS pipelines restart per tile.
PIPE_DEPTH = 12
#: Cycles from an AXI burst request to its first beat, paid once per transfer (PS DDR latency
#: ~200 ns at 150 MHz with HLS' outstanding-request pipelining hiding the per-burst part).
AXI_LATENCY = 40
#: Cycles per layer start: the host writes ~16 AXI-lite registers and polls "done".
LAYER_LAUNCH = 600
#: Cycles to refill a PE row's weight registers for the next kernel tap (weights stay in
#: registers for the Tr*Tc/PIXELS cycles of one tap; the weight bank is sized for this).
WEIGHT_RELOAD = 16
#: Bits of a weight in DDR by filter precision (4-bit weights packed two per byte).
W4_BITS, W8_BITS = 4, 8


@dataclass(frozen=True)
class LayerPerf:
    """Modelled cycles of one layer and what bounds it."""

    name: str
    kind: str
    cycles: int
    compute_cycles: int
    memory_cycles: int
    bound: str  # "compute" | "memory"
    macs: int
    ddr_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return dict(self.__dict__)


def _cdiv(a: Any, b: Any) -> Any:
    return -(-np.asarray(a) // np.asarray(b))


def m_passes(ly: LayerShape, Tm4: Any, Tm8: Any, opts: EngineOptions) -> tuple[Any, Any, Any]:
    """Output-channel passes and the 4-/8-bit filters of the layer: (P_m, M4, M8)."""
    Tm4, Tm8 = np.asarray(Tm4), np.asarray(Tm8)
    Tm = Tm4 + Tm8
    M = ly.M
    if ly.kind in ("maxpool", "gap"):
        P = _cdiv(M, Tm)
        return P, np.zeros_like(P), np.zeros_like(P)
    big = np.int64(1) << 40  # "never fits" marker, kept integer for vectorised maths
    if ly.all8:
        M8 = np.full_like(Tm, M)
        M4 = np.zeros_like(Tm)
        cap = Tm8 + (np.maximum(Tm4 - 1, 0) // 2 if opts.split8 else 0)
        P = np.where(cap > 0, _cdiv(M, np.maximum(cap, 1)), big)
        return P, M4, M8
    M8 = np.where(Tm8 > 0, np.minimum(M, Tm8 * _cdiv(M, Tm)), 0)
    M4 = M - M8
    p4 = np.where(M4 > 0, np.where(Tm4 > 0, _cdiv(M4, np.maximum(Tm4, 1)), big), 0)
    p8 = np.where(M8 > 0, np.where(Tm8 > 0, _cdiv(M8, np.maximum(Tm8, 1)), big), 0)
    return np.maximum(p4, p8), M4, M8


def _split(total: int, tile: Any) -> tuple[Any, Any, Any]:
    """Tiles of a dimension: (count, full size, last size), vectorised over tile sizes."""
    tile = np.minimum(np.asarray(tile), total)
    n = _cdiv(total, tile)
    return n, tile, total - (n - 1) * tile


def beats(bits: Any, axi_bits: int) -> Any:
    """AXI beats to move ``bits`` over one port."""
    return _cdiv(np.ceil(np.asarray(bits, dtype=np.float64)).astype(np.int64), axi_bits)


def act_beats(channels: Any, pixels: Any, G: Any, axi_bits: int) -> Any:
    """Beats of a packed activation tile: ceil(ch/G) words of 5G bits per pixel."""
    words = _cdiv(channels, G) * np.asarray(pixels)
    wpb = np.maximum(1, axi_bits // (ACT_BITS * np.asarray(G)))
    return _cdiv(words, wpb)


def step_compute(ly: LayerShape, tr: Any, tc: Any, tn: Any, Tn: Any) -> Any:
    """Compute cycles of one step: taps x max(pixel cycles, weight reload) + pipeline fill."""
    pix = np.asarray(tr) * _cdiv(tc, PIXELS)
    if ly.kind in ("maxpool", "gap"):
        reload = 0
    elif ly.kind == "dwconv":
        reload = 1
    else:
        reload = _cdiv(WEIGHT_RELOAD * np.asarray(tn), Tn)
    return ly.K * ly.K * np.maximum(pix, reload) + PIPE_DEPTH


def step_load(
    ly: LayerShape, tr: Any, tc: Any, tn: Any, wbits_per_row: Any, G: Any,
    axi_bits: int, ports: int, ddr_bits: float, extra_beats: Any = 0,
) -> tuple[Any, Any]:
    """Load cycles of one step and bits moved: input + weight tile (+ ``extra_beats``, the
    residual operand prefetched with a group's first step) striped over the read channels of
    ``ports`` AXI ports and capped by the sustained DDR bandwidth."""
    rin = (np.asarray(tr) - 1) * ly.stride + ly.K
    cin = (np.asarray(tc) - 1) * ly.stride + ly.K
    rin, cin = np.minimum(rin, ly.H + 2 * ly.pad), np.minimum(cin, ly.W + 2 * ly.pad)
    b_in = act_beats(tn, rin * cin, G, axi_bits)
    if ly.kind in ("maxpool", "gap"):
        b_w = np.zeros_like(b_in)
    elif ly.kind == "dwconv":
        b_w = beats(np.asarray(wbits_per_row) * ly.K * ly.K, axi_bits)
    else:
        b_w = beats(np.asarray(wbits_per_row) * np.asarray(tn) * ly.K * ly.K, axi_bits)
    b = b_in + b_w + extra_beats
    t = np.maximum(_cdiv(b, ports), np.ceil(b * axi_bits / ddr_bits)) + AXI_LATENCY
    return t.astype(np.int64), b * axi_bits


def group_write(
    ly: LayerShape, tr: Any, tc: Any, tm: Any, G: Any, post: Any, axi_bits: int, ports: int,
    ddr_bits: float,
) -> tuple[Any, Any, Any]:
    """Write-back of one output tile: (cycles, bits, residual beats). ``post`` lanes requantize
    the accumulators while the write channels of ``ports`` AXI ports stream them out."""
    pix = np.asarray(tr) * np.asarray(tc)
    b_out = act_beats(tm, pix, G, axi_bits)
    b_skip = b_out if ly.residual else np.zeros_like(b_out)
    requant = _cdiv(np.ceil(tm).astype(np.int64) * pix, post)
    t = np.maximum(np.maximum(_cdiv(b_out, ports), requant), np.ceil(b_out * axi_bits / ddr_bits))
    t = t + AXI_LATENCY
    return t.astype(np.int64), b_out * axi_bits, b_skip


def layer_cycles_vec(
    ly: LayerShape, D: dict[str, Any], axi_bits: int, ports: int, ddr_bits: float,
    opts: EngineOptions,
) -> dict[str, Any]:
    """Cycles (and compute / memory parts, DDR bits) of one engine layer for arrays of designs.

    ``D`` holds broadcastable integer arrays Tm4, Tm8, Tn, Tr, Tc, G, post. ``ddr_bits`` is the
    sustained DDR bits per accelerator cycle.
    """
    Tm4, Tm8, Tn, Tr, Tc, G = (np.asarray(D[k]) for k in ("Tm4", "Tm8", "Tn", "Tr", "Tc", "G"))
    post = np.asarray(D["post"])
    P_m, M4, M8 = m_passes(ly, Tm4, Tm8, opts)
    # output-channel passes: P_m - 1 full ones, then the remainder (4-/8-bit filters each)
    if ly.kind in ("maxpool", "gap"):
        a_f, b_f = np.minimum(Tm4 + Tm8, ly.M), np.zeros_like(Tm4)
    else:
        cap8 = Tm8 + (np.maximum(Tm4 - 1, 0) // 2 if (ly.all8 and opts.split8) else 0)
        a_f, b_f = np.minimum(Tm4, M4), np.minimum(cap8, M8)
    a_l, b_l = M4 - (P_m - 1) * a_f, M8 - (P_m - 1) * b_f
    if ly.kind in ("maxpool", "gap"):
        a_l = ly.M - (P_m - 1) * a_f
    planes = ly.planes
    if not ly.is_channelwise:
        n_per_plane, tn_f, tn_l = _split(ly.N, Tn)
        P_n = n_per_plane * planes
    P_r, tr_f, tr_l = _split(ly.R, Tr)
    P_c, tc_f, tc_l = _split(ly.C, Tc)

    shape = np.broadcast(Tm4, Tn, Tr, Tc, G, post).shape
    total = np.zeros(shape, dtype=np.float64)
    comp = np.zeros_like(total)
    mem_load = np.zeros_like(total)
    mem_write = np.zeros_like(total)
    bits = np.zeros_like(total)
    one = np.ones_like(P_m)
    rc_types = (
        (tr_f, tc_f, (P_r - 1) * (P_c - 1)), (tr_f, tc_l, (P_r - 1) * one),
        (tr_l, tc_f, (P_c - 1) * one), (tr_l, tc_l, one),
    )
    qs = []
    for tr, tc, nrc in rc_types:
        q = {}  # per pass type: (inner steps, last compute, first load, write)
        for mk, a, b, nm in (("f", a_f, b_f, P_m - 1), ("l", a_l, b_l, one)):
            tm = a + b
            wrow = a * W4_BITS + b * W8_BITS  # weight bits per input channel per tap
            if ly.is_channelwise:
                P_n, tn_f, tn_l = one, tm, tm
            w, bits_w, skip = group_write(ly, tr, tc, tm, G, post, axi_bits, ports, ddr_bits)
            c_f = step_compute(ly, tr, tc, tn_f, Tn)
            c_l = step_compute(ly, tr, tc, tn_l, Tn)
            args = (wrow, G, axi_bits, ports, ddr_bits)
            l_f, bits_f = step_load(ly, tr, tc, tn_f, *args)
            l_l, bits_l = step_load(ly, tr, tc, tn_l, *args)
            # a group's first step also prefetches the residual operand of its output tile
            l_f0, bits_f0 = step_load(ly, tr, tc, tn_f, *args, extra_beats=skip)
            l_l0, bits_l0 = step_load(ly, tr, tc, tn_l, *args, extra_beats=skip)
            npp = P_n // planes  # steps per input plane (only the first conv has 2 planes)
            multi = npp > 1
            # step s computes while step s+1 loads: full->full, full->last and last->full
            # (next plane) transitions inside the group
            inner = np.where(
                multi,
                planes * np.maximum(npp - 2, 0) * np.maximum(c_f, l_f)
                + planes * np.maximum(c_f, l_l)
                + (planes - 1) * np.maximum(c_l, l_f),
                (planes - 1) * np.maximum(c_l, l_l),
            )
            first = np.where(multi, l_f0, l_l0)
            loads = np.where(
                multi, planes * ((npp - 1) * l_f + l_l) - l_f + l_f0, planes * l_l - l_l + l_l0
            )
            lbits = np.where(
                multi,
                planes * ((npp - 1) * bits_f + bits_l) - bits_f + bits_f0,
                planes * bits_l - bits_l + bits_l0,
            )
            cnt = nrc * nm
            comp += cnt * planes * ((npp - 1) * c_f + c_l)
            mem_load += cnt * loads
            mem_write += cnt * w
            bits += cnt * (lbits + bits_w)
            q[mk] = (inner, c_l, first, w)

        qs.append(q)
    # the pass after a tile's last pass is the next tile's first pass: its load is taken as
    # the average first-pass load over all spatial tiles (edge tiles are few)
    n_tiles = P_r * P_c
    next_tile = sum(nrc * q["f"][2] for (_, _, nrc), q in zip(rc_types, qs, strict=True))
    next_tile_l = sum(nrc * q["l"][2] for (_, _, nrc), q in zip(rc_types, qs, strict=True))
    next_tile = np.where(P_m > 1, next_tile, next_tile_l) / n_tiles
    prev_tile = sum(nrc * q["l"][3] for (_, _, nrc), q in zip(rc_types, qs, strict=True)) / n_tiles
    fill_fix = None
    for i_rc, ((_, _, nrc), q) in enumerate(zip(rc_types, qs, strict=True)):
        def grp(cur: str, nxt: str, prev: str | None, q: dict = q) -> Any:
            inner, c_last, _, _ = q[cur]
            nxt_load = next_tile if nxt == "tile" else q[nxt][2]
            t = inner + np.maximum(c_last, nxt_load)  # last step overlaps the next load
            if prev is None:
                return t
            prev_w = prev_tile if prev == "tile" else q[prev][3]
            return np.maximum(t, prev_w)  # the previous group's write-back overlaps

        # groups run pass by pass inside a spatial tile: f_1 .. f_{P-1}, l; the pass after l
        # is the next tile's first pass (spatial edge shapes are not told apart here)
        multi_m = P_m > 1
        first_f = grp("f", "f", "tile")
        mid_f = grp("f", "f", "f")
        end_f = grp("f", "l", "f")
        only_f = grp("f", "l", "tile")
        last_l = np.where(multi_m, grp("l", "tile", "f"), grp("l", "tile", "tile"))
        per_tile = np.where(
            P_m > 2,
            first_f + np.maximum(P_m - 3, 0) * mid_f + end_f,
            np.where(multi_m, only_f, 0),
        ) + last_l
        total += nrc * per_tile
        if i_rc == 0:
            # the first group has no earlier write-back to wait for; it starts with its load
            g1 = np.where(P_m > 2, first_f, np.where(multi_m, only_f, last_l))
            g1_free = np.where(
                P_m > 2, grp("f", "f", None),
                np.where(multi_m, grp("f", "l", None), grp("l", "tile", None)),
            )
            fill_fix = q["f"][2] * multi_m + q["l"][2] * (~multi_m) - (g1 - g1_free)
        if i_rc == 3:
            # the last group prefetches nothing and its write-back is exposed
            _, c_last, _, w_last = q["l"]
            total += w_last - (np.maximum(c_last, next_tile) - c_last)
    total += fill_fix
    total = np.maximum(total, np.ceil(bits / ddr_bits)) + LAYER_LAUNCH
    return {
        "cycles": total,
        "compute": comp,
        "memory": np.maximum(mem_load, mem_write),
        "ddr_bits": bits,
    }


def ddr_bits_per_cycle(board: Board, clock_mhz: float) -> float:
    """Sustained DDR bits per accelerator cycle (peak x efficiency / clock)."""
    return board.ddr_bytes_per_cycle(clock_mhz) * 8


def network_performance(
    layers: list[LayerShape],
    d: DesignPoint,
    board: Board,
    opts: EngineOptions | None = None,
) -> dict[str, Any]:
    """Per-layer and total modelled cycles, latency (ms), FPS and DDR traffic of one design."""
    opts = opts or EngineOptions()
    D = design_arrays(d)
    ddr = ddr_bits_per_cycle(board, d.clock_mhz)
    per: list[LayerPerf] = []
    for ly in engine_layers(layers, opts):
        r = layer_cycles_vec(ly, D, board.axi_width_bits, board.axi_ports, ddr, opts)
        cyc, cmp_, mem = int(r["cycles"][0]), int(r["compute"][0]), int(r["memory"][0])
        per.append(
            LayerPerf(
                ly.name, ly.kind, cyc, cmp_, mem,
                "compute" if cmp_ >= mem else "memory",
                ly.macs,
                int(r["ddr_bits"][0] // 8),
            )
        )
    total = sum(p.cycles for p in per)
    latency_s = total / (d.clock_mhz * 1e6)
    macs = sum(p.macs for p in per)
    return {
        "cycles": total,
        "latency_ms": latency_s * 1e3,
        "fps": 1.0 / latency_s,
        "gops": 2 * macs / latency_s / 1e9,
        "ddr_mbytes": sum(p.ddr_bytes for p in per) / 1e6,
        "layers": per,
    }


def network_cycles_vec(
    layers: list[LayerShape], D: dict[str, Any], board: Board, clock_mhz: float,
    opts: EngineOptions,
) -> Any:
    """Total modelled cycles of a network for arrays of designs (the DSE's inner loop).

    Layers of identical shape are evaluated once and counted as often as they occur.
    """
    ddr = ddr_bits_per_cycle(board, clock_mhz)
    counts: dict[LayerShape, int] = {}
    for ly in engine_layers(layers, opts):
        key = replace(ly, name="")
        counts[key] = counts.get(key, 0) + 1
    total = 0.0
    for ly, n in counts.items():
        r = layer_cycles_vec(ly, D, board.axi_width_bits, board.axi_ports, ddr, opts)
        total = total + n * r["cycles"]
    return total
