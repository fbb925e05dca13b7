"""On-chip buffer geometry of a design: input bank phases and the deepest input / weight /
accumulator bank any layer of the network needs (read by the resource model for BRAM and by
the performance model for how many channel chunks a step may hold)."""

from __future__ import annotations

from typing import Any

import numpy as np

from filmqnn.formats import ACT_BITS
from filmqnn.hw.design import PIXELS, WEIGHT_RELOAD, EngineOptions, engine_layers
from filmqnn.hw.layers import LayerShape

#: Bytes of one output channel's requantization entry (bias, rounding offset, multiplier and
#: shift, skip multiplier): the engine reads a layer's table once, at the layer's start
#: (``performance.table_cycles``), before its first load, into a table as deep as the
#: network's widest layer.
REQUANT_TABLE_BYTES = 16
#: Bits of an on-chip gather index entry (a channel position; the kernel's ``index_t``). The
#: kernel holds four such arrays as deep as the widest layer: the input and skip gathers and
#: their read orders.
INDEX_BITS = 16
GATHER_ARRAYS = 4

#: BRAM18K aspect ratios (width bits, depth words), UG473 / UG573 "RAMB18 port widths".
BRAM18K_ASPECTS = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))
_BLOCK = 1 << 16  # designs per block of the vectorised BRAM mapping


def _bram18k_map(width: Any, depth: Any) -> tuple[Any, Any]:
    """(BRAM18Ks, words they hold) of one bank of ``width`` bits x ``depth`` words mapped on
    the cheapest aspect ratio (ties: the deepest)."""
    width, depth = np.broadcast_arrays(np.asarray(width), np.asarray(depth))
    # in float64, exact for these integers (a quotient by 9 is never within rounding of an
    # integer unless it is one) and faster than numpy's integer division; in blocks that
    # stay in the cache, as the DSE passes millions of designs
    wf, df = width.ravel().astype(np.float64), depth.ravel().astype(np.float64)
    count, words = np.zeros(wf.size, np.int64), np.zeros(wf.size, np.int64)
    for i in range(0, wf.size, _BLOCK):
        w_b, d_b = wf[i:i + _BLOCK], df[i:i + _BLOCK]
        best = held = None
        for w, d in BRAM18K_ASPECTS:
            rows = np.ceil(d_b / d)
            n = np.ceil(w_b / w) * rows
            if best is None:
                best, held = n, rows * d
            else:
                better = (n < best) | ((n == best) & (rows * d > held))
                best, held = np.where(better, n, best), np.where(better, rows * d, held)
        used = (w_b > 0) & (d_b > 0)
        count[i:i + _BLOCK] = np.where(used, best, 0)
        words[i:i + _BLOCK] = np.where(used, held, 0)
    return count.reshape(width.shape), words.reshape(width.shape)


def bram18k_count(width: Any, depth: Any) -> Any:
    """BRAM18Ks for one bank of ``width`` bits x ``depth`` words (cheapest aspect ratio)."""
    return _bram18k_map(width, depth)[0]


def bram18k_words(width: Any, depth: Any) -> Any:
    """Words the BRAM18Ks of one ``width`` x ``depth`` bank hold (depth rounded up)."""
    return _bram18k_map(width, depth)[1]


