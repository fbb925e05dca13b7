"""What-if runs behind docs/hardware.md's reasoning about the missed FPS targets (modelled).

Run: .venv/bin/python bench/hw_what_if.py
     {modes,leftout,floors,dsp,accmem,reuse,fusion,freestore,densedw,shortrings,allin}
  modes   mixed FPS with the default engine, then with each newer engine mode switched off
  leftout the implemented engine (explore's default), then with each mode the kernel lacks
          added, then with both: first/last 8-bit and every layer mixed
  floors  best FPS, the ceiling over all fitting designs, and the best design's floors:
          array-busy cycles alone, fewest DDR bits alone with its feature-map store (per
          network, not per layer)
  dsp     1.5x the board's DSPs (an upper bound on the 6-product conv3x2 packing)
  accmem  every board's FPS with the accumulators' and the im2col raw tile's memory chosen by
          explore (BRAM or LUTRAM) and with BRAM only, and which the winner put on LUTRAM
          (every layer mixed)
  reuse   1x1 input reuse with unlimited buffers, no BRAM charged (not a real design)
  fusion  ResNet-50 bottleneck-internal tensors free of DDR traffic (not a real design)
  freestore  an unlimited feature-map store that costs nothing: every tensor but the network
          input and output on chip, an upper bound on any fusion (not a real design)
  densedw  depthwise steps keep every column busy at 2 pixels per cycle, no weight reload
          (an upper bound on a denser depthwise mapping; not a real design)
  shortrings  band rings one producer band high whatever Tr, switch cost unchanged (an
          upper bound on choosing a shorter band per fused edge; not a real design)
  banking the implemented engine with each tile transfer at the rate the buffers' banks, as
          the resource model counts them, serve (a bank takes one word a cycle), in the
          kernel's transfer order (DDR reads in rounds across channel groups, the store's
          runs and the write-back along a row), with the store's reads or the write-back
          or both also in rounds across channel groups: an estimate for a
          synthesis that serialises the conflicts (every layer mixed; the kernel's C-sim
          bank checker measures the same conflicts, tests/hls/test_transfer_banks.py)
  allin   levers at once, each idealised (an upper bound on them together; not a real
          design); --levers picks them (default all): store (freestore), array (no weight
          reload in any step, so a free streaming FC, and densedw), reuse (reuse, every
          layer), first8x8 (the 8-bit first conv in one pass: a free true 8x8 DSP mode);
          --models, --boards pick the runs
ResNet-18 / ResNet-50 / MobileNet-V2 at 224x224, r = 5 %, ZCU102 @ 150 MHz and PYNQ-Z2 @
100 MHz, default limits. The last eight patch the model for the run only.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from filmqnn.formats import ACT_BITS
from filmqnn.hw import dse, performance, residency
from filmqnn.hw.buffers import bank_phases
from filmqnn.hw.design import (
    IMPLEMENTED,
    KERNEL_MODES,
    PIXELS,
    WEIGHT_RELOAD,
    EngineOptions,
    design_arrays,
    engine_layers,
)
from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore
from filmqnn.hw.layers import LayerShape, model_layers

BOARDS = (("zcu102", 150.0), ("pynq-z2", 100.0))
MODELS = ("resnet18", "resnet50", "mobilenet_v2")
MODES = ("im2col_onchip", "pipe_rewind", "fuse_stem_pool", "multi_chunk", "input_reuse",
         "fm_store", "band_fusion")


def _fps(model: str, board: str, clock: float, opts: EngineOptions | None = None) -> float:
    return explore(model_layers(model), load_board(board), clock, opts=opts).performance["fps"]


def modes() -> None:
    print("| board | model | default | " + " | ".join(f"no {m}" for m in MODES) + " |")
    print("|---|---|---:|" + "---:|" * len(MODES))
    for board, clock in BOARDS:
        for model in MODELS:
            cells = [_fps(model, board, clock)] + [
                _fps(model, board, clock, EngineOptions(**{m: False})) for m in MODES
            ]
            print(f"| {board} | {model} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")


def leftout() -> None:
    left = sorted(k for k in EngineOptions().to_dict() if k not in KERNEL_MODES)
    cols = ["implemented", *(f"+ {m}" for m in left), "+ all"]
    print("| board | model | quantization | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---:|" * len(cols))
    for board, clock in BOARDS:
        for model in MODELS:
            for first_last in (True, False):
                L = model_layers(model, first_last_8bit=first_last)
                sets = [IMPLEMENTED, *(dataclasses.replace(IMPLEMENTED, **{m: True})
                                       for m in left), EngineOptions()]
                cells = [explore(L, load_board(board), clock, opts=o).performance["fps"]
                         for o in sets]
                quant = "first/last 8-bit" if first_last else "every layer mixed"
                print(f"| {board} | {model} | {quant} | "
                      + " | ".join(f"{c:.1f}" for c in cells) + " |")


def floors() -> None:
    print("| board | model | FPS | ceiling | array-busy floor | DDR floor | DDR MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for board, clock in BOARDS:
        b = load_board(board)
        for model in MODELS:
            L = model_layers(model)
            r = explore(L, b, clock)
            opts = r.options  # with the im2col placement explore chose
            D = design_arrays(r.best, b)
            busy = sum(float(np.ravel(performance.compute_bound_vec(ly, D, opts))[0])
                       for ly in engine_layers(L, opts))
            bits = sum(float(np.ravel(performance.traffic_bound_bits(ly, D, opts))[0])
                       for ly in engine_layers(L, opts, r.best.store_layout(b), r.best.band_tr))
            ddr = bits / performance.ddr_bits_per_cycle(b, clock)
            print(f"| {board} | {model} | {r.performance['fps']:.1f} | {r.fps_ceiling:.1f} | "
                  f"{clock * 1e6 / busy:.1f} | {clock * 1e6 / ddr:.1f} | {bits / 8e6:.1f} |")


def dsp() -> None:
    for board, clock in BOARDS:
        b = load_board(board)
        more = dataclasses.replace(b, dsp=int(b.dsp * 1.5))
        for model in ("resnet18", "resnet50"):
            L = model_layers(model)
            print(f"{board} {model}: {explore(L, b, clock).performance['fps']:.1f} -> "
                  f"{explore(L, more, clock).performance['fps']:.1f} FPS with 1.5x DSPs")


def accmem() -> None:
    print("| board | model | BRAM or LUTRAM (explore) | BRAM only | winner's LUTRAM buffers |")
    print("|---|---|---:|---:|---|")
    for board in ("pynq-z2", "ultra96-v2", "kv260", "zc706", "zcu104", "zcu102"):
        b = load_board(board)
        for model in MODELS:
            L = model_layers(model, first_last_8bit=False)
            best = explore(L, b, opts=IMPLEMENTED)
            grids = dse.ACC_LUTRAM_GRID, dse.RAW_LUTRAM_GRID
            dse.ACC_LUTRAM_GRID = dse.RAW_LUTRAM_GRID = (False,)
            try:
                bram = explore(L, b, opts=IMPLEMENTED)
            finally:
                dse.ACC_LUTRAM_GRID, dse.RAW_LUTRAM_GRID = grids
            d = best.best
            on = [n for n, f in (("accumulators", d.acc_lutram), ("im2col raw tile",
                                                                  d.raw_lutram)) if f]
            print(f"| {board} @ {b.default_clock_mhz:g} | {model} | "
                  f"{best.performance['fps']:.1f} | {bram.performance['fps']:.1f} | "
                  f"{', '.join(on) or 'none'} |")


def _patched(name: str, make: Callable[[Any], Any]) -> Callable[[Callable[[], None]], None]:
    """Run a function with ``performance.<name>`` replaced by ``make(original)``."""

    def run(fn: Callable[[], None]) -> None:
        original = getattr(performance, name)
        setattr(performance, name, make(original))
        try:
            fn()
        finally:
            setattr(performance, name, original)

    return run


def _compare(models: tuple[str, ...], patch: Callable[[Callable[[], None]], None],
             what: str, boards: tuple[str, ...] = ()) -> None:
    for board, clock in BOARDS:
        if boards and board not in boards:
            continue
        for model in models:
            before = _fps(model, board, clock)
            after: list[float] = []
            patch(lambda m=model, b=board, c=clock, out=after: out.append(_fps(m, b, c)))
            print(f"{board} {model}: {before:.1f} -> {after[0]:.1f} FPS with {what}")


def reuse() -> None:
    def unlimited(original: Callable[..., Any]) -> Callable[..., Any]:
        def cap(ly: LayerShape, D: dict[str, Any], geo: dict[str, Any], opts: EngineOptions):
            c = original(ly, D, geo, opts)
            if ly.K == 1 and ly.kind in ("conv", "fc") and ly.raw is None and opts.multi_chunk:
                return np.maximum(c, -(-ly.N // np.asarray(D["Tn"])))
            return c
        return cap

    _compare(("resnet50",), _patched("chunk_capacity", unlimited), "unlimited reuse buffers")


def _shape(ly: LayerShape) -> tuple:
    return (ly.kind, ly.N, ly.M, ly.H, ly.K, ly.stride, ly.residual)


def fusion() -> None:
    L = model_layers("resnet50")

    def block(ly: LayerShape, ends: tuple[str, ...]) -> bool:
        return ly.name.startswith("layer") and ly.name.endswith(ends)

    # the model drops layer names, so the fused layers are recognised by shape; a shape that
    # another layer shares (layer1's identity-add conv3 and layer1.0's downsample) stays unfused
    others = {_shape(ly) for ly in L if not block(ly, ("conv1", "conv2", "conv3"))}
    reads = {_shape(ly) for ly in L if block(ly, ("conv2", "conv3"))} - others
    writes = {_shape(ly) for ly in L if block(ly, ("conv1", "conv2"))} - others

    def free_reads(original: Callable[..., Any]) -> Callable[..., Any]:
        def load(ly: LayerShape, *a: Any, **k: Any) -> Any:
            if _shape(ly) in reads:
                k["with_input"] = False
            return original(ly, *a, **k)
        return load

    def free_writes(original: Callable[..., Any]) -> Callable[..., Any]:
        def write(ly: LayerShape, tr: Any, tc: Any, tm: Any, G: Any, post: Any, *a: Any) -> Any:
            t, bits, pre = original(ly, tr, tc, tm, G, post, *a)
            if _shape(ly) not in writes:
                return t, bits, pre
            requant = -(-np.ceil(tm).astype(np.int64) * np.asarray(tr) * np.asarray(tc) // post)
            return requant * np.ones_like(t), bits * 0, pre
        return write

    def both(fn: Callable[[], None]) -> None:
        _patched("step_load", free_reads)(lambda: _patched("group_write", free_writes)(fn))

    _compare(("resnet50",), both, "bottleneck-internal tensors on chip")


def _free_store(fn: Callable[[], None]) -> None:
    cost, levels = dse.feature_store, dse.STORE_LEVELS

    def free(D: dict[str, Any], axi: int, rings: bool = False) -> dict[str, Any]:
        return {k: 0 * np.asarray(v) for k, v in cost(D, axi, rings).items()}

    dse.feature_store, dse.STORE_LEVELS = free, (0, 1 << 20)
    try:
        fn()
    finally:
        dse.feature_store, dse.STORE_LEVELS = cost, levels


def freestore() -> None:
    _compare(("resnet50", "mobilenet_v2"), _free_store, "an unlimited free store")


def _busy(kinds: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """step_core with no weight reload in the steps of these layer kinds, every depthwise
    column busy at 2 pixels per cycle."""
    def patch(original: Callable[..., Any]) -> Callable[..., Any]:
        def core(ly: LayerShape, tr: Any, tc: Any, tn: Any, Tn: Any, *a: Any) -> Any:
            pix = np.asarray(tr) * -(-np.asarray(tc) // 2)
            if ly.kind not in kinds:
                return original(ly, tr, tc, tn, Tn, *a)
            if ly.kind == "dwconv":
                return -(-(ly.K * ly.K * pix) // np.asarray(Tn))
            return ly.K * ly.K * -(-np.asarray(tn) // np.asarray(Tn)) * pix
        return core
    return patch


def densedw() -> None:
    _compare(("mobilenet_v2",), _patched("step_core", _busy(("dwconv",))),
             "every depthwise column busy")


def shortrings() -> None:
    def run(fn: Callable[[], None]) -> None:
        original = residency.band_rows
        residency.band_rows = lambda p, c, rows: original(p, c, 1)
        residency.plan.cache_clear()
        residency.chip_flags_of.cache_clear()
        try:
            fn()
        finally:
            residency.band_rows = original
            residency.plan.cache_clear()
            residency.chip_flags_of.cache_clear()

    _compare(("mobilenet_v2",), run, "one-row band rings")


def _one_pass(original: Callable[..., Any]) -> Callable[..., Any]:
    """engine_layers with the 8-bit network input in one pass (a true 8x8 mode)."""
    def layers(*a: Any, **k: Any) -> list[LayerShape]:
        return [dataclasses.replace(ly, planes=1) for ly in original(*a, **k)]
    return layers


def _all_chunks(original: Callable[..., Any]) -> Callable[..., Any]:
    """chunk_capacity with every input channel of a layer in one step (free reuse buffers)."""
    def cap(ly: LayerShape, D: dict[str, Any], geo: dict[str, Any], opts: EngineOptions):
        return np.maximum(original(ly, D, geo, opts), -(-ly.N // np.asarray(D["Tn"])))
    return cap


def _wpb(G: Any, axi_bits: int) -> Any:
    """Activation words (G channels each) per AXI beat."""
    return np.maximum(1, axi_bits // (ACT_BITS * np.asarray(G)))


def _banked(rp: int, cp: int, store_rounds: bool, write_rounds: bool
            ) -> dict[str, Callable[..., Any]]:
    """step_load, group_write and _pass_group with every transfer at the rate its buffer's
    banks serve (``rp`` x ``cp`` input bank phases per channel group, a residual tile's and
    an accumulator's ``PIXELS`` column phases, a word a bank and cycle).

    A DDR round of a beat per port takes its rows row by row across the tile's channel groups,
    as the kernel does: of up to ``ports`` different groups, rows of one group only where the
    tile has fewer groups, in different row phases. In the kernel's order for the rest: a run
    of the store's beats puts ``banks * wpb`` consecutive columns of one row into ``cp``
    column banks (residual: ``PIXELS``); the write-back into the store reads a unit's
    consecutive columns, ``PIXELS`` a cycle, and to DDR each port's run of units, ``wpb``
    columns of another channel group each. In rounds across channel groups (the store's
    reads with ``store_rounds``, the write-back with ``write_rounds``): a trip moves one beat
    of each of up to ``ports`` (DDR) or ``banks`` (a store whose groups interleave beat by
    beat) different groups. Either way the weight banks, sized to reload a row's Tn weights
    in ``WEIGHT_RELOAD`` cycles, take a chunk's weights in as many cycles."""
    cdiv = performance._cdiv
    of_pass: list[Any] = [None, None]  # Tn and the filters of the pass being costed
    original_pass, original_write = performance._pass_group, performance.group_write

    def pass_group(c: Any, tr: Any, tc: Any, edge: Any, a: Any, b: Any, *r: Any) -> Any:
        of_pass[:] = [c.Tn, np.asarray(a) + np.asarray(b)]
        return original_pass(c, tr, tc, edge, a, b, *r)

    def load(ly: LayerShape, tr: Any, tc: Any, tn: Any, wbits: Any, G: Any, axi_bits: int,
             ports: int, ddr_bits: float, extra_beats: Any = 0, with_input: bool = True,
             chip: Any = None, tile: Any = None, banks: Any = None, part: str | None = None
             ) -> tuple[Any, Any]:
        b_in, b_w = tile or performance.tile_beats(ly, tr, tc, tn, wbits, G, axi_bits)
        if ly.raw is not None or not with_input:
            b_in = np.zeros_like(b_in)
        in_chip, _, skip_chip = chip or performance.chip_flags(ly, {})
        wpb = _wpb(G, axi_bits)
        banks = ports if banks is None else banks
        skip = np.where(ly.residual, extra_beats, 0)
        other = np.asarray(extra_beats) - skip  # the raw tile's prefetch
        in_ddr, in_st = np.where(in_chip, 0, b_in), np.where(in_chip, b_in, 0)
        sk_ddr, sk_st = np.where(skip_chip, 0, skip), np.where(skip_chip, skip, 0)
        b = b_in + b_w + np.asarray(extra_beats) - in_st - sk_st
        w_bank_bits = np.maximum(np.asarray(wbits) * np.asarray(of_pass[0]) / WEIGHT_RELOAD, 1)
        t_w = np.maximum(cdiv(b_w, ports), np.ceil(b_w * axi_bits / w_bank_bits))
        col = cdiv(wpb, PIXELS)  # trips a beat's columns take in a residual tile's banks
        n_in = cdiv(np.asarray(tn), G)
        n_out = cdiv(np.ceil(of_pass[1]).astype(np.int64), G)  # the residual tile's
        ii_in, ii_sk = cdiv(cdiv(ports, n_in), rp), cdiv(ports, n_out) * col
        if store_rounds:
            t_st = cdiv(in_st, np.minimum(banks, n_in * rp)) + cdiv(sk_st, np.minimum(
                banks, n_out)) * col
        else:  # a run of one group's beats
            t_st = cdiv(in_st, banks) * cdiv(banks * wpb, cp) + cdiv(sk_st, banks) * cdiv(
                banks * wpb, PIXELS)
        t_ddr = np.maximum(cdiv(in_ddr, ports) * ii_in + t_w + cdiv(other, ports)
                           + cdiv(sk_ddr, ports) * ii_sk, np.ceil(b * axi_bits / ddr_bits))
        t = {None: np.maximum(t_ddr, t_st), "ddr": t_ddr, "chip": t_st}[part]
        return np.asarray(t).astype(np.int64), b * axi_bits

    def write(ly: LayerShape, tr: Any, tc: Any, tm: Any, G: Any, post: Any, axi_bits: int,
              ports: Any, ddr_bits: float, chip: Any = None, skip_extra: Any = 0,
              row_end: Any = True, banks: Any = None) -> Any:
        t, bits, pre = original_write(ly, tr, tc, tm, G, post, axi_bits, ports, ddr_bits,
                                      chip, skip_extra, row_end, banks)
        if ly.pool is not None or ly.int32_out:
            return t, bits, pre
        wpb = _wpb(G, axi_bits)
        groups = cdiv(np.ceil(tm).astype(np.int64), G)
        b_out = groups * np.asarray(tr) * cdiv(tc, wpb)
        out_chip = np.asarray((chip or performance.chip_flags(ly, {}))[1])
        if write_rounds:
            lanes = np.where(out_chip, ports if banks is None else banks, ports)
            bound = cdiv(b_out, np.minimum(lanes, groups)) * cdiv(wpb, PIXELS)
        else:  # into the store a trip's beats are one unit's; to DDR each port's own run
            bound = np.where(out_chip, cdiv(b_out * wpb, PIXELS),
                             cdiv(b_out, ports) * cdiv(wpb, PIXELS))
        return np.maximum(t, bound), bits, pre

    return {"step_load": load, "group_write": write, "_pass_group": pass_group}


def _with_patches(fns: list[tuple[str, Callable[..., Any]]], fn: Callable[[], None]) -> None:
    """Run ``fn`` with each ``performance.<name>`` replaced by its function (``_patched``)."""
    if not fns:
        fn()
        return
    (name, new), rest = fns[0], fns[1:]
    _patched(name, lambda _original: new)(lambda: _with_patches(rest, fn))


def banking() -> None:
    variants = {"kernel's order": (False, False), "store in rounds": (True, False),
                "write-back in rounds": (False, True), "rounds across groups": (True, True)}
    print("| board | model | implemented | " + " | ".join(
        f"banks-bound, {name} | ratio" for name in variants) + " |")
    print("|---|---|---:|" + "---:|---:|" * len(variants))
    for board, clock in BOARDS:
        for model in MODELS:
            L = model_layers(model, first_last_8bit=False)
            before = explore(L, load_board(board), clock, opts=IMPLEMENTED).performance["fps"]
            cells = [f"{before:.1f}"]
            for flags in variants.values():
                out: list[float] = []
                _with_patches(list(_banked(*bank_phases(L, IMPLEMENTED), *flags).items()),
                              lambda o=out, m=L, b=board, c=clock: o.append(explore(
                                  m, load_board(b), c, opts=IMPLEMENTED).performance["fps"]))
                cells += [f"{out[0]:.1f}", f"{out[0] / before:.2f}"]
            print(f"| {board} | {model} | " + " | ".join(cells) + " |")


#: The idealised levers of ``allin``: each runs a function with the model patched.
LEVERS: dict[str, Callable[[Callable[[], None]], None]] = {
    "store": _free_store,
    "array": _patched("step_core", _busy(("dwconv", "conv", "fc"))),
    "reuse": _patched("chunk_capacity", _all_chunks),
    "first8x8": _patched("engine_layers", _one_pass),
}


def allin(levers: tuple[str, ...] = tuple(LEVERS), models: tuple[str, ...] = MODELS,
          boards: tuple[str, ...] = ()) -> None:
    def run(fn: Callable[[], None], i: int = 0) -> None:
        LEVERS[levers[i]](lambda: run(fn, i + 1)) if i < len(levers) else fn()

    _compare(models, run, "levers " + ", ".join(levers) + " (idealised)", boards)


def main() -> None:
    runs = {"modes": modes, "leftout": leftout, "floors": floors, "dsp": dsp, "accmem": accmem,
            "reuse": reuse, "banking": banking,
            "fusion": fusion, "freestore": freestore, "densedw": densedw, "shortrings": shortrings,
            "allin": allin}
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=sorted(runs))
    ap.add_argument("--levers", default=",".join(LEVERS), help="allin: which levers")
    ap.add_argument("--models", default=",".join(MODELS), help="allin: which models")
    ap.add_argument("--boards", default="", help="allin: which boards (default: both)")
    args = ap.parse_args()
    if args.what != "allin":
        runs[args.what]()
        return
    levers = tuple(args.levers.split(","))
    unknown = set(levers) - set(LEVERS)
    if unknown:
        ap.error(f"unknown lever(s) {', '.join(sorted(unknown))}; known: {', '.join(LEVERS)}")
    boards = tuple(b for b in args.boards.split(",") if b)
    allin(levers, tuple(args.models.split(",")), boards)


if __name__ == "__main__":
    main()
