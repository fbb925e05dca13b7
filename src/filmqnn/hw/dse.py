"""Design-space exploration: the fastest design point of a model on a board within limits.

The search enumerates a grid of tilings (Tm, Tn, Tr, Tc), packing factors G and
post-processing lanes with numpy arrays. For each tiling the DSP/LUT split has a closed form:
modelled cycles do not depend on where a MAC sits (except that depthwise rows on packed PE4
DSPs run 1 pixel per cycle; keeping PE4 off the DSPs gave no gain for MobileNet-V2), so
the split only has to fit, and the split using least LUTs fills the DSP budget with the
precision that saves most LUTs per DSP first (the paper's Eqs. 5-10 boundary solution, found
here rather than assumed). Designs over any limit are dropped; the rest are ranked by
modelled FPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from filmqnn.hw.design import (
    PIXELS,
    DesignPoint,
    EngineOptions,
    design_arrays,
    engine_layers,
    kernel_only,
    kernel_takes,
    ring_rows,
)
from filmqnn.hw.devices import Board
from filmqnn.hw.fps_range import fps_range
from filmqnn.hw.layers import LayerShape
from filmqnn.hw.performance import (
    ddr_bits_per_cycle,
    host_input_bits,
    network_bound_vec,
    network_cycles_vec,
    network_performance,
    rings_change_plan,
)
from filmqnn.hw.residency import plan, store_bram18k
from filmqnn.hw.resources import (
    POST_DSP,
    Resources,
    estimate_resources,
    feature_store,
    mac_costs,
    resources_vec,
)
from filmqnn.tile_rule import tile_high_filters

WEIGHT_MODES = ("mixed", "w4", "w8")
DEFAULT_LIMITS = {"lut": 0.85, "ff": 1.0, "dsp": 1.0, "bram18k": 0.90}

TM_GRID = (8, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 256, 320, 384, 512)
TN_GRID = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
TR_GRID = (7, 8, 14, 16, 28)
TC_GRID = (7, 14, 16, 28, 56, 112)
KERNEL_TC_GRID = (12, 24, 48)  # multiples of 3 and 6 words per beat
G_GRID = (4, 6, 8, 12)
POST_FRACTIONS = (0.25, 0.5, 1.0, 1.5, 2.0)  # post-processing lanes per output row (Tm)
BUF_GRID = (1, 2, 4, 8)  # input / weight bank depth over one step's need
ACC_LUTRAM_GRID = (False, True)  # output accumulators on BRAM18Ks or on LUTRAM
RAW_LUTRAM_GRID = (False, True)  # the on-chip im2col's raw tile banks likewise
STORE_BANKS_GRID = (1, 2)  # feature-map store banks per AXI port
#: Feature-map store sizes (BRAM18K): a design gets the largest that fits beside it
STORE_LEVELS = (0, *range(8, 128, 8), 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)


class InfeasibleError(ValueError):
    """No design point of the grid fits the board under the limits."""


@dataclass
class DseResult:
    """Best design point, its modelled performance / resources, the Pareto front, and stats."""

    best: DesignPoint
    performance: dict[str, Any]
    resources: Resources
    limits: dict[str, int]
    pareto: list[dict[str, Any]]
    evaluated: int
    feasible: int
    mode: str
    ratio: float
    options: EngineOptions
    #: FPS no fitting design of the grid can exceed: the clock over the smallest lower bound
    #: on cycles (``performance.network_bound_vec``: per layer the larger of its compute and
    #: its fewest DDR bits at the sustained bandwidth), over the designs with the requested
    #: options (not the host-unrolled variants ``choose_im2col`` adds to the fastest)
    fps_ceiling: float = math.inf
    notes: list[str] = field(default_factory=list)
    #: the best design's FPS under the nominal and the pessimistic assumptions
    #: (``hw.fps_range``)
    fps_range: dict[str, Any] = field(default_factory=dict)


def _tm8(mode: str, ratio: float, Tm: np.ndarray) -> np.ndarray:
    if mode == "w8":
        return Tm.copy()
    if mode == "w4":
        return np.zeros_like(Tm)
    out = np.unique(Tm)  # few distinct Tm: the rule is applied once each
    return np.array([tile_high_filters(int(t), ratio) for t in out])[np.searchsorted(out, Tm)]


def _grid(mode: str, ratio: float, axi_bits: int, kernel: bool = False
          ) -> dict[str, np.ndarray]:
    """The candidate designs; ``kernel``: only those the generated kernel takes (with the
    column tiles that are whole beats for G = 4 and 8 added)."""
    Gs = [g for g in G_GRID if 5 * g <= axi_bits]
    tcs = sorted(set(TC_GRID) | set(KERNEL_TC_GRID)) if kernel else TC_GRID
    Tm, Tn, Tr, Tc, G, pf, buf, acc, raw = (
        a.ravel() for a in np.meshgrid(TM_GRID, TN_GRID, TR_GRID, tcs, Gs, POST_FRACTIONS,
                                       BUF_GRID, ACC_LUTRAM_GRID, RAW_LUTRAM_GRID,
                                       indexing="ij")
    )
    keep = Tc >= Tr  # rows x columns: wide tiles are at least as good for bursts
    if kernel:
        keep &= kernel_takes(Tm, _tm8(mode, ratio, Tm), Tc, G, axi_bits)
    Tm, Tn, Tr, Tc, G, pf, buf, acc, raw = (
        a[keep] for a in (Tm, Tn, Tr, Tc, G, pf, buf, acc, raw))
    post = np.maximum(G, np.round(pf * Tm)).astype(np.int64)
    Tm8 = _tm8(mode, ratio, Tm)
    return {"Tm4": Tm - Tm8, "Tm8": Tm8, "Tn": Tn, "Tr": Tr, "Tc": Tc, "G": G, "post": post,
            "buf": buf, "acc_lutram": acc, "raw_lutram": raw,
            "store_banks": np.full(len(Tm), min(STORE_BANKS_GRID))}


def _split(D: dict[str, np.ndarray], board: Board, limits: dict[str, float], costs: Any) -> None:
    """Fill ``D`` with the least-LUT DSP split (dsp4, dsp8 PE positions) under the DSP limit."""
    budget = np.floor(limits["dsp"] * board.dsp) - D["post"] * POST_DSP
    budget = np.maximum(budget, 0)
    P4, P8 = D["Tm4"] * D["Tn"], D["Tm8"] * D["Tn"]
    g4, g8 = costs.ppd4 // PIXELS, costs.ppd8 // PIXELS  # PE positions per DSP
    save4 = costs.ppd4 * (costs.lut4 - costs.dlut4)  # LUTs saved per DSP
    save8 = costs.ppd8 * (costs.lut8 - costs.dlut8)

    def fill(P: np.ndarray, per: int, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_dsp = np.minimum(-(-P // per), b)
        x = np.minimum(P, n_dsp * per)
        return x, b - n_dsp

    def fill4(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # whole filter pairs per column first (pe4_dsp_map): n DSPs hold n // Tn pairs of
        # every column and n % Tn columns of the next pair
        Tm4, Tn = D["Tm4"], D["Tn"]
        n_dsp = np.minimum(-(-Tm4 // 2) * Tn, b)
        x = np.minimum(2 * (n_dsp // Tn) * Tn + n_dsp % Tn, P4)
        return x, b - n_dsp

    assert g4 == 2, "the kernel packs two PE4 positions (filters) per DSP"
    if save4 >= save8:
        d4, rest = fill4(budget)
        d8, _ = fill(P8, g8, rest)
    else:
        d8, rest = fill(P8, g8, budget)
        d4, _ = fill4(rest)
    # only use a DSP where it saves LUTs
    D["dsp4"] = np.where(save4 > 0, d4, 0).astype(np.int64)
    D["dsp8"] = np.where(save8 > 0, d8, 0).astype(np.int64)


#: Designs per resource evaluation of the grid: blocks whose temporaries stay in cache.
FIT_BLOCK = 1 << 18
RESOURCE_KINDS = ("lut", "ff", "dsp", "bram18k")


def _resource_totals(
    layers: list[LayerShape], D: dict[str, np.ndarray], board: Board, opts: EngineOptions,
    costs: Any,
) -> dict[str, np.ndarray]:
    """``resources_vec``'s totals (no per-part breakdown) of every design of ``D``, evaluated
    in blocks of ``FIT_BLOCK`` designs."""
    n = len(D["Tm4"])
    out = {k: np.zeros(n) for k in RESOURCE_KINDS}
    for i in range(0, n, FIT_BLOCK):
        r = resources_vec(layers, {k: v[i:i + FIT_BLOCK] for k, v in D.items()}, board, opts,
                          costs)
        for k in RESOURCE_KINDS:
            out[k][i:i + FIT_BLOCK] = r[k]
    return out


def _fit_ports(
    layers: list[LayerShape], D: dict[str, np.ndarray], board: Board, opts: EngineOptions,
    costs: Any, lim_abs: dict[str, int],
) -> tuple[dict[str, np.ndarray], dict[str, Any], int]:
    """The tilings that fit with some number of AXI ports (1 .. the board's), each with the
    most ports under which it fits (more ports never slow a tiling down), their resources, and
    the number of (tiling, ports) pairs searched. Resources grow with the ports, so a tiling
    that does not fit with one port is dropped at once."""
    n = len(D["Tm4"])

    def fitting(idx: np.ndarray, ports: int) -> np.ndarray:
        Dp = {k: v[idx] for k, v in D.items()}
        Dp["ports"] = np.full(len(idx), ports)
        r = _resource_totals(layers, Dp, board, opts, costs)
        ok = np.ones(len(idx), dtype=bool)
        for k in RESOURCE_KINDS:
            ok &= r[k] <= lim_abs[k]
        return idx[ok]

    live = fitting(np.arange(n), 1)
    chosen = np.zeros(n, dtype=np.int64)
    chosen[live] = 1
    for ports in range(board.axi_ports, 1, -1):
        todo = live[chosen[live] == 1]
        if not len(todo):
            break
        chosen[fitting(todo, ports)] = ports
    out = {k: v[live] for k, v in D.items()}
    out["ports"] = chosen[live]
    return out, _resource_totals(layers, out, board, opts, costs), n * board.axi_ports


def _add_store(
    layers: list[LayerShape], D: dict[str, np.ndarray], res: dict[str, Any], board: Board,
    opts: EngineOptions, costs: Any, lim_abs: dict[str, int],
) -> dict[str, Any]:
    """Give each design the largest feature-map store of ``STORE_LEVELS`` that still fits the
    limits beside it (none without ``fm_store``); returns the designs' new resources."""
    D["store"] = np.zeros(len(D["Tm4"]), dtype=np.int64)
    D["rings"] = np.ones(len(D["Tm4"]), dtype=bool)  # _exact_cycles decides per design
    if not opts.fm_store:
        return res
    for level in STORE_LEVELS[1:]:
        st = feature_store({"store": np.int64(level), "ports": D["ports"],
                            "store_banks": D["store_banks"]}, board.axi_width_bits,
                           opts.band_fusion)
        ok = np.ones(len(D["store"]), dtype=bool)
        for k in ("lut", "ff", "bram18k"):
            ok &= res[k] + st[k] <= lim_abs[k]
        D["store"] = np.where(ok, level, D["store"])
    return _resource_totals(layers, D, board, opts, costs)


def _smallest_store(layers: list[LayerShape], d: DesignPoint, board: Board,
                    opts: EngineOptions) -> DesignPoint:
    """The design with its feature-map store cut to the BRAM18Ks its plan uses: the plan of a
    store that still holds every placed beat range is the same, so the cycles are too."""
    if not opts.fm_store:
        return d
    placed = plan(tuple(engine_layers(layers, opts)), d.store_layout(board),
                  int(ring_rows(d.band_tr, opts)))
    used = max((q.offset + q.words for q in placed), default=0)
    return replace(d, store=store_bram18k(used, d.store_bank_count(board),
                                          board.axi_width_bits))


def _group_starts(rows: np.ndarray) -> np.ndarray:
    """Positions where a new group of equal rows starts in ``rows`` sorted by them."""
    return np.flatnonzero(np.r_[True, np.any(rows[1:] != rows[:-1], axis=1)])


def _most_lanes(D: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
    """Of the designs ``idx`` that differ only in post-processing lanes (and so in the DSP
    split), the one with most lanes: more lanes never slow a design down (only the write-back
    depends on them), so the others cannot be faster; ``_trim`` trims the winner."""
    cols = [D[k][idx] for k in ("Tm4", "Tm8", "Tn", "Tr", "Tc", "G", "buf", "ports", "store",
                                "store_banks")]
    key = np.stack(cols + [D["dsp4"][idx] > 0], axis=1)
    order = np.lexsort((-D["post"][idx], *key.T[::-1]))
    return idx[order[_group_starts(key[order])]]


def _with_store_banks(D: dict[str, np.ndarray], res: dict[str, Any]
                      ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The fitting designs once per feature-map store bank count: the banks change only the
    store's own resources, which ``_add_store`` adds, so the fit does not depend on them."""
    n, k = len(D["Tm4"]), len(STORE_BANKS_GRID)
    out = {key: np.tile(v, k) for key, v in D.items()}
    out["store_banks"] = np.repeat(np.array(STORE_BANKS_GRID), n)
    return out, {key: np.tile(v, k) for key, v in res.items()}


def _widest_store(D: dict[str, np.ndarray]) -> np.ndarray:
    """Of the designs of ``_with_store_banks`` (each tiling once per bank count, in
    ``STORE_BANKS_GRID`` order), those a variant with more banks and at least as large a store
    does not outrun (more banks only add read and write ports); a design without a store
    keeps the fewest banks."""
    k = len(STORE_BANKS_GRID)
    store = D["store"].reshape(k, -1)
    keep = np.ones_like(store, dtype=bool)
    wider = np.full(store.shape[1], -1)
    for j in range(k - 1, -1, -1):  # the largest store of the variants with more banks
        keep[j] = (store[j] > wider) | ((store[j] == 0) & (j == 0))
        wider = np.maximum(wider, store[j])
    keep &= (store > 0) | (np.arange(k) == 0)[:, None]
    return np.flatnonzero(keep.ravel())


def _best_memory(D: dict[str, np.ndarray], lut: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Of the designs ``idx`` that differ only in which buffers sit on LUTRAM, the one with the
    largest feature-map store (ties: fewest LUTs, then fewest buffers on LUTRAM): the cycles
    depend on the store only, and a larger one never slows a design down (``_add_store``)."""
    cols = [D[k][idx] for k in ("Tm4", "Tm8", "Tn", "Tr", "Tc", "G", "buf", "ports", "post",
                                "store_banks")]
    key = np.stack(cols + [D["dsp4"][idx] > 0], axis=1)
    order = np.lexsort((D["raw_lutram"][idx], D["acc_lutram"][idx], lut[idx],
                        -D["store"][idx], *key.T[::-1]))
    return idx[order[_group_starts(key[order])]]


def _exact_cycles(
    layers: list[LayerShape], D: dict[str, np.ndarray], board: Board, clock: float,
    opts: EngineOptions, keep: int, batch: int = 4096, more: int = 1024,
) -> tuple[np.ndarray, float]:
    """Modelled cycles of the designs that can rank among the ``keep`` fastest (inf for the
    rest) and the smallest lower bound of all designs. Designs are evaluated in order of a
    cheap lower bound (``network_bound_vec``), ``batch`` first and then, in one batch, every
    further design whose bound is within the ``keep``-th best exact cycles found (at least
    ``more``; a batch costs a fixed part plus one per design), until no bound left is, so the
    top ``keep`` (and the best) are exact. A design whose layer cannot run never wins."""
    n = len(D["Tm4"])
    ddr = ddr_bits_per_cycle(board, clock)
    bound = np.asarray(network_bound_vec(layers, D, opts, board.axi_width_bits, ddr),
                       dtype=np.float64) * np.ones(n)
    bound = np.where(bound < 1e15, bound, np.inf)
    order = np.argsort(bound, kind="stable")
    cycles = np.full(n, np.inf)
    start, size = 0, batch
    while start < n:
        sel = order[start:start + size]
        cycles[sel] = _cycles_with_rings(layers, D, sel, board, clock, opts)
        start += len(sel)
        done = np.sort(cycles[np.isfinite(cycles)])
        if len(done) >= keep:
            # every design whose bound is within the keep-th best must be evaluated: all of
            # them in the next batch (at least ``more``), as a batch has a fixed cost
            within = int(np.searchsorted(bound[order], done[keep - 1], side="right"))
            if within <= start:
                break
            size = max(more, within - start)
        else:
            size = more
    return cycles, float(bound.min())


def _host_im2col(
    layers: list[LayerShape], D: dict[str, np.ndarray], arr: dict[str, np.ndarray],
    cycles: np.ndarray, board: Board, clock: float, host: EngineOptions, costs: Any,
    lim_abs: dict[str, int], keep: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """The designs ``D`` (cycles and resources ``arr`` with the on-chip im2col) joined by the
    ``keep`` fastest of them with the first conv unrolled by the host instead: without the
    on-chip unit each keeps its tiling and ports and takes the largest store that now fits.
    ``D["place"]`` is 0 for the on-chip designs, 1 for the host ones."""
    top = np.argsort(cycles, kind="stable")[:keep]
    top = top[np.isfinite(cycles[top])]
    Dh = {k: v[top].copy() for k, v in D.items()}
    Dh["store"] = np.zeros(len(top), dtype=np.int64)
    Dh["raw_lutram"] = np.zeros(len(top), dtype=bool)  # no raw tile without the unit
    res = _add_store(layers, Dh, _resource_totals(layers, Dh, board, host, costs), board, host,
                     costs, lim_abs)
    c = np.full(len(top), np.inf)
    if len(top):
        c = _cycles_with_rings(layers, Dh, np.arange(len(top)), board, clock, host)
    joined = {k: np.concatenate([D[k], Dh[k]]) for k in D}
    joined["place"] = np.concatenate([np.zeros(len(cycles), np.int64),
                                      np.ones(len(top), np.int64)])
    arr = {k: np.concatenate([arr[k], res[k]]) for k in arr}
    return joined, arr, np.concatenate([cycles, c])


def _cycles_with_rings(layers: list[LayerShape], D: dict[str, np.ndarray], at: np.ndarray,
                       board: Board, clock: float, opts: EngineOptions) -> np.ndarray:
    """Exact cycles of designs ``at`` (inf where a layer cannot run), each with its store's
    band rings or without them, whichever is faster (``D["rings"]`` records the choice)."""
    Da = {k: v[at] for k, v in D.items()}
    c = network_cycles_vec(layers, Da, board, clock, opts)
    if opts.band_fusion and opts.fm_store:
        c_off = np.array(c, dtype=np.float64)  # the same where the rings change no plan
        differ = rings_change_plan(layers, Da, opts, board.axi_width_bits)
        if differ.any():
            c_off[differ] = network_cycles_vec(
                layers, {**{k: v[differ] for k, v in Da.items()},
                         "rings": np.zeros(int(differ.sum()), bool)}, board, clock, opts)
        D["rings"][at] = c <= c_off
        c = np.minimum(c, c_off)
    return np.where(np.isfinite(c) & (c < 1e15), c, np.inf)


def _trim(
    layers: list[LayerShape], d: DesignPoint, board: Board, clock: float, opts: EngineOptions,
    cycles: float, lim_frac: dict[str, float], costs: Any,
) -> DesignPoint:
    """The design with the fewest post-processing lanes of the grid that keeps its modelled
    cycles (the DSPs freed carry MACs, which frees LUTs), then with those lanes the fewest AXI
    ports that keep them (fewer ports only free resources): every lanes x ports variant in
    one evaluation."""
    lanes = np.unique(np.maximum(d.G, np.round(np.array(POST_FRACTIONS) * d.Tm)).astype(np.int64))
    lanes = np.append(lanes[lanes < d.post], d.post)
    ports = np.arange(int(d.ports or board.axi_ports), 0, -1)
    base = design_arrays(d, board)
    D = {k: np.repeat(v, len(lanes) * len(ports)) for k, v in base.items()}
    D["post"] = np.repeat(lanes, len(ports))
    D["ports"] = np.tile(ports, len(lanes))
    _split(D, board, lim_frac, costs)
    ok = (network_cycles_vec(layers, D, board, clock, opts) <= cycles).reshape(len(lanes), -1)
    li = int(np.argmax(ok[:, 0]))  # fewest lanes that keep the cycles (the last always does)
    keep = ok[li]
    pi = int(np.argmin(keep)) - 1 if not keep.all() else len(ports) - 1  # down to a failure
    i = li * len(ports) + pi
    return replace(d, post=int(lanes[li]), dsp4=int(D["dsp4"][i]), dsp8=int(D["dsp8"][i]),
                   ports=int(ports[pi]))


def _trim_lutram(
    layers: list[LayerShape], d: DesignPoint, board: Board, clock: float, opts: EngineOptions,
    cycles: float, costs: Any, lim_abs: dict[str, int],
) -> DesignPoint:
    """The design with as few buffers on LUTRAM as keep its modelled cycles, each variant with
    the largest store that fits beside it: a LUTRAM buffer only pays where its BRAMs let the
    store hold more."""
    flags = sorted({(a, r) for a in (False, d.acc_lutram) for r in (False, d.raw_lutram)},
                   key=sum)[:-1]  # the winner's own flags last: it keeps its cycles
    for acc, raw in flags:
        D = design_arrays(replace(d, acc_lutram=acc, raw_lutram=raw, store=0), board)
        res = resources_vec(layers, D, board, opts, costs)
        if any(float(np.ravel(res[k])[0]) > lim_abs[k] for k in ("lut", "ff", "dsp", "bram18k")):
            continue
        _add_store(layers, D, res, board, opts, costs, lim_abs)
        D["rings"] = np.array([d.rings])
        if float(np.ravel(network_cycles_vec(layers, D, board, clock, opts))[0]) <= cycles:
            return replace(d, acc_lutram=acc, raw_lutram=raw, store=int(D["store"][0]))
    return d


def _pareto(points: np.ndarray) -> np.ndarray:
    """Indices of non-dominated rows of [fps, lut, dsp, bram] (max fps, min the rest)."""
    order = np.argsort(-points[:, 0], kind="stable")
    keep: list[int] = []
    for i in order:
        p = points[i]
        dominated = False
        for j in keep:
            q = points[j]
            if q[0] >= p[0] and np.all(q[1:] <= p[1:]) and (q[0] > p[0] or np.any(q[1:] < p[1:])):
                dominated = True
                break
        if not dominated:
            keep.append(int(i))
    return np.array(keep, dtype=np.int64)


def explore(
    layers: list[LayerShape],
    board: Board,
    clock_mhz: float | None = None,
    ratio: float = 0.05,
    mode: str = "mixed",
    limits: dict[str, float] | None = None,
    opts: EngineOptions | None = None,
    pareto_candidates: int = 400,
    choose_im2col: bool = True,
) -> DseResult:
    """Search the grid for the highest modelled FPS of ``layers`` on ``board`` within limits.

    With ``im2col_onchip`` on and ``choose_im2col``, the first conv's im2col placement is
    chosen too: each of the ``pareto_candidates`` fastest designs is also evaluated with the
    host-unrolled input (without the on-chip unit, whose BRAMs go to its feature-map store),
    and the result's ``options`` say which placement won."""
    if mode not in WEIGHT_MODES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_MODES)}, got {mode!r}")
    if mode == "mixed" and not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must lie in (0, 1) for mixed weights, got {ratio}")
    clock = float(clock_mhz or board.default_clock_mhz)
    if clock <= 0:
        raise ValueError("clock must be positive")
    opts = opts or EngineOptions()
    lim_frac = dict(DEFAULT_LIMITS)
    for k, v in (limits or {}).items():
        if k not in lim_frac:
            raise ValueError(f"unknown limit {k!r}; valid: {', '.join(lim_frac)}")
        if not 0 < v <= 1:
            raise ValueError(f"limit {k} must be a fraction in (0, 1], got {v}")
        lim_frac[k] = float(v)
    lim_abs = {k: int(math.floor(lim_frac[k] * getattr(board, k))) for k in lim_frac}
    signed = any(ly.signed_in for ly in layers if not ly.first)
    costs = mac_costs(board, signed)

    D0 = _grid(mode, ratio, board.axi_width_bits, kernel_only(opts))
    _split(D0, board, lim_frac, costs)
    D, res, evaluated = _fit_ports(layers, D0, board, opts, costs, lim_abs)
    feasible = len(D["Tm4"])  # every design _fit_ports returns fits
    if not feasible:
        raise InfeasibleError(
            f"no design point fits {board.name} within limits "
            + ", ".join(f"{k} <= {int(v * 100)}%" for k, v in lim_frac.items())
        )
    D, res = _with_store_banks(D, res)
    feasible, evaluated = len(D["Tm4"]), evaluated * len(STORE_BANKS_GRID)
    res = _add_store(layers, D, res, board, opts, costs, lim_abs)
    idx = _most_lanes(D, _best_memory(D, res["lut"], _widest_store(D)))
    Df = {k: v[idx] for k, v in D.items()}
    cycles, least_bound = _exact_cycles(layers, Df, board, clock, opts, pareto_candidates)
    if not np.isfinite(cycles).any():
        raise InfeasibleError(f"no design point can run every layer of the model on {board.name}")
    arr = {k: res[k][idx] for k in ("lut", "dsp", "bram18k")}
    placements = [opts]
    if (choose_im2col and opts.first_im2col and opts.im2col_onchip
            and any(ly.first and ly.kind == "conv" and ly.K > 1 for ly in layers)):
        placements.append(replace(opts, im2col_onchip=False))
        Df, arr, cycles = _host_im2col(layers, Df, arr, cycles, board, clock, placements[1],
                                       costs, lim_abs, pareto_candidates)
    place = Df.get("place", np.zeros(len(cycles), dtype=np.int64))
    fps = clock * 1e6 / cycles
    lut = arr["lut"]
    # the placements compared by frame time: the engine's cycles and the host's input write
    host = np.array([host_input_bits(layers, p) for p in placements]) / ddr_bits_per_cycle(
        board, clock)
    score = np.lexsort((lut, -np.round(clock * 1e6 / (cycles + host[place]), 6)))
    b = int(score[0])
    opts = placements[int(place[b])]
    best = DesignPoint(
        Tm=int(Df["Tm4"][b] + Df["Tm8"][b]), Tm8=int(Df["Tm8"][b]), Tn=int(Df["Tn"][b]),
        Tr=int(Df["Tr"][b]), Tc=int(Df["Tc"][b]), G=int(Df["G"][b]),
        dsp4=int(Df["dsp4"][b]), dsp8=int(Df["dsp8"][b]), post=int(Df["post"][b]),
        clock_mhz=clock, ports=int(Df["ports"][b]), buf=int(Df["buf"][b]),
        store=int(Df["store"][b]), rings=bool(Df["rings"][b]),
        store_banks=int(Df["store_banks"][b]), acc_lutram=bool(Df["acc_lutram"][b]),
        raw_lutram=bool(Df["raw_lutram"][b]),
    )
    best = _trim(layers, best, board, clock, opts, float(cycles[b]), lim_frac, costs)
    best = _trim_lutram(layers, best, board, clock, opts, float(cycles[b]), costs, lim_abs)
    best = _smallest_store(layers, best, board, opts)
    perf = network_performance(layers, best, board, opts)
    rsc = estimate_resources(layers, best, board, opts)

    top = score[: max(1, pareto_candidates)]
    pts = np.stack([
        fps[top],
        lut[top] / board.lut,
        arr["dsp"][top] / board.dsp,
        arr["bram18k"][top] / board.bram18k,
    ], axis=1)
    front = top[_pareto(pts)]
    pareto = [
        {
            "fps": float(fps[i]),
            "lut": int(np.ceil(lut[i])),
            "dsp": int(arr["dsp"][i]),
            "bram18k": int(arr["bram18k"][i]),
            "Tm": int(Df["Tm4"][i] + Df["Tm8"][i]), "Tm8": int(Df["Tm8"][i]),
            "Tn": int(Df["Tn"][i]), "Tr": int(Df["Tr"][i]), "Tc": int(Df["Tc"][i]),
            "G": int(Df["G"][i]), "post": int(Df["post"][i]), "ports": int(Df["ports"][i]),
            "buf": int(Df["buf"][i]), "store": int(Df["store"][i]),
            "rings": bool(Df["rings"][i]), "store_banks": int(Df["store_banks"][i]),
            "acc_lutram": bool(Df["acc_lutram"][i]),
            "raw_lutram": bool(Df["raw_lutram"][i]),
            "im2col_onchip": placements[int(place[i])].im2col_onchip,
        }
        for i in front
    ]
    pareto.sort(key=lambda p: p["fps"])
    four_first = costs.ppd4 * (costs.lut4 - costs.dlut4) >= costs.ppd8 * (costs.lut8 - costs.dlut8)
    notes = [
        f"DSP split: {'4-bit' if four_first else '8-bit'} MACs take DSPs first "
        "(more LUTs saved per DSP)",
    ]
    if not opts.im2col_onchip and len(placements) > 1:
        notes.append("first conv unrolled by the host (im2col_onchip off): faster here than "
                     "with the on-chip im2col, the host's write of the unrolled input counted")
    return DseResult(
        best, perf, rsc, lim_abs, pareto, evaluated, feasible, mode, ratio, opts,
        clock * 1e6 / least_bound, notes, fps_range(layers, best, board, opts, rsc.dsp),
    )
