"""Analytic cycle model of the tiled, double-buffered engine (paper Eqs. 13 and 15, extended).

Loop nest per layer (outer to inner): output rows ``Tr`` x columns ``Tc`` tiles, output
channel passes (``Tm4`` 4-bit + ``Tm8`` 8-bit filters each), input channel steps (``Tn``).
A *step* loads one input tile and one weight tile and computes ``K*K*Tr*ceil(Tc/PIXELS)``
cycles; its load overlaps the previous step's compute (double buffering). A *group* is the
``ceil(N/Tn)`` steps that finish one output tile; its write-back (requantize + DDR write, plus
the residual operand read) overlaps the next group. Channel-wise layers (depthwise conv, max
pool, global average pool) map channels onto the ``Tm`` rows, input channels = output
channels of the pass; depthwise rows put their K*K taps on the columns (``dw_taps``).
Transfers carry ``AXI_LATENCY`` once each, or overlapped with the previous transfer when the
AXI masters keep transactions outstanding (``axi_outstanding``).

Every function is vectorised over candidate designs: pass numpy arrays for the tiling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from filmqnn.formats import ACT_BITS, INPUT_BITS
from filmqnn.hw.buffers import REQUANT_TABLE_BYTES, buffer_geometry
from filmqnn.hw.design import (
    PIXELS,
    WEIGHT_RELOAD,
    DesignPoint,
    EngineOptions,
    design_arrays,
    dw_pixels,
    engine_layers,
    raw_window,
    ring_rows,
)
from filmqnn.hw.devices import Board
from filmqnn.hw.gathers import gather_extra
from filmqnn.hw.layers import LayerShape
from filmqnn.hw.residency import (
    band_rows,
    band_schedule,
    chip_flags_of,
    out_pixels,
    plan,
    store_layout,
)
from filmqnn.tile_rule import tiled_high_filters

#: Stages of the kernel's pipelined PE loop (``compute_conv``'s STEPPIX loop), from the cited
#: latencies of what one iteration does: the input tile's BRAM read with its output register
#: (2, UG573 "Block RAM"), the packed multiply with the DSP48E1/E2 A/B, M and P registers plus
#: the pre-adder's AD register (4, UG479 / UG579), the field extraction and sign correction
#: (1), an adder tree over up to 64 Tn products, one level per cycle (6; an estimate of what
#: Vitis HLS schedules at 100-150 MHz), and the accumulator's read-modify-write (3: BRAM read,
#: add, write).
PIPE_STAGES = {"input_read": 2, "dsp": 4, "extract": 1, "adder_tree": 6, "accumulate": 3}
#: Cycles to fill the PE pipeline at the start of every step; HLS pipelines restart per step.
PIPE_DEPTH = sum(PIPE_STAGES.values())
#: Fewest cycles between two additions to one accumulator (its read-modify-write).
ACC_RMW = PIPE_STAGES["accumulate"]
#: Cycles from an AXI burst request to its first beat, paid once per transfer (PS DDR latency
#: ~200 ns at 150 MHz with HLS' outstanding-request pipelining hiding the per-burst part).
AXI_LATENCY = 40
#: Cycles per layer start: the host writes ~16 AXI-lite registers and polls "done".
LAYER_LAUNCH = 600
#: Beats of one layer descriptor at the narrowest AXI width (64 bits): the kernel's 160-byte
#: descriptor (``hls.layout.DESC_BYTES``, checked there); wider ports are counted as this.
DESC_BEATS = 20
#: Cycles per layer start (per descriptor) with ``layer_queue``: fetch the descriptor (AXI
#: latency plus its beats, not prefetched) and load the loop bounds / base addresses from it.
QUEUE_LAUNCH = AXI_LATENCY + DESC_BEATS + 16
#: Bits of a weight in DDR by filter precision (4-bit weights packed two per byte).
W4_BITS, W8_BITS = 4, 8


def layer_launch(opts: EngineOptions) -> int:
    """Cycles to start one layer: a descriptor fetch with ``layer_queue``, else a host start."""
    return QUEUE_LAUNCH if opts.layer_queue else LAYER_LAUNCH


def frame_launch(opts: EngineOptions) -> int:
    """Cycles the host spends starting a frame beyond the per-layer starts (one host start
    of the descriptor queue with ``layer_queue``, else none)."""
    return LAYER_LAUNCH if opts.layer_queue else 0


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
    on_chip: tuple[str, ...] = ()  # tensors in the feature-map store: "input", "output", "skip"
    fused: bool = False  # reads a band ring: runs interleaved with the layer before it
    chunks: int = 1  # Tn-channel chunks per step (the descriptor's choice with multi_chunk)
    rows: int = 0  # output rows per tile (the descriptor's choice with input_reuse; 0: Tr)
    store_at: int = -1  # beat offset of its output in the feature-map store (-1: in DDR)
    ring: int = 0  # rows of its output's band ring in the store (0: the whole tensor)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return {**self.__dict__, "on_chip": list(self.on_chip)}


def table_cycles(ly: LayerShape, axi_bits: int, ports: Any, ddr_bits: float,
                 indexed: Any = False) -> Any:
    """Cycles of the read of a layer's tables at its start: the requantization table, one
    entry per output channel (one for an add or a global average pool, none for a max pool),
    and for a layer with a gather (``indexed``) its index table, four 32-bit words per
    output channel (input and skip index, and their per-tile orders); striped over the
    ports, after one AXI latency."""
    entries = 0 if ly.kind == "maxpool" else (1 if ly.kind in ("gap", "add") else ly.M)
    b = (_cdiv(entries * REQUANT_TABLE_BYTES * 8, axi_bits)
         + np.where(indexed, _cdiv(4 * ly.M * 32, axi_bits), 0))
    t = np.maximum(_cdiv(b, np.asarray(ports)), np.ceil(b * axi_bits / ddr_bits))
    return np.where(b > 0, AXI_LATENCY + t, 0)


def layer_gathers(ly: LayerShape, Tm: Any, Tm8: Any, G: Any) -> tuple[Any, Any, Any]:
    """(extra channel groups per tile of a depthwise input's gather, of a skip operand's
    gather, whether the layer reads an index table) for arrays of designs (``hw.gathers``)."""
    mixed = not (ly.all8 or ly.w4_only)  # no 8-bit filter: no reordering, no gather
    e_in, i_in = (gather_extra(ly.in_gather, ly.M, mixed, Tm, Tm8, G)
                  if ly.kind == "dwconv" else (0, False))
    e_skip, i_skip = (gather_extra(ly.skip_gather, ly.M, mixed, Tm, Tm8, G)
                      if ly.residual else (0, False))
    return e_in, e_skip, np.logical_or(i_in, i_skip)


def _cdiv(a: Any, b: Any) -> Any:
    return -(-np.asarray(a) // np.asarray(b))


def split8_capacity(Tm4: Any, Tm8: Any, opts: EngineOptions) -> Any:
    """8-bit filters one step of an all-8-bit layer computes: Tm8 on PE8 and, with
    ``split8``, one per two PE4 rows (high and low nibble) beside the shared input-sum row."""
    return np.asarray(Tm8) + (np.maximum(np.asarray(Tm4) - 1, 0) // 2 if opts.split8 else 0)


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
        cap = split8_capacity(Tm4, Tm8, opts)
        c1 = np.maximum(cap, 1)  # sub-passes of cap filters inside each Tm-filter pass
        P = np.where(cap > 0, (M // Tm) * _cdiv(Tm, c1) + _cdiv(M % Tm, c1), big)
        return P, M4, M8
    M8 = np.zeros_like(Tm) if ly.w4_only else tiled_high_filters(M, Tm, Tm8)
    M4 = M - M8
    p4 = np.where(M4 > 0, np.where(Tm4 > 0, _cdiv(M4, np.maximum(Tm4, 1)), big), 0)
    p8 = np.where(M8 > 0, np.where(Tm8 > 0, _cdiv(M8, np.maximum(Tm8, 1)), big), 0)
    return np.maximum(p4, p8), M4, M8


def pass_split(ly: LayerShape, Tm4: Any, Tm8: Any, opts: EngineOptions) -> tuple[Any, ...]:
    """Output-channel passes: (P_m, 4-bit and 8-bit filters of each of the P_m - 1 full passes,
    4-bit and 8-bit filters of the last pass)."""
    Tm4, Tm8 = np.asarray(Tm4), np.asarray(Tm8)
    P_m, M4, M8 = m_passes(ly, Tm4, Tm8, opts)
    if ly.kind in ("maxpool", "gap"):
        a_f, b_f = np.minimum(Tm4 + Tm8, ly.M), np.zeros_like(Tm4)
        return P_m, a_f, b_f, ly.M - (P_m - 1) * a_f, np.zeros_like(Tm4)
    if ly.all8:
        # each Tm-filter pass runs sub-passes of ``cap`` filters and a shorter last one, so
        # the full passes hold ``cap`` or fewer: the last is the last one's remainder, the
        # others share the rest (their mean, so the weights of every filter load once)
        c1 = np.maximum(split8_capacity(Tm4, Tm8, opts), 1)
        tail = np.where(ly.M % (Tm4 + Tm8) > 0, ly.M % (Tm4 + Tm8), Tm4 + Tm8)
        l8 = np.minimum(tail - (_cdiv(tail, c1) - 1) * c1, M8)
        b_f = np.where(P_m > 1, (M8 - l8) / np.maximum(P_m - 1, 1), 0)
        return P_m, np.zeros_like(b_f), b_f, np.zeros_like(b_f), l8
    a_f, b_f = np.minimum(Tm4, M4), np.minimum(Tm8, M8)
    return P_m, a_f, b_f, M4 - (P_m - 1) * a_f, M8 - (P_m - 1) * b_f


def compute_bound_vec(ly: LayerShape, D: dict[str, Any], opts: EngineOptions) -> Any:
    """A lower bound on a layer's cycles for arrays of designs: the array-busy cycles of all
    its steps (``step_core``, no pipeline fill, loads or writes); steps never overlap each
    other, and the bound holds for every number of chunks per step."""
    Tm4, Tm8, Tn, Tr, Tc = (np.asarray(D[k]) for k in ("Tm4", "Tm8", "Tn", "Tr", "Tc"))
    dw_px = dw_pixels(D["dsp4"])
    P_m, a_f, b_f, a_l, b_l = pass_split(ly, Tm4, Tm8, opts)
    total = 0
    for tr, tc, nrc in tile_types(ly, Tr, Tc, np.ones_like(P_m)):
        for a, b, nm in ((a_f, b_f, P_m - 1), (a_l, b_l, 1)):
            if ly.is_channelwise:
                busy = step_core(ly, tr, tc, a + b, Tn, dw_px, opts.dw_taps)
            else:
                n, tn_f, tn_l = _split(ly.N, Tn)
                busy = ly.planes * ((n - 1) * step_core(ly, tr, tc, tn_f, Tn)
                                    + step_core(ly, tr, tc, tn_l, Tn))
            total = total + nrc * nm * busy
    return total + layer_launch(opts)


def tile_types(ly: LayerShape, Tr: Any, Tc: Any, one: Any) -> tuple[tuple[Any, Any, Any], ...]:
    """The four kinds of spatial tile, (rows, columns, how many): full x full, full rows x last
    columns, last rows x full columns, last x last (``one`` broadcasts the counts)."""
    P_r, tr_f, tr_l = _split(ly.R, Tr)
    P_c, tc_f, tc_l = _split(ly.C, Tc)
    return ((tr_f, tc_f, (P_r - 1) * (P_c - 1)), (tr_f, tc_l, (P_r - 1) * one),
            (tr_l, tc_f, (P_c - 1) * one), (tr_l, tc_l, one))


def _split(total: int, tile: Any) -> tuple[Any, Any, Any]:
    """Tiles of a dimension: (count, full size, last size), vectorised over tile sizes."""
    tile = np.minimum(np.asarray(tile), total)
    n = _cdiv(total, tile)
    return n, tile, total - (n - 1) * tile


def beats(bits: Any, axi_bits: int) -> Any:
    """AXI beats to move ``bits`` over one port."""
    return _cdiv(np.ceil(np.asarray(bits, dtype=np.float64)).astype(np.int64), axi_bits)


def step_groups(n0: Any, tn: Any, G: Any) -> Any:
    """G-channel words (channel groups) the kernel reads for input channels n0 .. n0+tn-1:
    ``ceil(tn / G)``, or one more where the step starts inside a word (``Tn % G != 0``)."""
    G = np.asarray(G)
    return (np.asarray(n0) % G + np.asarray(tn) - 1) // G + 1


def chunk_extra_groups(span: Any, tn_last: Any, steps: Any, G: Any) -> tuple[Any, Any]:
    """Channel groups the steps of one input plane read beyond ``ceil(tn / G)``: the mean over
    its full steps (``span`` channels each, starting at multiples of ``span``) and the last
    step's (``tn_last`` channels from ``(steps - 1) * span``). The start residues mod ``G``
    repeat with period ``G / gcd(span, G)``, so the mean is counted over one period and the
    part of it the full steps reach."""
    span, G, full = np.asarray(span), np.asarray(G), np.asarray(steps) - 1
    period = G // np.gcd(span, G)
    extra = step_groups(0, span, G) - _cdiv(span, G)  # 0 for a start on a word boundary
    per_period = np.zeros(np.broadcast(span, G, full).shape)
    part = np.zeros_like(per_period)
    for j in range(int(np.max(G))):
        hit = (j < period) & (step_groups(j * span, span, G) - _cdiv(span, G) > extra)
        per_period = per_period + hit
        part = part + (hit & (j < full % period))
    mean = np.where(full > 0, (full // period * per_period + part) / np.maximum(full, 1), 0.0)
    last = step_groups(full * span, tn_last, G) - _cdiv(tn_last, G)
    return mean, last


def row_burst_beats(tn: Any, rows: Any, cols: Any, pad: int, G: Any, axi_bits: int) -> Any:
    """Beats of an input tile read as the kernel reads it: one burst per map row of each
    G-channel group, spanning the beats its ``cols`` words touch. A tile's first column sits
    ``pad`` words before a beat boundary (tiles start at multiples of ``Tc``, a whole number
    of beats), so a row touches ``((-pad) mod wpb + cols - 1) // wpb + 1`` beats."""
    G = np.asarray(G)
    wpb = np.maximum(1, axi_bits // (ACT_BITS * G))
    per_row = ((-pad) % wpb + np.asarray(cols) - 1) // wpb + 1
    return _cdiv(tn, G) * np.asarray(rows) * per_row


def step_compute(
    ly: LayerShape, tr: Any, tc: Any, tn: Any, Tn: Any, dw_px: Any = PIXELS, dw_taps: bool = True,
    rewind: bool = False,
) -> Any:
    """Compute cycles of one step: ``step_core`` plus the pipeline fill, or with ``rewind``
    (the pipeline runs on from step to step) at least the pipeline depth, so a step never
    reads an accumulator the step before has not written yet."""
    core = step_core(ly, tr, tc, tn, Tn, dw_px, dw_taps)
    return np.maximum(core, PIPE_DEPTH) if rewind else core + PIPE_DEPTH


def step_core(
    ly: LayerShape, tr: Any, tc: Any, tn: Any, Tn: Any, dw_px: Any = PIXELS, dw_taps: bool = True
) -> Any:
    """Cycles a step keeps the PE array busy: taps x max(pixel cycles, weight reload), the
    trips of the kernel's one pipelined loop over them (``tap_cycles``).

    Depthwise rows run ``dw_px`` pixels per cycle; with ``dw_taps`` the K*K taps sit on the
    columns, ``ceil(K*K/Tn)`` rounds each reloading its taps' weights. A conv / FC step may
    span several Tn chunks (``multi_chunk``), each reloading the PE weights; an on-chip
    im2col's rows each first fill its window (``raw_fill``)."""
    taps = ly.K * ly.K
    if ly.kind == "dwconv":
        pix = np.asarray(tr) * _cdiv(tc, dw_px)
        if dw_taps:
            reload = _cdiv(WEIGHT_RELOAD * np.minimum(taps, Tn), Tn)
            return _cdiv(taps, Tn) * tap_cycles(pix, reload)
        return taps * tap_cycles(pix, 0)
    if ly.kind in ("maxpool", "gap"):
        return taps * tap_cycles(np.asarray(tr) * _cdiv(tc, PIXELS), 0)
    pix = np.asarray(tr) * (_cdiv(tc, PIXELS) + raw_fill(ly))
    full, rest = np.asarray(tn) // Tn, np.asarray(tn) % Tn
    return taps * (full * tap_cycles(pix, WEIGHT_RELOAD)
                   + (rest > 0) * tap_cycles(pix, _cdiv(WEIGHT_RELOAD * rest, Tn)))


def raw_fill(ly: LayerShape) -> int:
    """Cycles an on-chip im2col's window register takes per output row before the row's first
    pixel pair: it moves on by ``PIXELS * stride`` raw columns a cycle and holds the
    ``raw_window`` a pair's taps span (0 for any other layer)."""
    if ly.raw is None:
        return 0
    _, k, s = ly.raw
    return raw_window(k, s) // (PIXELS * s) - 1


def tap_cycles(pix: Any, reload: Any) -> Any:
    """Cycles of one kernel tap (or round of depthwise taps) of a step: its pixel cycles, at
    least the weight reload behind it and the accumulators' read-modify-write latency
    (``ACC_RMW``: the next tap adds to the same pixels' sums)."""
    return np.maximum(np.maximum(pix, reload), ACC_RMW)


def write_units(ly: LayerShape, tr: Any, tm: Any, G: Any) -> Any:
    """The units a tile's write-back goes out in, a slice of them per step of the next pass:
    its channel groups x rows; a fused max pool's or an int32 write is one unit."""
    if ly.pool is not None or ly.int32_out:
        return 1
    return _cdiv(np.ceil(tm).astype(np.int64), G) * np.asarray(tr)


def lockstep_walk(passes: list[tuple[list[tuple[float, ...]], float, int, float]],
                  seq: float, lat: float) -> float:
    """Cycles of a run of passes (each: its steps' (load, load with a residual operand,
    compute[, the load's reads on the operand's side alone, DDR or the store: default the
    load]) cycles, its write-back's cycles and units, its residual operand's load cycles
    alone) in the kernel's ping-pong order, the C-sim counters' rule: iteration k loads step
    k (after ``seq``, the first after AXI_LATENCY; with the residual operand of the pass
    whose first step it computes), computes step k - 1 and writes a slice of the pass before
    that one's, and lasts as long as the longest of the three. A pass's write-back goes out
    in equal slices of its units over the next pass's steps (the first slice pays ``lat``,
    the request); what is left of it when the next pass closes goes out first; the last
    write's response ends the run."""
    steps = [(d, ds, c, i, j == 0, dd[0] if dd else d) for i, (st, *_) in enumerate(passes)
             for j, (d, ds, c, *dd) in enumerate(st)]
    n = len(steps)

    def part(i: int, u0: int, u1: int) -> float:
        w, units = passes[i][1], passes[i][2]
        return (w - lat) * (u1 - u0) / units + (lat if u0 == 0 else 0.0)

    total = 0.0
    job: list[int] | None = None  # the write-back in flight: pass, units done, quota
    for k in range(n + 1):
        # a residual operand is read beside its pass's first compute (step k - 1)
        skip = passes[steps[k - 1][3]][3] if k and steps[k - 1][4] else 0.0
        if k < n:
            load = steps[k][1] if skip > 0 else steps[k][0]
            if skip > 0 and passes[steps[k][3]][3] != skip:
                # another tile's operand: its reads join the load's on their side (DDR or
                # the store), the other side's run beside them
                load = max(steps[k][0], steps[k][5] + skip)
        else:
            load = skip if skip > 0 else None
        t = max(0.0 if load is None else (seq if k else AXI_LATENCY) + load,
                steps[k - 1][2] if k else 0.0)
        if job is not None:
            i, u, q = job
            u1 = min(u + q, passes[i][2])
            t = max(t, part(i, u, u1))
            job = [i, u1, q] if u1 < passes[i][2] else None
        total += t
        if k and (k == n or steps[k][3] != steps[k - 1][3]):  # step k - 1 closed its pass
            if job is not None:
                total += part(job[0], job[1], passes[job[0]][2])
            i = steps[k - 1][3]
            nxt = len(passes[steps[k][3]][0]) if k < n else 1
            job = [i, 0, -(-int(passes[i][2]) // nxt)]
    if job is not None:
        total += part(job[0], job[1], passes[job[0]][2])
    return total + AXI_LATENCY - seq


def group_drain(opts: EngineOptions) -> int:
    """Cycles from a group's last compute to its write-back: the pipeline drain with
    ``pipe_rewind`` (the steps do not pay it), else none (every step paid its fill)."""
    return PIPE_DEPTH if opts.pipe_rewind else 0


def band_switches(ly: LayerShape, D: dict[str, Any]) -> Any:
    """Extra runs of a layer that reads a band ring (``in_band``, per design from ``D`` as
    ``chip_flags``) and of its producer, both charged to it in the closed form: each of its
    tile-row bands after the first runs its producer and then itself again, two descriptors
    that start afresh (the exact walk counts the runs of ``residency.band_schedule``)."""
    bands = _cdiv(ly.R, np.asarray(D["Tr"]))
    return np.where(D.get("in_band", ly.in_band), 2 * (bands - 1), 0)


def chunk_capacity(
    ly: LayerShape, D: dict[str, Any], geo: dict[str, Any], opts: EngineOptions
) -> Any:
    """Most Tn-channel chunks one step may load and compute: with ``multi_chunk`` a conv or FC
    takes up to what one half of its weight banks (a chunk fills K*K tap slots) and of its
    input banks hold (their BRAMs, sized for the network's largest kernel and tile, rounded
    up to whole BRAM18Ks) and its input channels need, else 1. Larger kernels use more than
    one chunk only to keep the whole input on chip (``reuse_rows``)."""
    Tn, Tr, Tc = (np.asarray(D[k]) for k in ("Tn", "Tr", "Tc"))
    one = np.ones(np.broadcast(Tn, Tr, Tc).shape, dtype=np.int64)
    if not opts.multi_chunk or ly.kind not in ("conv", "fc"):
        return one
    rp, cp = geo["phases"]
    tr, tc = np.minimum(Tr, ly.R), np.minimum(Tc, ly.C)
    rin = np.minimum((tr - 1) * ly.stride + ly.K, ly.H + 2 * ly.pad)
    cin = np.minimum((tc - 1) * ly.stride + ly.K, ly.W + 2 * ly.pad)
    need = _cdiv(rin, rp) * _cdiv(cin, cp)
    w_fit = np.asarray(geo["w_chunks"]) // (ly.K * ly.K)  # a chunk holds all its taps
    fit = np.minimum(w_fit, np.asarray(geo["in_words"]) // need)
    if ly.raw is not None:  # the raw tile has its own buffer
        fit = w_fit
    return np.clip(np.minimum(fit, _cdiv(ly.N, Tn)), 1, None) * one


def transition(
    c_prev: Any, c: Any, c_next: Any, d_own: Any, d: Any, d_next: Any, seq: int
) -> Any:
    """Cycles from one step's compute start to the next's, double-buffered. Steps prev, this,
    next, next2 compute ``c_prev, c, c_next, -`` and load ``-, d_own, d, d_next`` data cycles;
    ``seq`` is the latency every load pays in series (AXI_LATENCY without outstanding
    transactions, else 0). Alone a transition takes ``max(c, d + seq)``; as a load is requested
    when its buffer half frees (the step two before it done), two transitions together take at
    least ``c_prev + AXI_LATENCY + d`` (and ``c + AXI_LATENCY + d_next``): half of what that
    adds over the two alone is charged to this one."""
    c_prev, c, c_next, d_own, d, d_next = (
        np.asarray(x) for x in (c_prev, c, c_next, d_own, d, d_next)
    )
    alone = np.maximum(c, d + seq)
    before = np.maximum(c_prev, d_own + seq) + alone
    after = alone + np.maximum(c_next, d_next + seq)
    excess = np.maximum(c_prev + d - before, c + d_next - after) + AXI_LATENCY
    return alone + _cdiv(np.maximum(excess, 0), 2)


def chip_flags(ly: LayerShape, D: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Whether the layer's input, output and residual operand sit in the feature-map store:
    per design from ``D`` ("in_chip", "out_chip", "skip_chip" arrays, set by ``network_sum``
    for designs with different stores), else the layer's own flags."""
    return (D.get("in_chip", ly.in_chip), D.get("out_chip", ly.out_chip),
            D.get("skip_chip", ly.skip_chip))


def span_beats(x0: Any, n: Any, extent: int, wpb: Any) -> Any:
    """Beats a row burst touches for words x0 .. x0 + n - 1 clipped to the map (0 .. extent-1)."""
    a = np.maximum(x0, 0)
    b = np.minimum(np.asarray(x0) + n, extent) - 1
    return np.where(b >= a, b // wpb - a // wpb + 1, 0)


def rows_read(ly: LayerShape, y0: Any, tr: Any) -> Any:
    """Map rows a tile of ``tr`` output rows starting at input row ``y0`` reads (clipped to
    the map; a 1x1 stride-2 conv reads only the rows its outputs use)."""
    if ly.stride > ly.K:
        return np.asarray(tr) * ly.K
    ny = (np.asarray(tr) - 1) * ly.stride + ly.K
    return np.maximum(np.minimum(np.asarray(y0) + ny, ly.H) - np.maximum(y0, 0), 0)


def edge_input(ly: LayerShape, tr: Any, tc: Any, Tr: Any, Tc: Any, G: Any, axi_bits: int,
               last_row: bool, last_col: bool) -> tuple[Any, Any]:
    """(map rows read, beats per row burst) of an input tile as the kernel reads it, clipped
    to the map: the last row / column tile at its own position, the others averaged over the
    first tile (its top / left padding not read) and the inner ones (whose first column sits
    ``pad`` words before a beat boundary, as tiles start at multiples of ``Tc`` words)."""
    wpb = np.maximum(1, axi_bits // (ACT_BITS * np.asarray(G)))
    s, p = ly.stride, ly.pad

    def mean_or_last(first: Any, inner: Any, last: Any, n: Any, is_last: bool) -> Any:
        return last if is_last else np.where(n >= 2, (first + (n - 2) * inner)
                                             / np.maximum(n - 1, 1), first)

    Tr_, Tc_ = np.minimum(Tr, ly.R), np.minimum(Tc, ly.C)
    P_r, P_c = _cdiv(ly.R, Tr_), _cdiv(ly.C, Tc_)
    nx = (np.asarray(tc) - 1) * s + ly.K
    cols = mean_or_last(span_beats(-p, nx, ly.W, wpb), span_beats(Tc_ * s - p, nx, ly.W, wpb),
                        span_beats((P_c - 1) * Tc_ * s - p, nx, ly.W, wpb), P_c, last_col)
    rows = mean_or_last(rows_read(ly, -p, tr), rows_read(ly, Tr_ * s - p, tr),
                        rows_read(ly, (P_r - 1) * Tr_ * s - p, tr), P_r, last_row)
    return rows, cols


def tile_beats(
    ly: LayerShape, tr: Any, tc: Any, tn: Any, wbits_per_row: Any, G: Any, axi_bits: int,
    edge: tuple[Any, Any] | None = None, extra_groups: Any = 0,
) -> tuple[Any, Any]:
    """AXI beats of one step's input tile and weight tile (``step_load``'s two parts);
    ``edge``: the tile's (rows, beats per row) from ``edge_input``, else an inner tile's;
    ``extra_groups``: channel groups a gathered input reads beyond its own (``hw.gathers``)."""
    if edge is None:
        rin = (np.asarray(tr) - 1) * ly.stride + ly.K
        cin = (np.asarray(tc) - 1) * ly.stride + ly.K
        rin, cin = np.minimum(rin, ly.H + 2 * ly.pad), np.minimum(cin, ly.W + 2 * ly.pad)
        if ly.stride > ly.K:  # rows no output reads (1x1 stride 2) are never requested
            rin = np.minimum(rin, np.asarray(tr) * ly.K)
        b_in = row_burst_beats(tn, rin, cin, ly.pad, G, axi_bits)
        b_in = np.ceil(b_in * (1 + np.asarray(extra_groups) / _cdiv(tn, G))).astype(np.int64)
    else:
        b_in = np.ceil((_cdiv(tn, G) + extra_groups) * edge[0] * edge[1]).astype(np.int64)
    if ly.kind in ("maxpool", "gap"):
        b_w = np.zeros_like(b_in)
    elif ly.kind == "dwconv":
        b_w = beats(np.asarray(wbits_per_row) * ly.K * ly.K, axi_bits)
    else:
        b_w = beats(np.asarray(wbits_per_row) * np.asarray(tn) * ly.K * ly.K, axi_bits)
    return b_in, b_w


def step_load(
    ly: LayerShape, tr: Any, tc: Any, tn: Any, wbits_per_row: Any, G: Any,
    axi_bits: int, ports: int, ddr_bits: float, extra_beats: Any = 0, with_input: bool = True,
    chip: tuple[Any, Any, Any] | None = None, tile: tuple[Any, Any] | None = None,
    banks: Any = None, part: str | None = None,
) -> tuple[Any, Any]:
    """Data cycles of one step's load (latency excluded) and DDR bits moved: input + weight tile (+
    ``extra_beats``, the prefetch of a group's first step) striped over the read channels of
    ``ports`` AXI ports and capped by the sustained DDR bandwidth. An input or a residual
    operand held in the feature-map store (``in_chip``, ``skip_chip``) streams from its
    ``banks`` read ports (default ``ports``), beside the DDR reads. ``with_input=False``: the
    input tile is still on chip (``input_reuse``). ``chip``: ``chip_flags`` (default the
    layer's); ``tile``: the step's ``tile_beats`` when already known; ``part``: "ddr" or
    "chip", the cycles of the DDR reads or of the store's alone."""
    b_in, b_w = tile or tile_beats(ly, tr, tc, tn, wbits_per_row, G, axi_bits)
    if ly.raw is not None or not with_input:  # raw tile: in group_write's prefetch
        b_in = np.zeros_like(b_in)
    in_chip, _, skip_chip = chip or chip_flags(ly, {})
    b_chip = np.where(in_chip, b_in, 0) + np.where(ly.residual & np.asarray(skip_chip),
                                                    extra_beats, 0)
    b = b_in + b_w + extra_beats - b_chip
    t_ddr = np.maximum(_cdiv(b, ports), np.ceil(b * axi_bits / ddr_bits))
    t_chip = _cdiv(b_chip, ports if banks is None else banks)
    t = {None: np.maximum(t_ddr, t_chip), "ddr": t_ddr, "chip": t_chip}[part]
    return np.asarray(t).astype(np.int64), b * axi_bits


def raw_row_beats(cols: Any, step: Any, axi_bits: int) -> Any:
    """Beats of one row burst of an on-chip im2col's raw tile: ``cols`` bytes of a row of the
    zero-padded 8-bit map (rows start on beats, ``hls.layout``) from a tile start that is a
    multiple of ``step`` bytes (``Tc * S``), averaged over the byte offsets in a beat such
    starts take (multiples of gcd(step, beat bytes), assumed equally often; exact when every
    tile starts on a beat)."""
    B = axi_bits // INPUT_BITS  # raw values per beat
    g = np.gcd(np.asarray(step).astype(np.int64), B)
    q, rem = np.divmod(np.asarray(cols) - 1, B)
    # of the B/g offsets o, those with o + rem >= B touch one beat more
    return q + 1 + (B // g - _cdiv(B - rem, g)) / (B // g)


def group_write(
    ly: LayerShape, tr: Any, tc: Any, tm: Any, G: Any, post: Any, axi_bits: int, ports: int,
    ddr_bits: float, chip: tuple[Any, Any, Any] | None = None, skip_extra: Any = 0,
    row_end: Any = True, banks: Any = None,
) -> tuple[Any, Any, Any]:
    """Write-back of one output tile: (data cycles without latency, DDR bits, DDR prefetch
    beats). ``post`` lanes requantize the accumulators while the write channels of ``ports``
    AXI ports stream them out, or the feature-map store's ``banks`` write ports (default
    ``ports``) take them (``out_chip``). The prefetch is what the group's first step also loads: the
    residual operand of a fused add (with ``skip_extra`` groups of its gather), or the raw
    8-bit input tile of an on-chip im2col. A fused max pool collects the pooled rows of a
    tile row and writes them whole with the row's last tile (``row_end``)."""
    pix = np.asarray(tr) * np.asarray(tc)
    # tiles move as one burst per map row of each G-channel group; a tile starts at a
    # multiple of Tc words, a whole number of beats
    wpb = np.maximum(1, axi_bits // (ACT_BITS * np.asarray(G)))
    rows, cols = np.asarray(tr), np.asarray(tc)
    group_beats = rows * _cdiv(cols, wpb)
    if ly.pool is not None:  # a fused max pool writes its pooled map only
        k, st, p = ly.pool
        group_beats = np.where(row_end, _cdiv(rows, st) * _cdiv((ly.C + 2 * p - k) // st + 1,
                                                                  wpb), 0)
    b_out = _cdiv(tm, G) * group_beats
    if ly.int32_out:  # the 1x1 map's int32 sums, whole beats
        b_out = _cdiv(np.ceil(tm).astype(np.int64) * 32, axi_bits) * np.ones_like(b_out)
    if ly.raw is not None:  # as the kernel reads it: one burst per channel and row
        ch, k, s = ly.raw
        rin, cin = (np.asarray(tr) - 1) * s + k, (np.asarray(tc) - 1) * s + k
        per_row = raw_row_beats(cin, np.asarray(tc) * s, axi_bits)
        b_skip = np.ceil(ch * rin * per_row).astype(np.int64) * np.ones_like(b_out)
    else:
        b_grp = np.ceil(np.asarray(skip_extra) * np.asarray(tr) * _cdiv(tc, wpb)).astype(np.int64)
        b_skip = _cdiv(tm, G) * np.asarray(tr) * _cdiv(tc, wpb) + b_grp if ly.residual \
            else np.zeros_like(b_out)
    requant = _cdiv(np.ceil(tm).astype(np.int64) * pix, post)
    out_chip = np.asarray((chip or chip_flags(ly, {}))[1])
    b_ddr = np.where(out_chip, 0, b_out)
    lanes = np.where(out_chip, ports if banks is None else banks, ports)
    t = np.maximum(np.maximum(_cdiv(b_out, lanes), requant), np.ceil(b_ddr * axi_bits / ddr_bits))
    return t.astype(np.int64), b_ddr * axi_bits, b_skip


@dataclass(frozen=True)
class GroupCost:
    """One output group (one pass of ``Tm`` filters over one spatial tile) as the tile walk
    sees it: cycle arrays over the designs."""

    inner: Any  # its steps up to the last one's compute (the transitions between them)
    c_first: Any  # compute of its first step
    c_before: Any  # compute of the step before its last
    c_last: Any  # compute of its last step
    first: Any  # load its first step exposes (weights only when the tile's input stays)
    first_full: Any  # load of its first step with the input
    d_after: Any  # load of the step after its first
    d_last: Any  # load of its last step
    w: Any  # its write-back, latency and pipeline drain included
    single: Any  # one step that keeps its input for the tile's later passes (input_reuse)
    c_step: Any  # compute of a plane's step before its last ...
    d_step: Any  # ... and its load (``step_walk``'s per-step costs)
    d_end: Any  # load of a plane's last step (after the group's first)
    npp: Any  # steps per input plane
    units: Any  # the write-back's units: channel groups x rows (a fused pool's: 1)
    skip: Any  # load cycles of its residual operand alone, in ``first`` / ``first_full`` ...
    lead: Any  # ... which without it are these: the kernel reads it one iteration later,
    lead_full: Any  # beside the load of the step after (``*_skip``: a step's load with it)
    d_step_skip: Any
    d_end_skip: Any
    lead_side: Any  # ``lead`` and ``lead_full``'s reads on the residual operand's side (DDR
    lead_full_side: Any  # or the store) alone: what another tile's operand beside them adds to

    def steps(self, first: Any, first_skip: Any, planes: int, first_side: Any
              ) -> list[tuple[Any, Any, Any, Any]]:
        """(load, load with a residual operand, compute, the load's reads on the operand's
        side) cycles of the group's steps in order, the first loading ``first`` /
        ``first_skip`` / ``first_side`` (the full input, or only the weights when the tile's
        input stays)."""
        out = ([(self.d_step, self.d_step_skip, self.c_step, self.d_step)] * (int(self.npp) - 1)
               + [(self.d_end, self.d_end_skip, self.c_last, self.d_end)]) * planes
        return [(first, first_skip, out[0][2], first_side), *out[1:]]


@dataclass(frozen=True)
class NextGroup:
    """What a group's last step overlaps with: the next tile's first group (averaged over
    the tiles that follow a tile type)."""

    first: Any
    d_after: Any
    c_first: Any

    def mix(self, other: NextGroup, n_self: Any, n_other: Any) -> NextGroup:
        """The average of two, weighted by how often each follows."""
        n = np.maximum(n_self + n_other, 1)
        return NextGroup(*((n_self * a + n_other * b) / n for a, b in
                           ((self.first, other.first), (self.d_after, other.d_after),
                            (self.c_first, other.c_first))))


@dataclass(frozen=True)
class TileGroups:
    """A tile type's groups: a full pass's (``f``, the first P_m - 1) and the last pass's."""

    f: GroupCost
    l: GroupCost  # noqa: E741 (f and l: the full and last pass, as in the docs)

    def next_group(self, P_m: Any) -> NextGroup:
        """This tile's first group, as the group before it sees it."""
        multi = P_m > 1
        return NextGroup(np.where(multi, self.f.first_full, self.l.first_full),
                         np.where(multi, self.f.d_after, self.l.d_after),
                         np.where(multi, self.f.c_first, self.l.c_first))


def tile_load(g: GroupCost, n: GroupCost | NextGroup) -> Any:
    """Load cycles the next tile's first group exposes after group ``g``: with one step per
    group (the ``input_reuse`` case, whose next tile brings the input it keeps) that load also
    streams while ``g`` waits for its write-back, since reads and writes use separate
    channels."""
    slack = np.where(g.single, np.maximum(g.w - g.c_last, 0), 0)
    return np.maximum(n.first - slack, 0)


def _group_span(g: GroupCost, n: GroupCost | NextGroup, seq: int, next_tile: bool) -> Any:
    """Cycles of group ``g`` up to the end of its last compute, its last step overlapping the
    next group's first load (the next tile's, ``next_tile``)."""
    d_next = tile_load(g, n) if next_tile else n.first
    return g.inner + transition(g.c_before, g.c_last, n.c_first, g.d_last, d_next, n.d_after,
                                seq)


def _tile_groups(q: TileGroups, P_m: Any, nxt_tile: NextGroup, seq: int
                 ) -> Callable[[Any], Any]:
    """Cycles of one spatial tile's groups (passes f_1 .. f_{P-1}, l) as a function of the
    write-back its first group waits for (None: nothing to wait for); ``nxt_tile`` is the
    next tile's first group."""
    w_f = q.f.w
    first_f = _group_span(q.f, q.f, seq, False)
    only_f = _group_span(q.f, q.l, seq, False)
    end_f, mid_f = np.maximum(only_f, w_f), np.maximum(first_f, w_f)
    last_l = _group_span(q.l, nxt_tile, seq, True)
    multi = P_m > 1

    def per_tile(prev_w: Any) -> Any:
        def wait(t: Any) -> Any:
            return t if prev_w is None else np.maximum(t, prev_w)

        body = np.where(
            P_m > 2, wait(first_f) + np.maximum(P_m - 3, 0) * mid_f + end_f,
            np.where(multi, wait(only_f), 0),
        )
        return body + np.where(multi, np.maximum(last_l, w_f), wait(last_l))

    return per_tile


def layer_cycles_vec(
    ly: LayerShape, D: dict[str, Any], axi_bits: int, ddr_bits: float, opts: EngineOptions,
    geo: dict[str, Any], exact: bool = False,
) -> dict[str, Any]:
    """Cycles (and compute / memory parts, DDR bits, chunks per step, tile rows) of one engine
    layer for arrays of designs; ``exact`` (one design only) walks its steps (``step_walk``)
    instead of the closed form.

    ``D`` holds broadcastable integer arrays Tm4, Tm8, Tn, Tr, Tc, G, post, ports (AXI ports
    used), optionally per-design ``chip_flags``. ``ddr_bits`` is the sustained DDR bits per
    accelerator cycle; ``geo`` the network's ``buffers.buffer_geometry``. With
    ``multi_chunk`` the chunks per step of a 1x1 conv / FC are chosen per design (a
    compile-time choice of the layer descriptor) among 1, the capacity and half the input
    chunks, whichever gives the fewest cycles: more chunks hide AXI latency and let the input
    be reused, fewer leave steps to overlap loads with compute. A conv may also run with the
    tile rows of ``reuse_rows`` and all its channels in one step, where that is faster.
    """
    cap = chunk_capacity(ly, D, geo, opts)
    if ly.K == 1:
        runs = [_layer_cycles(ly, D, axi_bits, ddr_bits, opts, cap, exact)]
        if np.any(cap > 1):
            half = np.minimum(cap, _cdiv(_cdiv(ly.N, np.asarray(D["Tn"])), 2))
            runs += [_layer_cycles(ly, D, axi_bits, ddr_bits, opts, k, exact)
                     for k in (np.ones_like(cap), np.maximum(half, 1))]
    else:  # larger kernels take several chunks only to keep the input (below)
        runs = [_layer_cycles(ly, D, axi_bits, ddr_bits, opts, np.ones_like(cap), exact)]
    rows, fits = reuse_rows(ly, D, geo, opts)
    if np.any(fits & ((rows != np.asarray(D["Tr"])) | (ly.K > 1))):
        Dr = {**D, "Tr": rows}
        r = _layer_cycles(ly, Dr, axi_bits, ddr_bits, opts, chunk_capacity(ly, Dr, geo, opts),
                          exact)
        # only where all channels fit: a design's options never depend on the others
        runs.append({**r, "cycles": np.where(fits, r["cycles"], np.inf)})
    if len(runs) > 1:
        best = np.argmin(np.stack([r["cycles"] for r in runs]), axis=0)
        runs = [{key: np.choose(best, [np.broadcast_to(r[key], np.shape(best)) for r in runs])
                 for key in runs[0]}]
    return runs[0]


def reuse_rows(
    ly: LayerShape, D: dict[str, Any], geo: dict[str, Any], opts: EngineOptions
) -> tuple[Any, Any]:
    """Per design, the most output rows (``Tr`` or a proper divisor of it) with which one step
    of a conv holds all its input channels, so the input stays for every output pass
    (``input_reuse``), and whether any does (else ``Tr``). A per-layer choice of the layer
    descriptor: a divisor splits every tile, so the array-busy cycles never fall below
    ``compute_bound_vec``'s."""
    Tr = np.asarray(D["Tr"])
    if not (opts.input_reuse and opts.multi_chunk and ly.kind == "conv"
            and ly.raw is None and ly.planes == 1 and ly.R > 1):
        return Tr, np.zeros(np.shape(Tr), dtype=bool)
    need = _cdiv(ly.N, np.asarray(D["Tn"]))
    done = chunk_capacity(ly, D, geo, opts) >= need
    rows = np.broadcast_to(Tr, np.shape(done)).copy()
    cands = sorted({r for t in np.unique(Tr) for r in range(1, int(t)) if t % r == 0},
                   reverse=True)
    for r in cands:
        ok = ~done & (Tr % r == 0) & (r < ly.R)
        if not ok.any():
            continue
        fits = ok & (chunk_capacity(ly, {**D, "Tr": np.full_like(Tr, r)}, geo, opts) >= need)
        rows = np.where(fits, r, rows)
        done = done | fits
    return rows, done


@dataclass(frozen=True)
class _Layer:
    """What every pass of a layer shares, per design (``_layer_cycles``' setting)."""

    ly: LayerShape
    opts: EngineOptions
    axi_bits: int
    ddr_bits: float
    Tn: Any
    G: Any
    post: Any
    ports: Any
    banks: Any  # the feature-map store's banks (ports x store_banks)
    dw_px: Any
    seq: int  # latency each transfer pays in series (none with outstanding requests)
    chip: tuple[Any, Any, Any]  # chip_flags
    e_in: Any  # extra channel groups of the input's gather (hw.gathers) ...
    e_skip: Any  # ... and of the skip operand's
    e_f: Any  # extra channel groups a full step's channels touch (chunk_extra_groups) ...
    e_l: Any  # ... and the last step's
    P_n: Any  # steps per group, all planes
    tn_f: Any  # input channels of a full step ...
    tn_l: Any  # ... and of the last one
    reusable: Any  # input_reuse may apply (a one-step group keeps its input)


@dataclass(frozen=True)
class _PassTraffic:
    """One group's totals: compute cycles, load and write cycles, DDR bits; and what its
    tile's one input load adds when the input stays for the later passes."""

    compute: Any
    load: Any
    write: Any
    bits: Any
    reuse_load: Any
    reuse_bits: Any


def _pass_group(c: _Layer, tr: Any, tc: Any, edge: tuple[Any, Any], a: Any, b: Any,
                row_end: bool, exact: bool = False) -> tuple[GroupCost, _PassTraffic]:
    """The group of a pass of ``a`` 4-bit and ``b`` 8-bit filters over a ``tr x tc`` tile
    (``edge``: its input rows and row beats, ``edge_input``; ``row_end``: the tile ends its
    row): its steps' computes and loads and how they chain (``transition``), its
    write-back, its totals; ``exact``: with what only the exact walk reads (``lead_side``)."""
    ly, opts, seq, planes = c.ly, c.opts, c.seq, c.ly.planes
    tm = a + b
    wrow = a * W4_BITS + b * W8_BITS  # weight bits per input channel per tap
    P_n, tn_f, tn_l = c.P_n, c.tn_f, c.tn_l
    if ly.is_channelwise:
        P_n, tn_f, tn_l = np.ones_like(tm), tm, tm
    w, bits_w, skip = group_write(ly, tr, tc, tm, c.G, c.post, c.axi_bits, c.ports, c.ddr_bits,
                                  c.chip, c.e_skip, row_end, c.banks)
    w = w + seq + group_drain(opts)
    c_f = step_compute(ly, tr, tc, tn_f, c.Tn, c.dw_px, opts.dw_taps, opts.pipe_rewind)
    c_l = step_compute(ly, tr, tc, tn_l, c.Tn, c.dw_px, opts.dw_taps, opts.pipe_rewind)
    args = (wrow, c.G, c.axi_bits, c.ports, c.ddr_bits)
    t_f = tile_beats(ly, tr, tc, tn_f, wrow, c.G, c.axi_bits, edge, c.e_in + c.e_f)
    t_l = tile_beats(ly, tr, tc, tn_l, wrow, c.G, c.axi_bits, edge, c.e_in + c.e_l)
    on = {"chip": c.chip, "banks": c.banks}
    l_f, bits_f = step_load(ly, tr, tc, tn_f, *args, tile=t_f, **on)
    l_l, bits_l = step_load(ly, tr, tc, tn_l, *args, tile=t_l, **on)
    # a group's first step also prefetches the residual operand of its output tile
    l_f0, bits_f0 = step_load(ly, tr, tc, tn_f, *args, extra_beats=skip, tile=t_f, **on)
    l_l0, bits_l0 = step_load(ly, tr, tc, tn_l, *args, extra_beats=skip, tile=t_l, **on)
    # input_reuse: a one-step group's input stays on chip for the tile's later passes
    l_w0, bits_w0 = step_load(ly, tr, tc, tn_l, *args, extra_beats=skip, with_input=False,
                              tile=t_l, **on)
    npp = P_n // planes  # steps per input plane (only the first conv has 2 planes)
    multi = npp > 1
    reuse = c.reusable & ~multi
    # step s computes while step s+1 loads: full->full, full->last and last->full (next
    # plane) transitions inside the group
    inner = np.where(
        multi,
        planes * np.maximum(npp - 2, 0) * transition(c_f, c_f, c_f, l_f, l_f, l_f, seq)
        + (planes - 1) * transition(c_f, c_f, c_l, l_f, l_l, l_f, seq)
        # the step after the last plane's last is the next group's first (prefetch)
        + transition(c_f, c_f, c_l, l_f, l_l, l_f0, seq)
        + (planes - 1) * transition(c_f, c_l, c_f, l_l, l_f, l_f, seq),
        # one step per plane: the step after the second plane's is the next group's first
        # (with its prefetch)
        (planes - 1) * transition(c_l, c_l, c_l, l_l0, l_l, l_l0, seq),
    )
    first_full = np.where(multi, l_f0, l_l0)
    # the residual operand alone (the kernel reads it beside the group's first compute) and
    # the group's first loads without it (with any other prefetch: an im2col's raw tile)
    lead_full, lead = first_full, np.where(reuse, l_w0, first_full)
    lead_full_side, lead_side = lead_full, lead
    l_skip = np.zeros_like(l_w0)
    if ly.residual:
        nothing = np.zeros_like(t_l[0]), np.zeros_like(t_l[1])
        l_skip = step_load(ly, tr, tc, tn_l, *args, extra_beats=skip, tile=nothing, **on)[0]
        lead_full = np.where(multi, l_f, l_l)
        lead = np.where(reuse, step_load(ly, tr, tc, tn_l, *args, with_input=False, tile=t_l,
                                         **on)[0], lead_full)

        def side(tn: Any, tile: tuple[Any, Any], **kw: Any) -> Any:
            """A load's reads on the residual operand's side alone."""
            ddr, chip = (step_load(ly, tr, tc, tn, *args, tile=tile, part=part, **on, **kw)[0]
                         for part in ("ddr", "chip"))
            return np.where(np.asarray(c.chip[2]), chip, ddr)

        if exact:  # only the exact walk reads them
            lead_full_side = np.where(multi, side(tn_f, t_f), side(tn_l, t_l))
            lead_side = np.where(reuse, side(tn_l, t_l, with_input=False), lead_full_side)
    loads = np.where(
        multi, planes * ((npp - 1) * l_f + l_l) - l_f + l_f0, planes * l_l - l_l + l_l0
    )
    loads = np.where(reuse, l_w0, loads) + planes * npp * seq
    lbits = np.where(
        multi,
        planes * ((npp - 1) * bits_f + bits_l) - bits_f + bits_f0,
        planes * bits_l - bits_l + bits_l0,
    )
    lbits = np.where(reuse, bits_w0, lbits)
    l_first = l_l0 if planes == 1 else l_l  # load of a one-step-per-plane group's step
    l_first = np.where(reuse, l_w0, l_first)
    group = GroupCost(
        inner=inner, c_first=np.where(multi, c_f, c_l), c_before=np.where(multi, c_f, c_l),
        c_last=c_l, first=np.where(reuse, l_w0, first_full), first_full=first_full,
        d_after=np.where(multi, np.where(npp == 2, l_l, l_f), l_first),
        d_last=np.where(multi, l_l, l_first), w=w, single=reuse,
        c_step=c_f, d_step=l_f, d_end=l_l, npp=npp, units=write_units(ly, tr, tm, c.G),
        skip=l_skip, lead=lead, lead_full=lead_full,
        d_step_skip=l_f0 if ly.residual else l_f, d_end_skip=l_l0 if ly.residual else l_l,
        lead_side=lead_side, lead_full_side=lead_full_side,
    )
    traffic = _PassTraffic(
        compute=planes * ((npp - 1) * c_f + c_l), load=loads, write=w, bits=lbits + bits_w,
        # a reused input is still loaded once per tile
        reuse_load=np.where(reuse, l_l0 - l_w0, 0),
        reuse_bits=np.where(reuse, bits_l0 - bits_w0, 0),
    )
    return group, traffic


def _next_groups(tiles: list[TileGroups], rc_types: Any, P_r: Any, P_c: Any, P_m: Any
                 ) -> tuple[list[NextGroup], NextGroup]:
    """Per tile type, the first group of the tile after it, and the average over all tiles.
    Tiles run row-major: a full-column tile is followed by the full-column tiles of its row
    and then its last column, a last-column tile by the next row's first tile; each type's
    next tile is the average over the tiles that follow it."""
    firsts = [t.next_group(P_m) for t in tiles]
    n_tiles = P_r * P_c
    nxt_tile = NextGroup(*(sum(nrc * getattr(f, k) for (_, _, nrc), f in
                               zip(rc_types, firsts, strict=True)) / n_tiles
                           for k in ("first", "d_after", "c_first")))
    more_cols = P_c >= 2
    row_first = [firsts[0].mix(firsts[1], more_cols, ~more_cols),  # next row: a full row
                 firsts[2].mix(firsts[3], more_cols, ~more_cols)]  # next row: the last row
    after_row = row_first[0].mix(row_first[1], np.maximum(P_r - 2, 0), P_r >= 2)
    nexts = [firsts[0].mix(firsts[1], np.maximum(P_c - 2, 0), 1),
             after_row,
             firsts[2].mix(firsts[3], np.maximum(P_c - 2, 0), 1),
             nxt_tile]
    return nexts, nxt_tile


def _tile_walk(tiles: list[TileGroups], nexts: list[NextGroup], nxt_tile: NextGroup,
               P_r: Any, P_c: Any, P_m: Any, seq: int) -> Any:
    """Cycles of all the layer's tiles in row-major order over the tile types (full / last
    row) x (full / last column): a tile's first group waits for the previous tile's last
    write-back (same row: the column to its left; first column: the last column of the row
    above), the very first tile for nothing; the last group's write-back is exposed."""
    walks = [_tile_groups(q, P_m, nx, seq) for q, nx in zip(tiles, nexts, strict=True)]
    w_last = [q.l.w for q in tiles]
    multi_m = P_m > 1
    c_ff, c_l1 = np.maximum(P_c - 2, 0), P_c >= 2
    total = (P_r - 1) * (c_ff * walks[0](w_last[0]) + c_l1 * walks[1](w_last[0]))
    total = total + c_ff * walks[2](w_last[2]) + c_l1 * walks[3](w_last[2])
    col0_f = np.where(c_l1, walks[0](w_last[1]), walks[1](w_last[1]))
    col0_l = np.where(c_l1, walks[2](w_last[1]), walks[3](w_last[1]))
    total = total + np.maximum(P_r - 2, 0) * col0_f + (P_r >= 2) * col0_l
    i0 = np.where(P_r >= 2, np.where(c_l1, 0, 1), np.where(c_l1, 2, 3))
    first = np.choose(i0, [t(None) for t in walks])
    first_load = np.choose(
        i0, [np.where(multi_m, q.f.first_full, q.l.first_full) for q in tiles]
    )
    total = total + first + first_load + AXI_LATENCY
    # the last group prefetches nothing; its write-back and write response are exposed
    g, f = tiles[3].l, tiles[3].f
    fin = transition(
        g.c_before, g.c_last, nxt_tile.c_first, g.d_last, tile_load(g, nxt_tile),
        nxt_tile.d_after, seq,
    ) - g.c_last
    # ... and starts once the write-back before it is done: with several groups in the tile,
    # the group before's write (begun at its compute end) may outlast the last compute
    last_l = g.inner + fin + g.c_last
    slot_f = f.inner + transition(f.c_before, f.c_last, g.c_first, f.d_last, g.first,
                                  g.d_after, seq)
    slot_f = np.where(P_m > 2, np.maximum(slot_f, f.w), slot_f)
    counted = np.maximum(last_l, f.w) - fin
    before = np.maximum(g.inner + g.c_last, f.c_last + f.w - slot_f)
    total = total + np.where(multi_m, np.maximum(before - counted, 0), 0)
    return total + g.w - fin + AXI_LATENCY - seq


def _scalar(g: GroupCost) -> GroupCost:
    """A one-design group cost as Python floats (``step_walk`` runs per design)."""
    return GroupCost(*(float(np.ravel(getattr(g, f.name))[0]) for f in fields(GroupCost)))


def step_walk(tiles: list[TileGroups], P_r: int, P_c: int, P_m: int, planes: int, seq: int,
              rows: tuple[int, int] | None = None, lat: float | None = None,
              joined: list[list[tuple[int, float, int]]] | None = None) -> float:
    """Cycles of one design's layer by walking its steps in the kernel's order (rows, columns,
    passes, steps) with the C-sim counters' lock-step rule (``lockstep_walk``; ``lat``: a
    write-back's request, default ``seq``); ``rows``: the tile rows [first, end) of one run of
    a band-fused layer (a descriptor of its own), else all; ``joined``: per tile type, an
    all-8-bit layer's Tm-filter passes (``_all8_passes``). ``_tile_walk`` is the closed form
    the search ranks arrays of designs by: the same costs with loads, computes and
    write-backs overlapping as far as the ping-pong halves allow."""
    # per tile type and pass (first, middle, last): the group's steps, write-back and units
    # (the residual operand moves from the first step's load to the iteration after it)
    plans = [[(g.steps(g.lead_full, g.first_full, planes, g.lead_full_side) if m == 0
               else g.steps(g.lead, g.first, planes, g.lead_side), g.w, g.units, g.skip)
              for m, g in ((0, q.l if P_m == 1 else q.f), (1, q.f), (1, q.l))] for q in tiles]
    passes = []
    for r in range(*(rows or (0, P_r))):
        for col in range(P_c):
            kind = 2 * (r == P_r - 1) + (col == P_c - 1)
            plan = plans[kind]
            tile = [plan[0 if m == 0 else (2 if m == P_m - 1 else 1)] for m in range(P_m)]
            passes += tile if joined is None else _join(tile, joined[kind])
    return lockstep_walk(passes, seq, seq if lat is None else lat)


def _join(subs: list[Any], passes: list[tuple[int, float, int]]) -> list[Any]:
    """An all-8-bit layer's sub-passes (each a pass of ``lockstep_walk``) joined into the
    kernel's passes, ``passes`` as (sub-passes, write-back cycles, write units): a pass runs
    the steps of its sub-passes and writes its filters once."""
    out, i = [], 0
    for count, w, units in passes:
        part = subs[i:i + count]
        out.append(([st for sub in part for st in sub[0]], w, units, part[0][3]))
        i += count
    return out


def _all8_passes(ly: LayerShape, c: _Layer, D: dict[str, Any], tr: Any, tc: Any,
                row_end: bool) -> list[tuple[int, float, int]]:
    """The Tm-filter passes of an all-8-bit layer (one design) over a ``tr x tc`` tile, as
    the kernel runs them: (sub-passes of ``split8_capacity`` filters, the write-back of the
    pass's filters with its request and drain, its write units)."""
    tm = int(np.ravel(D["Tm4"])[0] + np.ravel(D["Tm8"])[0])
    cap = max(int(np.ravel(split8_capacity(D["Tm4"], D["Tm8"], c.opts))[0]), 1)
    out = []
    for m in [tm] * (ly.M // tm) + ([ly.M % tm] if ly.M % tm else []):
        w = group_write(ly, tr, tc, m, c.G, c.post, c.axi_bits, c.ports, c.ddr_bits, c.chip,
                        c.e_skip, row_end, c.banks)[0]
        out.append((-(-m // cap), float(np.ravel(w)[0] + c.seq + group_drain(c.opts)),
                    int(np.ravel(write_units(ly, tr, m, c.G))[0])))
    return out


def _layer_cycles(
    ly: LayerShape, D: dict[str, Any], axi_bits: int, ddr_bits: float, opts: EngineOptions,
    chunks: Any, exact: bool = False,
) -> dict[str, Any]:
    """``layer_cycles_vec`` for a given number of Tn chunks per step: every pass type of every
    tile type (``_pass_group``), walked in the kernel's order (``_tile_walk``), bounded below
    by the layer's DDR bits, plus the layer's start and table read."""
    Tm4, Tm8, Tn, Tr, Tc, G = (np.asarray(D[k]) for k in ("Tm4", "Tm8", "Tn", "Tr", "Tc", "G"))
    post, ports = np.asarray(D["post"]), np.asarray(D["ports"])
    P_m, a_f, b_f, a_l, b_l = pass_split(ly, Tm4, Tm8, opts)
    e_in, e_skip, indexed = layer_gathers(ly, Tm4 + Tm8, Tm8, G)
    P_n = tn_f = tn_l = None
    e_f = e_l = 0
    if not ly.is_channelwise:
        n_per_plane, tn_f, tn_l = _split(ly.N, Tn * chunks)
        P_n = n_per_plane * ly.planes
        e_f, e_l = chunk_extra_groups(Tn * chunks, tn_l, n_per_plane, G)
    c = _Layer(
        ly, opts, axi_bits, ddr_bits, Tn, G, post, ports,
        ports * np.asarray(D.get("store_banks", 1)), dw_pixels(D["dsp4"]),
        0 if opts.axi_outstanding else AXI_LATENCY, chip_flags(ly, D), e_in, e_skip, e_f, e_l,
        P_n, tn_f, tn_l,
        # input_reuse applies where a group is one step over all input channels
        np.full(np.shape(P_m), opts.input_reuse and ly.kind in ("conv", "fc")
                and ly.planes == 1 and ly.raw is None),
    )
    P_r, _, _ = _split(ly.R, Tr)
    P_c, _, _ = _split(ly.C, Tc)

    shape = np.broadcast(Tm4, Tn, Tr, Tc, G, post, ports).shape
    comp = np.zeros(shape, dtype=np.float64)
    mem_load = np.zeros_like(comp)
    mem_write = np.zeros_like(comp)
    bits = np.zeros_like(comp)
    one = np.ones_like(P_m)
    rc_types = tile_types(ly, Tr, Tc, one)
    tiles = []
    for k, (tr, tc, nrc) in enumerate(rc_types):
        edge = edge_input(ly, tr, tc, Tr, Tc, G, axi_bits, k >= 2, k % 2 == 1)
        (f, t_f), (last, t_l) = (_pass_group(c, tr, tc, edge, a_f, b_f, k % 2 == 1, exact),
                                 _pass_group(c, tr, tc, edge, a_l, b_l, k % 2 == 1, exact))
        for t, cnt in ((t_f, nrc * (P_m - 1)), (t_l, nrc * one)):
            comp += cnt * t.compute
            mem_load += cnt * t.load
            mem_write += cnt * t.write
            bits += cnt * t.bits
        mem_load += nrc * t_l.reuse_load
        bits += nrc * t_l.reuse_bits
        tiles.append(TileGroups(f, last))
    nexts, nxt_tile = _next_groups(tiles, rc_types, P_r, P_c, P_m)
    start = layer_launch(opts) + table_cycles(ly, axi_bits, ports, ddr_bits, indexed)
    if exact:  # per run (a band-fused layer's row bands, else the whole map): its own walk
        pr, tr = int(np.ravel(P_r)[0]), int(np.ravel(Tr)[0])
        scalar = [TileGroups(*(_scalar(g) for g in (t.f, t.l))) for t in tiles]
        joined = [_all8_passes(ly, c, D, t_r, t_c, k % 2 == 1)
                  for k, (t_r, t_c, _) in enumerate(rc_types)] if ly.all8 else None
        total = sum(
            np.maximum(step_walk(scalar, pr, int(np.ravel(P_c)[0]), int(np.ravel(P_m)[0]),
                                 ly.planes, c.seq, (lo // tr, -(-hi // tr)),
                                 c.seq + group_drain(opts), joined),
                       np.ceil(bits * (hi - lo) / ly.R / ddr_bits)) + start
            for lo, hi in ly.bands or [(0, ly.R)])
    else:  # a band switch starts a run afresh: its start, first load and last write-back
        total = _tile_walk(tiles, nexts, nxt_tile, P_r, P_c, P_m, c.seq)
        restart = start + AXI_LATENCY + tiles[0].f.first_full + tiles[0].l.w
        total = (np.maximum(total, np.ceil(bits / ddr_bits)) + start
                 + band_switches(ly, D) * restart)
    return {
        "cycles": total,
        "compute": comp,
        "memory": np.maximum(mem_load, mem_write),
        "ddr_bits": bits,
        "chunks": np.broadcast_to(chunks, np.shape(total)),
        "rows": np.broadcast_to(Tr, np.shape(total)),  # output rows per tile
    }


def traffic_bound_bits(ly: LayerShape, D: dict[str, Any], opts: EngineOptions) -> Any:
    """Fewest DDR bits a layer can move: its weights once, its output (pooled when a pool is
    fused) and residual operand once, and at least one 5-bit value per input channel and
    output pixel (an on-chip im2col's raw input and tensors in the feature-map store are
    not counted)."""
    _, M4, M8 = m_passes(ly, D["Tm4"], D["Tm8"], opts)
    taps = ly.K * ly.K * (ly.N // ly.groups)
    weights = taps * (M4 * W4_BITS + M8 * W8_BITS) if ly.kind in ("conv", "fc", "dwconv") else 0
    in_chip, out_chip, skip_chip = (np.asarray(f) for f in chip_flags(ly, D))
    acts = ly.M * out_pixels(ly) * ((~out_chip).astype(int) + (ly.residual & ~skip_chip))
    acts = acts + (0 if ly.raw is not None else np.where(in_chip, 0, ly.N * ly.R * ly.C))
    return weights + acts * ACT_BITS


def shape_key(ly: LayerShape) -> LayerShape:
    """The layer without what its cycles do not depend on (name, tensor ids)."""
    return replace(ly, name="", tin=-1, tout=-1, tskip=-1)


def _plan_keys(D: dict[str, Any], opts: EngineOptions) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (store, ring rows, G, store banks) of arrays of designs, which decide the
    store's plan, and per design the index of its own (shaped as ``D["Tr"]``)."""
    shape = np.shape(D["Tr"])
    store = np.broadcast_to(np.asarray(D.get("store", 0)), shape)
    if not opts.fm_store:
        store = np.zeros_like(store)
    rows = np.broadcast_to(ring_rows(np.asarray(D["Tr"]), opts)
                           * np.asarray(D.get("rings", True)), shape)
    G = np.broadcast_to(np.asarray(D["G"]), shape)
    banks = np.broadcast_to(np.asarray(D["ports"]) * np.asarray(D.get("store_banks", 1)), shape)
    keys = np.stack([np.ravel(a) for a in (store, rows, G, banks)], axis=1)
    plans, which = np.unique(keys, axis=0, return_inverse=True)
    return plans, np.reshape(which, shape)


def rings_change_plan(
    layers: list[LayerShape], D: dict[str, Any], opts: EngineOptions, axi_bits: int
) -> np.ndarray:
    """Per design, whether its store's plan with band rings differs from the plan without
    them (where it does not, both give the same cycles)."""
    plans, which = _plan_keys(D, opts)
    run = tuple(engine_layers(layers, opts))
    differ = np.array([
        rows > 0 and not np.array_equal(
            chip_flags_of(run, store_layout(s, g, n, axi_bits), int(rows)),
            chip_flags_of(run, store_layout(s, g, n, axi_bits), 0))
        for s, rows, g, n in plans], dtype=bool)
    return differ[which]


def network_sum(
    layers: list[LayerShape], D: dict[str, Any], opts: EngineOptions, axi_bits: int,
    layer_fn: Callable[[LayerShape, dict[str, Any], Any], Any], geo: Any = None,
) -> Any:
    """Sum over the engine layers of ``layer_fn(layer, designs, geo)`` plus the frame launch,
    for arrays of designs. The feature-map store decides which tensors are on chip, so a layer
    carries its on-chip flags per design in ``D`` (``chip_flags``, and ``in_band``: band rings
    depend on the store, its layout and the tile rows); each distinct layer (shape and flags
    over the designs) is evaluated once and counted as often as it occurs."""
    plans, which = _plan_keys(D, opts)
    run = tuple(engine_layers(layers, opts))
    # (plans, layers, 4) on-chip flags
    every = np.stack([chip_flags_of(run, store_layout(s, g, n, axi_bits), int(r))
                      for s, r, g, n in plans])
    groups: dict[tuple[LayerShape, bytes], list[Any]] = {}
    for i, ly in enumerate(run):
        base, flags = shape_key(ly), every[:, i]
        g = groups.setdefault((base, flags.tobytes()), [base, flags, 0])
        g[2] += 1
    total = float(frame_launch(opts))
    for base, flags, k in groups.values():
        per = flags[which]
        Dl = {**D, "in_chip": per[..., 0], "out_chip": per[..., 1], "skip_chip": per[..., 2],
              "in_band": per[..., 3]}
        total = total + k * layer_fn(base, Dl, geo)
    return total


def network_bound_vec(
    layers: list[LayerShape], D: dict[str, Any], opts: EngineOptions, axi_bits: int,
    ddr_bits: float = np.inf,
) -> Any:
    """A lower bound on ``network_cycles_vec``: per layer the larger of its compute bound and
    its fewest DDR bits over ``ddr_bits`` per cycle (the DSE ranks designs by it to skip exact
    evaluations that cannot win)."""

    def bound(ly: LayerShape, Ds: dict[str, Any], _: Any) -> Any:
        ddr = np.ceil(traffic_bound_bits(ly, Ds, opts) / ddr_bits) + layer_launch(opts)
        return np.maximum(compute_bound_vec(ly, Ds, opts), ddr)

    return network_sum(layers, D, opts, axi_bits, bound)


def ddr_bits_per_cycle(board: Board, clock_mhz: float) -> float:
    """Sustained DDR bits per accelerator cycle (peak x efficiency / clock)."""
    return board.ddr_bytes_per_cycle(clock_mhz) * 8


def band_runs(run: list[LayerShape], Tr: int) -> list[LayerShape]:
    """Engine layers with the row bands (``LayerShape.bands``) of the band schedule, where
    layers read band rings (``in_band``) of one design with ``Tr`` tile rows."""
    edges = {i - 1 for i, ly in enumerate(run) if ly.in_band}
    if not edges:
        return run
    bands: dict[int, list[tuple[int, int]]] = {}
    for i, lo, hi in band_schedule([(ly.R, ly.stride, ly.K, ly.pad) for ly in run], edges, Tr):
        bands.setdefault(i, []).append((lo, hi))
    return [replace(ly, bands=tuple(bands[i])) if len(bands.get(i, ())) > 1 else ly
            for i, ly in enumerate(run)]


def network_performance(
    layers: list[LayerShape],
    d: DesignPoint,
    board: Board,
    opts: EngineOptions | None = None,
) -> dict[str, Any]:
    """Per-layer and total modelled cycles, latency (ms), FPS and DDR traffic of one design."""
    opts = opts or EngineOptions()
    D = design_arrays(d, board)
    ddr = ddr_bits_per_cycle(board, d.clock_mhz)
    geo = buffer_geometry(layers, D, opts)
    per: list[LayerPerf] = []
    done: dict[LayerShape, dict[str, Any]] = {}  # layers of identical shape: evaluated once
    store = d.store_layout(board)
    run = band_runs(engine_layers(layers, opts, store, d.band_tr), d.Tr)
    placed = () if not opts.fm_store else plan(tuple(engine_layers(layers, opts)), store,
                                               int(ring_rows(d.band_tr, opts)))
    offsets = {q.tensor: q.offset for q in placed}
    rings = {q.tensor for q in placed if q.band}
    for i, ly in enumerate(run):
        key = shape_key(ly)
        if key not in done:
            done[key] = layer_cycles_vec(ly, D, board.axi_width_bits, ddr, opts, geo, exact=True)
        r = done[key]
        cyc, cmp_, mem = int(r["cycles"][0]), int(r["compute"][0]), int(r["memory"][0])
        per.append(
            LayerPerf(
                ly.name, ly.kind, cyc, cmp_, mem,
                "compute" if cmp_ >= mem else "memory",
                ly.macs,
                int(r["ddr_bits"][0] // 8),
                tuple(t for t, on in (("input", ly.in_chip), ("output", ly.out_chip),
                                      ("skip", ly.skip_chip)) if on),
                ly.in_band,
                int(np.asarray(r["chunks"]).ravel()[0]),
                int(np.asarray(r["rows"]).ravel()[0]),
                offsets.get(ly.tout, -1) if ly.tout >= 0 else -1,
                band_rows(ly, run[i + 1], d.Tr) if ly.tout in rings and ly.tout >= 0 else 0,
            )
        )
    total = sum(p.cycles for p in per) + frame_launch(opts)
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


def host_input_bits(layers: list[LayerShape], opts: EngineOptions) -> int:
    """Bits the host writes to DDR per frame for the network input, as the engine reads it:
    the zero-padded raw 8-bit map for the on-chip im2col, else the first conv's input planes
    (K*K times larger when the host unrolls it). Not in the engine's cycles; ``explore``
    weighs it where it chooses the im2col's placement (0 without a layer reading the input)."""
    ly = next((x for x in layers if x.first), None)
    if ly is None:
        return 0
    e = next(x for x in engine_layers(layers, opts) if x.first)
    if e.raw is not None:
        return ly.N * (ly.H + 2 * ly.pad) * (ly.W + 2 * ly.pad) * INPUT_BITS
    return e.N * e.H * e.W * e.planes * ACT_BITS


def network_cycles_vec(
    layers: list[LayerShape], D: dict[str, Any], board: Board, clock_mhz: float,
    opts: EngineOptions,
) -> Any:
    """Total modelled cycles of a network for arrays of designs (the DSE's inner loop).

    Layers of identical shape are evaluated once and counted as often as they occur. ``D``
    without "ports" uses all of the board's AXI ports, without "store" no feature-map store.
    """
    D = {"ports": board.axi_ports, **D}
    ddr = ddr_bits_per_cycle(board, clock_mhz)

    def cycles(ly: LayerShape, Ds: dict[str, Any], geo: Any) -> Any:
        return layer_cycles_vec(ly, Ds, board.axi_width_bits, ddr, opts, geo)["cycles"]

    return network_sum(layers, D, opts, board.axi_width_bits, cycles,
                       buffer_geometry(layers, D, opts))
