"""The engine's view of an integer graph: one descriptor per engine layer, and what must fit.

`plan_network(graph, design)` maps every node of an artifact's graph onto the engine's layer
kinds (conv / fc as conv, depthwise, max pool, global average pool, add; flatten is free),
checks that the network fits the design (tiling of the artifact, formats, buffer sizes) and
returns the per-layer facts the DDR image writer and the config header need.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from filmqnn.formats import ACT_BITS
from filmqnn.hls.layout import Geometry
from filmqnn.hw.buffers import INDEX_BITS
from filmqnn.hw.design import (
    IMPLEMENTED,
    PIXELS,
    DesignPoint,
    EngineOptions,
    pool_tiling,
    raw_window,
)
from filmqnn.hw.residency import band_ring_rows, band_schedule, spans, store_layout
from filmqnn.lower.graph import IntGraph, Node, TensorInfo


class FitError(ValueError):
    """The network does not fit the design (or the engine): names the layer and the fix."""


@dataclass(frozen=True)
class EngineDesign(DesignPoint):
    """What the kernel is generated for: a design point with its board's facts resolved
    (``ports`` the AXI ports it uses, the AXI width, DSP kind, DDR bits per cycle)."""

    axi_bits: int = 64
    dsp: str = "dsp48e1"  # dsp48e1 | dsp48e2
    ddr_bits_per_cycle: float = 0.0
    board: str = ""
    opts: EngineOptions = IMPLEMENTED  # the engine modes this kernel runs with

    @property
    def geo(self) -> Geometry:
        return Geometry(self.axi_bits, self.G, ACT_BITS)

    @property
    def store_bank_total(self) -> int:
        """Banks of the feature-map store: ``store_banks`` per AXI port it uses."""
        return self.ports * self.store_banks

    @property
    def store_beats(self) -> int:
        """AXI beats the feature-map store holds (``hw.residency.store_layout``)."""
        if not self.opts.fm_store:
            return 0
        return store_layout(self.store, self.G, self.store_bank_total, self.axi_bits).beats

    @property
    def write_beats(self) -> int:
        """Beats the write-back requantizes and writes per trip (one per port at most): the
        count whose trips keep the ``post`` lanes busiest (fewest cycles a beat; ``G`` values
        a word), the larger one of a tie."""
        vals = self.geo.wpb * self.G
        return min(range(1, self.ports + 1), key=lambda b: (-(-b * vals // self.post) / b, -b))

    @property
    def write_ii(self) -> int:
        """II of the write-back's beat loop: cycles of the ``post`` lanes per trip."""
        return -(-self.write_beats * self.geo.wpb * self.G // self.post)

    @property
    def split_k(self) -> int:
        """8-bit filters a split8 step puts on PE4 (a high and a low nibble row each, one row
        left for the input sum: ``hw.performance.split8_capacity``); 0 without split8."""
        return max(self.Tm4 - 1, 0) // 2 if self.opts.split8 else 0


@dataclass
class EngineLayer:
    """One engine layer: the node, its engine op and shape fields, and its tensors."""

    node: Node
    op: str
    shape: dict[str, int]
    inputs: list[str]  # tensor names: input (or a), then skip (or b)
    output: str
    all8: bool = False
    split8: bool = False  # all8 conv whose steps also run 8-bit filters on PE4 as nibbles
    planes: int = 1
    signed_in: bool = False
    signed_skip: bool = False
    weight: np.ndarray | None = None  # [M, Cin, KH, KW] (depthwise [M, 1, KH, KW])
    im2col: tuple[int, ...] | None = None  # (kh, kw, sh, sw, ph, pw) the host unrolls
    # (c, h, w, kh, kw, sh, sw, ph, pw) of the raw input the engine unrolls on chip
    # (im2col_onchip); ``shape`` is then the unrolled 1x1 conv's, as with ``im2col``
    raw: tuple[int, ...] | None = None
    chunks: int = 1  # Tn-channel chunks per step (multi_chunk / input_reuse: the model's choice)
    rows: int = 0  # output rows per tile (input_reuse: a divisor of Tr, the model's); 0: Tr
    store_at: int = -1  # beat offset of the output in the feature-map store (-1: in DDR)
    ring: int = 0  # rows of the output's band ring in the store (band_fusion; 0: whole)
    # (kernel, stride, pad, pooled rows, pooled columns) of a max pool fused into the
    # write-back (fuse_stem_pool); ``output`` is then the pool's
    pool: tuple[int, int, int, int, int] | None = None


def _ints(v: Any) -> list[int]:
    return [int(x) for x in v]


def _check_design(d: EngineDesign) -> None:
    geo = d.geo
    problems = []
    if d.Tm % d.G:
        problems.append(f"Tm = {d.Tm} is not a multiple of G = {d.G} (a pass writes whole "
                        "activation words)")
    if d.Tc % geo.wpb:
        problems.append(f"Tc = {d.Tc} is not a multiple of the {geo.wpb} packed words per "
                        f"{d.axi_bits}-bit beat (a tile writes whole beats)")
    if d.Tm8 < 1:
        problems.append("Tm8 = 0: the engine needs at least one PE8 row")
    if problems:
        raise FitError(
            "the implemented engine cannot take this design: " + "; ".join(problems)
            + ". Run `filmqnn explore` (its default option set 'implemented' only returns "
            "designs the kernel takes) and export the artifact with --design"
        )


def _check_tiling(graph: IntGraph, d: EngineDesign) -> None:
    t = graph.tiling or {}
    want = {"tm": d.Tm, "tm8": d.Tm8, "tn": d.Tn, "g": d.G, "axi_bits": d.axi_bits}
    diff = {k: (t.get(k), v) for k, v in want.items() if t.get(k) != v}
    if diff:
        names = ", ".join(f"{k} {a} (artifact) vs {b} (design)" for k, (a, b) in diff.items())
        raise FitError(
            f"the artifact is laid out for another tiling: {names}; re-export it with "
            "`filmqnn export --checkpoint CKPT --design design.json --out DIR`"
        )
    if not graph.reordered:
        raise FitError("the artifact is not reordered for the tiling; export it without "
                       "--no-reorder")


def _act(t: TensorInfo, what: str) -> None:
    if t.bits != ACT_BITS:
        raise FitError(f"{what} '{t.name}' is {t.bits}-bit; the engine moves {ACT_BITS}-bit "
                       "activations only (quantize with --act-bits 5)")


def plan_network(graph: IntGraph, d: EngineDesign,
                 choices: dict[str, tuple[int, int, int, int]] | None = None
                 ) -> list[EngineLayer]:
    """Engine layers of ``graph`` in execution order; FitError names what does not fit.
    ``choices``: (Tn-channel chunks per step, output rows per tile, the output's beat offset
    in the feature-map store or -1, the rows of its band ring or 0) by layer name, the
    model's (``hw.performance`` LayerPerf.chunks / rows / store_at / ring): several chunks
    for 1x1 convs with ``multi_chunk``, for any conv with ``input_reuse`` (all its channels in
    one step, maybe at fewer rows); else one chunk at the design's Tr; outputs in DDR without
    ``fm_store``, whole without ``band_fusion``."""
    choices = choices or {}
    _check_design(d)
    _check_tiling(graph, d)
    tensors = graph.tensors
    alias: dict[str, str] = {}  # flatten output -> its [C, H, W] input

    def src(name: str) -> str:
        return alias.get(name, name)

    layers: list[EngineLayer] = []
    readers = Counter(i for node in graph.nodes for i in node.inputs)
    for node in graph.nodes:
        ins = [tensors[src(i)] for i in node.inputs]
        out = tensors[node.output]
        x = ins[0]
        first = x.name == graph.input
        if not first:
            _act(x, "input tensor")
        if node.op == "flatten":
            alias[node.output] = x.name
            continue
        if first and node.op != "conv" and node.op != "fc":
            raise FitError(f"layer '{node.name}' ({node.op}) reads the network input; the "
                           "engine's first layer must be a conv or fc")
        if node.requantizes:
            _act(out, "output tensor")
        signed_in = x.signed
        xs = x.shape if len(x.shape) == 3 else (x.shape[0], 1, 1)
        n, h, w = xs
        ly: EngineLayer
        if node.op in ("conv", "fc"):
            wt = node.params["weight"]
            a = node.attrs
            if node.op == "fc":
                m = wt.shape[0]
                wt = wt.reshape(m, n, h, w)
                k, s, p, groups = [h, w], [1, 1], [0, 0], 1
            else:
                k, s, p, groups = _ints(a["kernel"]), _ints(a["stride"]), _ints(a["padding"]), \
                    int(a["groups"])
            m = wt.shape[0]
            dw = groups > 1
            r = (h + 2 * p[0] - k[0]) // s[0] + 1
            c = (w + 2 * p[1] - k[1]) // s[1] + 1
            im2col = raw = None
            if first and node.op == "conv" and d.opts.first_im2col and k != [1, 1] and not dw:
                if d.opts.im2col_onchip:  # the engine reads the raw input and unrolls it
                    raw = (n, h, w, *k, *s, *p)
                else:  # the host writes the unrolled input
                    im2col = (*k, *s, *p)
                # either way the engine runs a 1x1 conv over the unrolled channels
                n, h, w, k, s, p = n * k[0] * k[1], r, c, [1, 1], [1, 1], [0, 0]
                wt = wt.reshape(m, n, 1, 1)
            bits = node.params["bits"]
            all8 = bool(np.all(bits == 8)) and len(np.unique(bits)) == 1
            pe4 = (np.arange(m) % d.Tm) >= d.Tm8
            if not all8 and np.any(bits[pe4] > 4):
                bad = int(np.flatnonzero(pe4 & (bits > 4))[0])
                raise FitError(f"layer '{node.name}': filter position {bad} is {bits[bad]}-bit "
                               "but sits in a 4-bit slot of the tiling; re-export with --design")
            if not node.requantizes and (r, c) != (1, 1):
                raise FitError(f"layer '{node.name}' writes int32 accumulators over a {r}x{c} "
                               "map; the engine writes int32 outputs of 1x1 maps only (logits)")
            ly = EngineLayer(node, "dwconv" if dw else "conv",
                             dict(n=n, m=m, h=h, w=w, r=r, c=c, kh=k[0], kw=k[1], sh=s[0],
                                  sw=s[1], ph=p[0], pw=p[1]),
                             [x.name] + [src(i) for i in node.inputs[1:]], node.output,
                             all8=all8, planes=2 if first else 1, signed_in=signed_in or first,
                             weight=wt, im2col=im2col, raw=raw,
                             split8=all8 and not dw and d.split_k > 0)
            c_k, rows, _, _ = choices.get(node.name, NO_CHOICE)
            if not dw and d.opts.multi_chunk and (k == [1, 1] or d.opts.input_reuse):
                ly.chunks = max(1, min(int(c_k), -(-n // d.Tn)))
            if not dw and d.opts.input_reuse and 0 < rows < d.Tr and d.Tr % rows == 0:
                ly.rows = int(rows)
            if len(node.inputs) > 1:
                ly.signed_skip = tensors[src(node.inputs[1])].signed
            if first and x.fmt.bits != 8:
                raise FitError(f"the network input '{x.name}' must be 8-bit")
        elif node.op == "maxpool":
            a = node.attrs
            k, s, p = _ints(a["kernel"]), _ints(a["stride"]), _ints(a["padding"])
            r, c = out.shape[1], out.shape[2]
            prev = layers[-1] if layers else None
            if (d.opts.fuse_stem_pool and prev is not None and prev.planes == 2
                    and prev.output == x.name):  # the stem's pool: into the conv's write-back
                if k[0] != k[1] or s[0] != s[1] or p[0] != p[1] or readers[x.name] > 1:
                    raise FitError(f"layer '{node.name}': the engine fuses square max pools "
                                   "that alone read the first conv; regenerate with "
                                   "--off fuse_stem_pool")
                prev.pool = (k[0], s[0], p[0], r, c)
                prev.output = node.output
                continue
            ly = EngineLayer(node, "maxpool", dict(n=n, m=n, h=h, w=w, r=r, c=c, kh=k[0],
                                                    kw=k[1], sh=s[0], sw=s[1], ph=p[0], pw=p[1]),
                             [x.name], node.output, signed_in=signed_in)
        elif node.op == "gap":
            ly = EngineLayer(node, "gap", dict(n=n, m=n, h=h, w=w, r=1, c=1, kh=h, kw=w, sh=1,
                                               sw=1, ph=0, pw=0),
                             [x.name], node.output, signed_in=signed_in)
        elif node.op == "add":
            b = ins[1]
            ly = EngineLayer(node, "add", dict(n=n, m=n, h=h, w=w, r=h, c=w, kh=1, kw=1, sh=1,
                                               sw=1, ph=0, pw=0),
                             [x.name, b.name], node.output, signed_in=signed_in,
                             signed_skip=b.signed)
        else:
            raise FitError(f"layer '{node.name}': op {node.op!r} is not an engine mode")
        if d.opts.fm_store:
            ly.store_at = int(choices.get(node.name, NO_CHOICE)[2])
            if d.opts.band_fusion and ly.store_at >= 0:
                ly.ring = int(choices.get(node.name, NO_CHOICE)[3])
        layers.append(ly)
    _check_rings(layers, readers, d)
    _check_store(graph, layers, d)
    return layers


#: A layer the model made no choice for: one chunk per step, Tr rows, output in DDR, whole.
NO_CHOICE = (1, 0, -1, 0)


def ring_shape(shape: tuple[int, ...], ring: int) -> tuple[int, ...]:
    """The shape a tensor takes in the store: its rows cut to a band ring's (0: whole)."""
    return (shape[0], ring, *shape[2:]) if ring else tuple(shape)


def ring_edges(layers: list[EngineLayer]) -> set[int]:
    """Positions of the layers whose output is a band ring read by the next layer."""
    return {i for i, ly in enumerate(layers) if ly.ring > 0}


def band_runs(layers: list[EngineLayer], d: EngineDesign) -> list[tuple[int, int, int]]:
    """(layer position, first output row, end row) of every descriptor, in queue order: the
    band schedule of ``hw.residency`` (one run per layer without band rings)."""
    geoms = [(ly.shape["r"], ly.shape["sh"], ly.shape["kh"], ly.shape["ph"]) for ly in layers]
    return band_schedule(geoms, ring_edges(layers), d.Tr)


def _check_rings(layers: list[EngineLayer], readers: Counter, d: EngineDesign) -> None:
    """A band ring must be read by the next layer alone, a conv or depthwise conv over its
    own input (not unrolled, one plane), with square windows, and hold the rows one band of
    that layer reads plus the producer's overshoot (``hw.residency.band_rows``)."""
    for i, ly in enumerate(layers):
        if ly.ring <= 0:
            continue
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        s = nxt.shape if nxt is not None else {}
        if (nxt is None or nxt.inputs[0] != ly.output or readers[ly.output] > 1
                or nxt.op not in ("conv", "dwconv") or nxt.raw is not None or nxt.planes != 1
                or ly.pool is not None or s["kh"] != s["kw"] or s["sh"] != s["sw"]):
            raise FitError(f"layer '{ly.node.name}': its output cannot be a band ring (the "
                           "next layer alone must read it, a conv or depthwise conv); "
                           "regenerate with --off band_fusion")
        need = band_ring_rows(ly.shape["r"], s["r"], s["sh"], s["kh"], s["h"], s["ph"], d.Tr)
        if not need <= ly.ring <= ly.shape["r"]:
            raise FitError(f"layer '{ly.node.name}': a band ring of {ly.ring} rows; the "
                           f"schedule needs {need}; export with the design `explore` returned")


def _check_store(graph: IntGraph, layers: list[EngineLayer], d: EngineDesign) -> None:
    """The model's store plan must hold in the kernel: 5-bit tensors that the host does not
    read, each inside the store and alone in its beats while any layer still reads it (a
    band ring from the start to the end of the interleaved span of its producer and
    reader)."""
    span = spans(layers, ring_edges(layers))
    last_read: dict[str, int] = {}
    for i, ly in enumerate(layers):
        for t in ly.inputs:
            last_read[t] = span[i][1]
    live: list[tuple[int, int, int, int, str]] = []  # (offset, end, first, last, name)
    for i, ly in enumerate(layers):
        if ly.store_at < 0:
            continue
        t = graph.tensors[ly.output]
        beats = d.geo.act_beats(ring_shape(t.shape, ly.ring))
        if not (ly.node.requantizes or ly.op == "maxpool") or ly.output in graph.outputs:
            raise FitError(f"layer '{ly.node.name}': its output cannot sit in the feature-map "
                           "store (int32 or a network output); regenerate with --off fm_store")
        if ly.store_at + beats > d.store_beats:
            raise FitError(f"layer '{ly.node.name}': its output (beats {ly.store_at}.."
                           f"{ly.store_at + beats}) overruns the {d.store_beats}-beat "
                           "feature-map store; export with the design `explore` returned")
        first, end = span[i][0], last_read.get(ly.output, span[i][1])
        for o, e, f, la, name in live:
            if o < ly.store_at + beats and ly.store_at < e and f <= end and first <= la:
                raise FitError(f"layers '{name}' and '{ly.node.name}' share store beats "
                               "while both are live; rerun `filmqnn hls` with the artifact")
        live.append((ly.store_at, ly.store_at + beats, first, end, ly.node.name))


@dataclass(frozen=True)
class Buffers:
    """On-chip buffer bounds the kernel is compiled with (maxima over the planned network)."""

    kmax: int
    in_r: int
    in_c: int
    mmax: int
    weight_beats_max: int
    chunk_max: int = 1  # most Tn-channel chunks of any step (multi_chunk)
    w_slots: int = 1  # tap slots of a weight row: the most chunks x taps of any step
    raw_ch: int = 1  # raw input tile of an on-chip im2col: channels, rows, columns
    raw_r: int = 1
    raw_c: int = 1
    pool_ch: int = 1  # fused max pool: channels, halo rows and columns, conv map width, ...
    pool_hr: int = 1
    pool_hc: int = 1
    pool_w: int = 1
    pool_pr: int = 1  # ... most pooled rows of a tile row, pooled map width
    pool_pw: int = 1
    pool_n: int = 1  # the larger of the pooled map's rows and columns
    pool_k: int = 1  # its kernel
    # the on-chip im2col's window register per raw channel: kernel rows, and columns
    # (design.raw_window); the raw columns a pixel pair moves it by
    raw_k: int = 1
    raw_win: int = 1
    raw_s2: int = 1
    raw_n: int = 1  # its unrolled channels, in whole Tn chunks


def buffer_bounds(layers: list[EngineLayer], d: EngineDesign) -> Buffers:
    """The input tile, kernel and table sizes the network needs at this design's tiling."""
    kmax, in_r, in_c, mmax = 1, 1, 1, 1
    chunk_max = max((ly.chunks for ly in layers), default=1)
    w_slots = max((ly.chunks * ly.shape["kh"] * ly.shape["kw"] for ly in layers), default=1)
    for ly in layers:
        s = ly.shape
        tr, tc = min(d.Tr, s["r"]), min(d.Tc, s["c"])
        kmax = max(kmax, s["kh"], s["kw"])
        in_r = max(in_r, (tr - 1) * s["sh"] + s["kh"])
        in_c = max(in_c, (tc - 1) * s["sw"] + s["kw"])
        mmax = max(mmax, s["m"])
        if s["m"] >= 1 << INDEX_BITS:
            raise FitError(f"layer '{ly.node.name}' has {s['m']} output channels; the kernel's "
                           f"gather tables hold {INDEX_BITS}-bit channel positions, so at most "
                           f"{(1 << INDEX_BITS) - 1} (split the layer)")
    raw_ch = raw_r = raw_c = raw_k = raw_win = raw_s2 = raw_n = 1
    for ly in layers:
        if ly.raw is not None:  # (c, h, w, kh, kw, sh, sw, ph, pw)
            c, _, _, kh, kw, sh, sw, _, _ = ly.raw
            tr, tc = min(ly.rows or d.Tr, ly.shape["r"]), min(d.Tc, ly.shape["c"])
            raw_ch = max(raw_ch, c)
            raw_r = max(raw_r, (tr - 1) * sh + kh)
            raw_c = max(raw_c, (tc - 1) * sw + kw)
            raw_k = max(raw_k, kh)
            raw_win = max(raw_win, raw_window(kw, sw))
            raw_s2 = max(raw_s2, PIXELS * sw)
            raw_n = max(raw_n, -(-c * kh * kw // d.Tn) * d.Tn)
    pool = [1] * 8
    for ly in layers:
        if ly.pool is not None:
            pr, pc = ly.pool[3:]
            h_r, most = pool_tiling(ly.pool[:3], ly.shape["r"], pr, ly.rows or d.Tr)
            h_c, _ = pool_tiling(ly.pool[:3], ly.shape["c"], pc, d.Tc)
            pool = [ly.shape["m"], max(h_r, 1), max(h_c, 1), ly.shape["c"], max(most, 1), pc,
                    max(pr, pc), ly.pool[0]]
    w_slots = max(w_slots, kmax * kmax)
    # a step's weights in one stream: its chunks' blocks, each padded to whole beats
    wmax = d.geo.bytes_to_beats(d.Tm * w_slots * d.Tn) + chunk_max + 1
    return Buffers(kmax, in_r, in_c, mmax, wmax, chunk_max, w_slots, raw_ch, raw_r, raw_c,
                   *pool, raw_k=raw_k, raw_win=raw_win, raw_s2=raw_s2, raw_n=raw_n)
