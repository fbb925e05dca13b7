"""On-chip buffer geometry of a design: input bank phases and the deepest input / weight /
accumulator bank any layer of the network needs (read by the resource model for BRAM and by
the performance model for how many channel chunks a step may hold)."""

from __future__ import annotations

from typing import Any

import numpy as np

from filmqnn.hw.design import PIXELS, EngineOptions, engine_layers
from filmqnn.hw.layers import LayerShape


def dw_window(layers: list[LayerShape], opts: EngineOptions) -> tuple[int, int]:
    """(K, stride), largest over the depthwise layers run with ``dw_taps``; (0, 0) if none."""
    dw = [ly for ly in layers if ly.kind == "dwconv"] if opts.dw_taps else []
    return max((ly.K for ly in dw), default=0), max((ly.stride for ly in dw), default=0)


def bank_phases(layers: list[LayerShape], opts: EngineOptions) -> tuple[int, int]:
    """(row, column) phases the input buffer is banked in so that every read of a cycle hits
    a different bank: PIXELS output columns at the largest stride S read columns ``PIXELS*S``
    apart; a depthwise window (``dw_taps``) also reads its K rows in the same cycle."""
    k_dw, _ = dw_window(layers, opts)
    return max(1, k_dw), PIXELS * max(ly.stride for ly in engine_layers(layers, opts))


def buffer_geometry(
    layers: list[LayerShape], D: dict[str, Any], opts: EngineOptions
) -> dict[str, Any]:
    """Deepest input (per bank phase) / weight / accumulator bank any layer needs, for arrays
    of designs."""
    Tm4, Tm8, Tn, Tr, Tc, G = (np.asarray(D[k]) for k in ("Tm4", "Tm8", "Tn", "Tr", "Tc", "G"))
    Tm = Tm4 + Tm8
    in_depth = np.zeros(np.broadcast(Tm, Tn, Tr, Tc, G).shape, dtype=np.int64)
    w_taps = np.zeros_like(in_depth)
    acc_depth = np.zeros_like(in_depth)
    rp, cp = bank_phases(layers, opts)
    for ly in engine_layers(layers, opts):
        tr, tc = np.minimum(Tr, ly.R), np.minimum(Tc, ly.C)
        rin = np.minimum((tr - 1) * ly.stride + ly.K, ly.H + 2 * ly.pad)
        cin = np.minimum((tc - 1) * ly.stride + ly.K, ly.W + 2 * ly.pad)
        if ly.raw is None:  # an on-chip im2col layer reads its own raw tile buffer
            # each input bank holds G channels of one (row, column) phase
            in_depth = np.maximum(in_depth, -(-rin // rp) * -(-cin // cp))
        if ly.kind in ("conv", "fc", "dwconv"):
            w_taps = np.maximum(w_taps, ly.K * ly.K)
        acc_depth = np.maximum(acc_depth, tr * -(-tc // PIXELS))
    return {"in_depth": in_depth, "w_taps": w_taps, "acc_depth": acc_depth, "phases": (rp, cp)}
