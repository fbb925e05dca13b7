"""On-chip feature-map store: which activation tensors stay on chip between layers.

A design may give otherwise unused BRAM18Ks to a feature-map store (``DesignPoint.store``).
A tensor placed there is written by its producer's write-back and read by its consumers'
loads (and residual adds) without touching DDR. The placement is a compile-time plan: every
tensor gets a fixed beat range of the store for its whole lifetime (from its producer to its
last consumer, both inclusive), and tensors whose lifetimes overlap never share a beat. The
network input (read by the first conv) and the network output (read by the host) stay in DDR.

With band fusion (``rows > 0``, the design's ``Tr``) a tensor whose only reader is the next
layer may instead take a ring of rows: the producer and its consumer then run interleaved,
band by band (one consumer tile-row of ``rows`` output rows at a time, the producer filling
the input rows that band needs), so the ring holds one consumer band's input rows plus the
producer's overshoot (``band_rows``). Rings go only to the tensors the plan of whole tensors
leaves in DDR. Layers chained this way run as one interleaved span, so every tensor they touch
is held over the whole span (``spans``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from filmqnn.formats import ACT_BITS
from filmqnn.hw.layers import LayerShape
from filmqnn.lower import packing

#: A BRAM18K holds 512 words of up to 36 bits (UG473 / UG573); a store bank of AXI beats
#: stands ``ceil(axi_bits / 36)`` BRAM18Ks wide.
BRAM_DEPTH = 512
BRAM_WIDTH = 36


@dataclass(frozen=True)
class Placement:
    """A tensor in the store: its id, beat range and lifetime (engine-layer positions)."""

    tensor: int
    offset: int
    words: int  # beats
    first: int
    last: int
    band: bool = False  # a ring of rows between a producer and the next layer


@dataclass(frozen=True)
class StoreLayout:
    """A design's feature-map store as the kernel holds it: ``beats`` AXI beats of the DDR
    layout (``wpb`` words of ``G`` channels of one pixel each, one map row of a channel
    group in whole beats) in ``store_banks`` banks per AXI port (``DesignPoint``), so a tile
    moves at that many times the ports' width."""

    beats: int
    G: int
    wpb: int


