"""Tile-by-tile simulator of the engine's double-buffered schedule (checks ``performance``).

It walks the real loop nest with the real edge-tile sizes and the real 4-/8-bit filters of
every output-channel pass, and runs it as the kernel does (``performance.lockstep_walk``):
in lock-step over the ping-pong halves, an iteration loads one step, computes the step
before it and writes a slice of the pass before that one's. Per-transfer durations use the
same primitive cost functions as the analytic model (one source of truth for AXI / DDR /
compute costs).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from filmqnn.formats import ACT_BITS
from filmqnn.hw.buffers import buffer_geometry
from filmqnn.hw.design import DesignPoint, EngineOptions, design_arrays, dw_pixels, engine_layers
from filmqnn.hw.devices import Board
from filmqnn.hw.layers import LayerShape
from filmqnn.hw.performance import (
    AXI_LATENCY,
    W4_BITS,
    W8_BITS,
    band_runs,
    ddr_bits_per_cycle,
    group_drain,
    group_write,
    layer_cycles_vec,
    layer_gathers,
    layer_launch,
    lockstep_walk,
    m_passes,
    rows_read,
    span_beats,
    split8_capacity,
    step_compute,
    step_groups,
    step_load,
    table_cycles,
    tile_beats,
    write_units,
)


def _passes(ly: LayerShape, d: DesignPoint, opts: EngineOptions) -> list[list[tuple[int, int]]]:
    """The output-channel passes in order, each as the (4-bit, 8-bit) filters of its
    sub-passes: one, or an all-8-bit layer's steps of ``split8_capacity`` filters."""
    P, M4, M8 = (int(np.asarray(x).ravel()[0]) for x in m_passes(ly, d.Tm4, d.Tm8, opts))
    if ly.kind in ("maxpool", "gap"):
        return [[(min(d.Tm, ly.M - i * d.Tm), 0)] for i in range(P)]
    if ly.all8:
        cap = max(int(np.asarray(split8_capacity(d.Tm4, d.Tm8, opts))), 1)
        return [[(0, min(cap, tm - s)) for s in range(0, tm, cap)]
                for t0 in range(0, ly.M, d.Tm) for tm in [min(d.Tm, ly.M - t0)]]
    out = []
    r4, r8 = M4, M8
    for _ in range(P):
        a, b = min(d.Tm4, r4), min(d.Tm8, r8)
        out.append([(a, b)])
        r4, r8 = r4 - a, r8 - b
    return out