def lutram_luts(width: Any, depth: Any) -> Any:
    """LUTs of one simple-dual-port (a read and a write port) distributed RAM of ``width``
    bits x ``depth`` words in SLICEM LUTs (UG474 "Distributed RAM": RAM32M holds 32 x 6 and
    RAM64M 64 x 3 in 4 LUTs): up to 32 words on RAM32Ms, else 64-word RAM64M blocks and a
    read mux of LUT6s over them (3 more blocks each). UltraScale's RAM32M16 / RAM64M8 hold a
    little more per LUT, so there this is an upper bound."""
    width, depth = np.asarray(width), np.asarray(depth)
    blocks = -(-depth // 64)
    deep = 4 * -(-width // 3) * blocks + width * -(-np.maximum(blocks - 1, 0) // 3)
    luts = np.where(depth <= 32, 4 * -(-width // 6), deep)
    return np.where((width > 0) & (depth > 0), luts, 0)


def weight_banks(Tm4: Any, Tm8: Any, Tn: Any, w_taps: Any) -> dict[str, Any]:
    """Weight bank layout: a row reloads Tn weights in WEIGHT_RELOAD cycles from a bank word of
    ``4*Tn/16`` (8-bit rows: twice) bits; narrow rows share a 36-bit bank; ``depth`` is
    ping-pong x taps x reload words."""
    w4 = -(-(4 * np.asarray(Tn)) // WEIGHT_RELOAD)
    w8 = 2 * w4
    rows4 = np.maximum(1, 36 // np.maximum(w4, 1))
    rows8 = np.maximum(1, 36 // np.maximum(w8, 1))
    return {
        "rows4": rows4, "rows8": rows8,
        "bank4": np.minimum(rows4, np.maximum(Tm4, 1)) * w4,
        "bank8": np.minimum(rows8, np.maximum(Tm8, 1)) * w8,
        "depth": 2 * np.asarray(w_taps) * WEIGHT_RELOAD,
    }


def table_brams(layers: list[LayerShape], opts: EngineOptions) -> int:
    """BRAM18Ks of the kernel's per-layer tables, each as deep as the widest layer's output
    channels: the requantization table (an entry read whole) and the gather index arrays."""
    mmax = max((ly.M for ly in engine_layers(layers, opts)), default=1)
    return int(bram18k_count(8 * REQUANT_TABLE_BYTES, mmax)
               + GATHER_ARRAYS * bram18k_count(INDEX_BITS, mmax))


def dw_window(layers: list[LayerShape], opts: EngineOptions) -> tuple[int, int]:
    """(K, stride), largest over the depthwise layers run with ``dw_taps``; (0, 0) if none."""
    dw = [ly for ly in layers if ly.kind == "dwconv"] if opts.dw_taps else []
    return max((ly.K for ly in dw), default=0), max((ly.stride for ly in dw), default=0)


def input_phases(k_dw: int, stride: int) -> tuple[int, int]:
    """(row, column) phases the input buffer is banked in so that every read of a cycle hits
    a different bank: PIXELS output columns at the largest stride S read columns ``PIXELS*S``
    apart; a depthwise window of ``k_dw`` rows (``dw_taps``; 0: none) reads them in the same
    cycle. Shared with the kernel's C-sim bank checker (``IB_RP``, ``IB_CP``)."""
    return max(1, k_dw), PIXELS * max(1, stride)


def bank_phases(layers: list[LayerShape], opts: EngineOptions) -> tuple[int, int]:
    """``input_phases`` of a network's engine layers."""
    k_dw, _ = dw_window(layers, opts)
    return input_phases(k_dw, max(ly.stride for ly in engine_layers(layers, opts)))


def buffer_geometry(
    layers: list[LayerShape], D: dict[str, Any], opts: EngineOptions
) -> dict[str, Any]:
    """Input (words per bank phase) / weight (taps) / accumulator bank depths of a design: the
    deepest any layer needs, input and weight banks times the design's ``buf`` (default 1);
    plus what one ping-pong half holds (``in_words``, ``w_chunks``), for arrays of designs."""
    Tm4, Tm8, Tn, Tr, Tc, G = (np.asarray(D[k]) for k in ("Tm4", "Tm8", "Tn", "Tr", "Tc", "G"))
    shape = np.broadcast(Tm4, Tm8, Tn, Tr, Tc, G).shape
    rp, cp = bank_phases(layers, opts)
    # the depths depend on (Tr, Tc) alone: evaluated once per value pair up to the largest
    # tile, then looked up per design (the DSE's grids hold millions of designs, few tiles)
    tr = np.arange(int(np.max(Tr, initial=1)) + 1)[:, None]
    tc = np.arange(int(np.max(Tc, initial=1)) + 1)[None, :]
    in_tab = np.zeros((tr.size, tc.size), dtype=np.int64)
    acc_tab = np.zeros_like(in_tab)
    w_taps = 0
    shapes = {(ly.R, ly.C, ly.H, ly.W, ly.K, ly.stride, ly.pad, ly.raw is None, ly.kind)
              for ly in engine_layers(layers, opts)}
    for R, C, H, W, K, stride, pad, own_input, kind in shapes:
        r, c = np.minimum(tr, R), np.minimum(tc, C)
        rin = np.minimum((r - 1) * stride + K, H + 2 * pad)
        cin = np.minimum((c - 1) * stride + K, W + 2 * pad)
        if own_input:  # an on-chip im2col layer reads its own raw tile buffer
            # each input bank holds G channels of one (row, column) phase
            in_tab = np.maximum(in_tab, -(-rin // rp) * -(-cin // cp))
        if kind in ("conv", "fc", "dwconv"):
            w_taps = max(w_taps, K * K)
        acc_tab = np.maximum(acc_tab, r * -(-c // PIXELS))
    in_depth = np.broadcast_to(in_tab[Tr, Tc], shape)
    acc_depth = np.broadcast_to(acc_tab[Tr, Tc], shape)
    # a design may deepen both buffers (``buf``) so 1x1 steps hold more input channels
    buf = np.asarray(D.get("buf", 1))
    in_depth, w_taps = in_depth * buf, w_taps * buf
    # what one ping-pong half of the allocated BRAMs holds: Tn-channel chunks of weights per
    # row and input words per bank (the BRAM depth rounds the sized depth up)
    wb = weight_banks(Tm4, Tm8, Tn, w_taps)
    w_words = bram18k_words(wb["bank4"], wb["depth"])
    w_words = np.where(Tm8 > 0, np.minimum(w_words, bram18k_words(wb["bank8"], wb["depth"])),
                       w_words)
    return {
        "in_depth": in_depth, "w_taps": w_taps, "acc_depth": acc_depth, "phases": (rp, cp),
        "w_chunks": w_words // (2 * WEIGHT_RELOAD),
        "in_words": bram18k_words(ACT_BITS * G, 2 * in_depth) // 2,
    }