def store_layout(bram18k: int, G: int, banks: int, axi_bits: int) -> StoreLayout:
    """The store ``bram18k`` BRAM18Ks hold: whole 512-deep blocks of all ``banks`` banks."""
    per_block = banks * -(-axi_bits // BRAM_WIDTH)
    beats = int(bram18k) // per_block * BRAM_DEPTH * banks
    return StoreLayout(beats, int(G), packing.words_per_beat(axi_bits, int(G), ACT_BITS))


def store_bram18k(beats: int, banks: int, axi_bits: int) -> int:
    """BRAM18Ks of the smallest store holding ``beats`` beats (``store_layout``'s inverse)."""
    return -(-int(beats) // (BRAM_DEPTH * banks)) * banks * -(-axi_bits // BRAM_WIDTH)


def tensor_beats(channels: int, rows: int, cols: int, store: StoreLayout) -> int:
    """Beats of a tensor (or of ``rows`` rows of it) in the store."""
    return -(-channels // store.G) * rows * -(-cols // store.wpb)


def out_dims(ly: LayerShape) -> tuple[int, int]:
    """Rows and columns of a layer's output tensor (the pooled map when a max pool is fused)."""
    if ly.pool is None:
        return ly.R, ly.C
    st = ly.pool[1]
    return -(-ly.R // st), -(-ly.C // st)


def out_pixels(ly: LayerShape) -> int:
    """Pixels of a layer's output tensor."""
    r, c = out_dims(ly)
    return r * c


def band_rows(producer: LayerShape, consumer: LayerShape, rows: int) -> int:
    """Rows of the producer's output a band ring holds (at most the map): the input rows one
    consumer tile-row of ``rows`` output rows reads, plus the rows the producer's last band
    overshoots them by (its bands are ``rows`` high, so fewer than ``rows``); the rows the
    next consumer band no longer reads are overwritten by the producer's next band."""
    return band_ring_rows(producer.R, consumer.R, consumer.stride, consumer.K, consumer.H,
                          consumer.pad, rows)


def band_ring_rows(prod_r: int, cons_r: int, stride: int, k: int, h: int, pad: int,
                   rows: int) -> int:
    """``band_rows`` from plain numbers: the producer's output rows, the consumer's output
    rows, its stride, kernel, input rows and padding, and the band height ``rows``."""
    tr = min(rows, cons_r)
    rin = min((tr - 1) * stride + k, h + 2 * pad)
    return min(prod_r, rin + min(rows, prod_r) - 1)


def band_schedule(
    geoms: Sequence[tuple[int, int, int, int]], edges: set[int] | frozenset[int], rows: int
) -> list[tuple[int, int, int]]:
    """The runs of a network whose tensors after the producers ``edges`` are band rings:
    (layer position, first output row, end row) in run order. ``geoms`` holds per engine layer
    (output rows, stride, kernel, padding). A span's last layer runs band by band
    (``rows`` output rows each); before each band the layer before it runs the bands that
    complete the input rows the band reads, and so on up the span, so a producer never runs
    more than ``rows - 1`` rows ahead of what its consumer's next band needs (``band_rows``
    sizes the rings for that). Consecutive runs of one layer merge; a layer outside every
    span is one run of its whole map."""
    done = [0] * len(geoms)
    out: list[tuple[int, int, int]] = []

    def advance(i: int, target: int) -> None:
        R, s, k, p = geoms[i]
        while done[i] < target:
            hi = min(done[i] + rows, R) if rows > 0 else R
            if i - 1 in edges:
                advance(i - 1, min(geoms[i - 1][0], (hi - 1) * s - p + k))
            if out and out[-1][0] == i:
                out[-1] = (i, out[-1][1], hi)
            else:
                out.append((i, done[i], hi))
            done[i] = hi

    for i, g in enumerate(geoms):
        if i not in edges:
            advance(i, g[0])
    return out


def _band_edges(layers: tuple[LayerShape, ...], uses: dict[int, list[int]]) -> set[int]:
    """Positions ``p`` whose output may be band-fused into layer ``p + 1``: its only reader,
    a conv or depthwise conv on 5-bit activations; the producer pools nothing."""
    out = set()
    for p, (a, b) in enumerate(zip(layers, layers[1:], strict=False)):
        if (a.tout >= 0 and uses.get(a.tout) == [p + 1] and a.pool is None and b.tin == a.tout
                and b.kind in ("conv", "dwconv") and b.raw is None and b.planes == 1):
            out.add(p)
    return out


def spans(
    layers: Sequence[object], edges: set[int] | frozenset[int] = frozenset()
) -> list[tuple[int, int]]:
    """Per engine layer, the (first, last) positions of the interleaved span it runs in:
    consecutive layers joined by the band-fused tensors of ``edges`` (producer positions)."""
    n = len(layers)
    first, last = list(range(n)), list(range(n))
    for p in sorted(edges):
        first[p + 1] = first[p]
    for p in sorted(edges, reverse=True):
        last[p] = last[p + 1]
    return list(zip(first, last, strict=True))


def _readers(layers: tuple[LayerShape, ...]) -> dict[int, list[int]]:
    """Tensor id -> positions of the layers that read it (input or residual operand)."""
    uses: dict[int, list[int]] = {}
    for i, ly in enumerate(layers):
        for t in (ly.tin, ly.tskip):
            if t >= 0:
                uses.setdefault(t, []).append(i)
    return uses


@cache
def plan(
    layers: tuple[LayerShape, ...], store: StoreLayout, rows: int = 0
) -> tuple[Placement, ...]:
    """Placements of the tensors of ``layers`` (engine layers, in run order) in ``store``
    (cached: the DSE asks for the same plans again and again). With
    ``rows > 0`` band-fusable tensors that a plan leaves in DDR ask for a band ring instead
    (rings save as much DDR traffic in fewer beats, but cost band switches, so a tensor that
    fits whole stays whole); rings may displace whole tensors, which then may become rings
    too, until no more do. The plan that saves the most DDR traffic wins."""
    span = spans(layers)
    best = _place(layers, store, {}, span)
    if rows <= 0 or store.beats <= 0:
        return best
    edges = _band_edges(layers, _readers(layers))
    best_saved = _saved(layers, best, store)
    ring: dict[int, int] = {}
    current = best
    while True:
        on = {q.tensor for q in current}
        more = {
            p: tensor_beats(layers[p].M, band_rows(layers[p], layers[p + 1], rows),
                            layers[p].C, store)
            for p in edges - set(ring) if layers[p].tout not in on
        }
        more = {p: w for p, w in more.items()
                if w < tensor_beats(layers[p].M, *out_dims(layers[p]), store)}
        if not more:
            return best
        ring.update(more)
        current = _place(layers, store, ring, spans(layers, set(ring)))
        saved = _saved(layers, current, store)
        if saved > best_saved:
            best, best_saved = current, saved


def _saved(layers: tuple[LayerShape, ...], placed: tuple[Placement, ...],
           store: StoreLayout) -> int:
    """DDR beats a plan saves: each placed tensor's write and its reads."""
    uses = _readers(layers)
    by_tensor = {ly.tout: ly for ly in layers if ly.tout >= 0}
    return sum(tensor_beats(by_tensor[q.tensor].M, *out_dims(by_tensor[q.tensor]), store)
               * (1 + len(uses.get(q.tensor, []))) for q in placed)


def _place(
    layers: tuple[LayerShape, ...], store: StoreLayout, ring: dict[int, int],
    span: list[tuple[int, int]],
) -> tuple[Placement, ...]:
    """First-fit placement of every tensor with a reader (``ring``: producer position -> band
    ring beats, for the tensors held as rings). Tensors are taken in order of DDR bits saved
    per beat and layer of lifetime (short-lived, often-read tensors first) and each goes to
    the lowest beat range free over its whole lifetime; one that fits nowhere stays in DDR."""
    capacity = store.beats
    if capacity <= 0:
        return ()
    uses = _readers(layers)
    cands = []
    for p, ly in enumerate(layers):
        readers = [i for i in uses.get(ly.tout, []) if i > p] if ly.tout >= 0 else []
        if not readers:
            continue
        words = tensor_beats(ly.M, *out_dims(ly), store)
        saved = words * (1 + len(readers))
        words = ring.get(p, words)
        if words > capacity:
            continue
        first, last = span[p][0], span[max(readers)][1]
        cands.append((-saved / (words * (last - first + 1)), first, ly.tout, words, last,
                      p in ring))
    placed: list[Placement] = []
    for _, first, t, words, last, band in sorted(cands):
        busy = sorted((q.offset, q.offset + q.words) for q in placed
                      if q.first <= last and first <= q.last)
        at = 0
        for lo, hi in busy:
            if at + words <= lo:
                break
            at = max(at, hi)
        if at + words <= capacity:
            placed.append(Placement(t, at, words, first, last, band))
    return tuple(sorted(placed, key=lambda q: q.first))


@cache
def chip_flags_of(
    layers: tuple[LayerShape, ...], store: StoreLayout, rows: int = 0
) -> np.ndarray:
    """Per engine layer, whether the plan holds its input, output and residual operand on
    chip and whether its input is a band ring: a (layers, 4) bool array (cached)."""
    placed = plan(layers, store, rows)
    on = np.array(sorted(q.tensor for q in placed), dtype=np.int64)
    band = np.array(sorted(q.tensor for q in placed if q.band), dtype=np.int64)
    ids = np.array([(ly.tin, ly.tout, ly.tskip) for ly in layers], dtype=np.int64)
    ids = ids.reshape(len(layers), 3)
    flags = np.isin(ids, on) & (ids >= 0)
    out = np.concatenate([flags, (np.isin(ids[:, 0], band) & (ids[:, 0] >= 0))[:, None]],
                         axis=1)
    out.flags.writeable = False  # shared by every caller of the cache
    return out


def place_tensors(layers: list[LayerShape], store: StoreLayout | None, rows: int = 0
                  ) -> list[LayerShape]:
    """Engine layers with ``in_chip`` / ``out_chip`` / ``skip_chip`` set by the plan of a store
    ``store`` (None: no store) and ``in_band`` on the consumers of band rings (``rows``: the
    design's ``Tr`` with band fusion, else 0); all False without a store."""
    base = tuple(replace(ly, in_chip=False, out_chip=False, skip_chip=False, in_band=False)
                 for ly in layers)
    if store is None:
        store = StoreLayout(0, 1, 1)
    flags = chip_flags_of(base, store, rows)
    if not flags.any() and base == tuple(layers):
        return list(layers)
    return [replace(ly, in_chip=bool(f[0]), out_chip=bool(f[1]), skip_chip=bool(f[2]),
                    in_band=bool(f[3])) for ly, f in zip(base, flags, strict=True)]