def simulate_layer(
    ly: LayerShape, d: DesignPoint, board: Board, opts: EngineOptions | None = None,
    geo: dict[str, Any] | None = None,
) -> int:
    """Cycles of one engine layer (already mapped by ``engine_layers``) by walking its tiles;
    ``geo`` is the network's buffer geometry (default: the layer's own)."""
    opts = opts or EngineOptions()
    D = design_arrays(d, board)
    geo = geo if geo is not None else buffer_geometry([ly], D, opts)
    axi, ports, banks = board.axi_width_bits, d.axi_ports(board), d.store_bank_count(board)
    ddr = ddr_bits_per_cycle(board, d.clock_mhz)
    passes = _passes(ly, d, opts)
    dw_px = int(dw_pixels(d.dsp4))
    seq = 0 if opts.axi_outstanding else AXI_LATENCY
    e_in, e_skip, indexed = (float(np.asarray(x).ravel()[0])
                             for x in layer_gathers(ly, d.Tm, d.Tm8, d.G))
    # the tile rows and chunks per step the layer descriptor carries (chosen by the model)
    chosen = layer_cycles_vec(ly, D, axi, ddr, opts, geo, exact=True)
    tr_max = int(np.asarray(chosen["rows"]).ravel()[0])
    rows = [min(tr_max, ly.R - r) for r in range(0, ly.R, tr_max)]
    cols = [min(d.Tc, ly.C - c) for c in range(0, ly.C, d.Tc)]
    if ly.is_channelwise:
        nsteps = None
    else:
        step = d.Tn * int(np.asarray(chosen["chunks"]).ravel()[0])
        nsteps = [min(step, ly.N - n) for n in range(0, ly.N, step)] * ly.planes

    def sc(x: Any) -> int:
        return int(np.asarray(x).ravel()[0])

    cache: dict[tuple, Any] = {}

    def cost(kind: str, *key: Any) -> Any:
        k = (kind, *key)
        if k not in cache:
            if kind == "c":
                tr, tc, tn = key
                cache[k] = sc(step_compute(
                    ly, tr, tc, tn, d.Tn, dw_px, opts.dw_taps, opts.pipe_rewind
                ))
            elif kind == "k":  # a residual operand alone
                t, _ = step_load(ly, 1, 1, 0, 0, d.G, axi, ports, ddr, key[0],
                                 tile=(0, 0), banks=banks)
                cache[k] = sc(t)
            elif kind == "l":
                tr, tc, tn, wrow, extra, with_input, edge, n0 = key
                groups = e_in + int(step_groups(n0, tn, d.G)) - -(-tn // d.G)
                tile = tile_beats(ly, tr, tc, tn, wrow, d.G, axi, edge, groups)
                t, bits = step_load(ly, tr, tc, tn, wrow, d.G, axi, ports, ddr, extra, with_input,
                                    tile=tile, banks=banks)
                t_side = t  # the reads on the residual operand's side alone (DDR or the
                if ly.residual:  # store), which only a layer with one reads
                    t_side, _ = step_load(ly, tr, tc, tn, wrow, d.G, axi, ports, ddr, extra,
                                          with_input, tile=tile, banks=banks,
                                          part="chip" if ly.skip_chip else "ddr")
                cache[k] = (sc(t), float(np.asarray(bits).ravel()[0]), sc(t_side))
            else:
                tr, tc, tm, row_end = key
                t, bits, skip = group_write(ly, tr, tc, tm, d.G, d.post, axi, ports, ddr,
                                            skip_extra=e_skip, row_end=row_end, banks=banks)
                w = sc(t) + seq + group_drain(opts)
                cache[k] = (w, float(np.asarray(bits).ravel()[0]), sc(skip))
        return cache[k]

    # input_reuse: one step per group over all input channels keeps the input for the tile
    reuse = (opts.input_reuse and ly.kind in ("conv", "fc") and ly.raw is None
             and nsteps is not None and len(nsteps) == 1)
    start = layer_launch(opts) + sc(table_cycles(ly, axi, ports, ddr, indexed))
    # a band-fused layer runs its row bands as separate descriptors, each walked afresh
    runs = [(lo // tr_max, -(-hi // tr_max)) for lo, hi in ly.bands] or [(0, len(rows))]
    return sum(_walk(_steps(ly, d, rows[a:b], a, cols, tr_max, passes, nsteps, reuse, cost,
                            axi), seq, seq + group_drain(opts), ddr) + start for a, b in runs)


def _steps(ly: LayerShape, d: DesignPoint, rows: list[int], row0: int, cols: list[int],
           tr_max: int, passes: list[list[tuple[int, int]]], nsteps: list[int] | None,
           reuse: bool,
           cost: Any, axi: int) -> tuple[list[tuple[int, int, int, float, int]],
                                         list[tuple[int, float, int, int, int]]]:
    """The steps (load, load with a residual operand, compute, bits, the load's reads on the
    operand's side alone) and groups (write, bits, first step, write units, residual load)
    of tile rows ``rows`` (the first of them tile row ``row0`` of the map), in the kernel's
    order."""
    steps: list[tuple[int, int, int, float, int]] = []
    groups: list[tuple[int, float, int, int, int]] = []  # (write, bits, first step, units, skip)
    for i, tr in enumerate(rows, row0):
        for j, tc in enumerate(cols):
            # the rows and row-burst beats this tile reads, at its own position in the map
            edge = (int(rows_read(ly, i * tr_max * ly.stride - ly.pad, tr)),
                    int(span_beats(j * d.Tc * ly.stride - ly.pad, (tc - 1) * ly.stride + ly.K,
                                    ly.W, max(1, axi // (ACT_BITS * d.G)))))
            pi = 0  # sub-passes so far in this tile
            for subs in passes:  # a pass writes its filters once, after its last sub-pass
                pm = sum(a + b for a, b in subs)
                w, wbits, skip = cost("w", tr, tc, pm, j == len(cols) - 1)
                # the kernel reads a residual operand beside the group's first compute, an
                # on-chip im2col's raw tile with each sub-pass's first step
                sk = cost("k", skip) if ly.residual else 0
                groups.append((w, wbits, len(steps), int(write_units(ly, tr, pm, d.G)), sk))
                for a, b in subs:
                    tm = a + b
                    wrow = a * W4_BITS + b * W8_BITS
                    ns = [tm] if nsteps is None else nsteps
                    n0 = 0  # first input channel of the step within its plane
                    for k, tn in enumerate(ns):
                        fresh = not (reuse and pi > 0)
                        n0 = 0 if nsteps is None or n0 >= ly.N else n0
                        # the first step's bits hold the prefetch; a residual operand's time
                        # moves to the load beside its group's first compute (``lts``)
                        lt, lbits, side = cost("l", tr, tc, tn, wrow, skip if k == 0 else 0,
                                              fresh, edge, n0)
                        lts = lt
                        if ly.residual:  # lt without the residual operand, lts with it: the
                            # call above gave one of the two
                            alt, _, alt_side = cost("l", tr, tc, tn, wrow, 0 if k == 0 else skip,
                                                fresh, edge, n0)
                            lt, lts, side = (alt, lt, alt_side) if k == 0 else (lt, alt, side)
                        n0 += tn
                        steps.append((lt, lts, cost("c", tr, tc, tn), lbits, side))
                    pi += 1
    return steps, groups


def _walk(sg: tuple[list[tuple[int, int, int, float, int]], list[tuple[int, float, int, int, int]]],
          seq: int, lat: int, ddr: float) -> int:
    """Cycles of a step list run in the kernel's lock-step ping-pong order (the module's
    rule, ``performance.lockstep_walk``), bounded below by its DDR traffic."""
    steps, groups = sg
    bounds = [g[2] for g in groups] + [len(steps)]
    passes = [([(lt, lts, ct, sd) for lt, lts, ct, _, sd in steps[a:b]], w, units, sk)
              for (w, _, _, units, sk), a, b in zip(groups, bounds, bounds[1:], strict=False)]
    total = lockstep_walk(passes, seq, lat)
    # DDR serves reads and writes together: a run cannot beat its total traffic
    bits = sum(st[3] for st in steps) + sum(gr[1] for gr in groups)
    return int(math.ceil(max(total, math.ceil(bits / ddr))))


def simulate_network(
    layers: list[LayerShape], d: DesignPoint, board: Board, opts: EngineOptions | None = None
) -> list[tuple[str, int]]:
    """(name, simulated cycles) of every engine layer of a network."""
    opts = opts or EngineOptions()
    geo = buffer_geometry(layers, design_arrays(d, board), opts)
    run = band_runs(engine_layers(layers, opts, d.store_layout(board), d.band_tr), d.Tr)
    return [(ly.name, simulate_layer(ly, d, board, opts, geo)) for ly in run]
