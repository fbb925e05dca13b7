"""On-chip feature-map store: which activation tensors stay on chip between layers.

A design may give otherwise unused BRAM18Ks to a feature-map store (``DesignPoint.store``).
A tensor placed there is written by its producer's write-back and read by its consumers'
loads (and residual adds) without touching DDR. The placement is a compile-time plan: every
tensor gets a fixed word range of the store for its whole lifetime (from its producer to its
last consumer, both inclusive), and tensors whose lifetimes overlap never share a word. The
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

from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from filmqnn.hw.layers import LayerShape
from filmqnn.formats import ACT_BITS

#: Store word: one 36-bit BRAM18K word (512 x 36 aspect ratio, UG473 / UG573) holding
#: ``36 // ACT_BITS`` activations of consecutive channels of one pixel.
STORE_WORD_BITS = 36
STORE_WORDS_PER_BRAM = 512
VALUES_PER_WORD = STORE_WORD_BITS // ACT_BITS


@dataclass(frozen=True)
class Placement:
    """A tensor in the store: its id, word range and lifetime (engine-layer positions)."""

    tensor: int
    offset: int
    words: int
    first: int
    last: int
    band: bool = False  # a ring of rows between a producer and the next layer


def tensor_words(channels: int, pixels: int) -> int:
    """Store words of a tensor: ``VALUES_PER_WORD`` channels of one pixel per word."""
    return -(-channels // VALUES_PER_WORD) * pixels


def out_pixels(ly: LayerShape) -> int:
    """Pixels of a layer's output tensor (the pooled map when a max pool is fused)."""
    if ly.pool is None:
        return ly.R * ly.C
    st = ly.pool[1]
    return -(-ly.R // st) * -(-ly.C // st)


def store_words(bram18k: int) -> int:
    """Words a store of ``bram18k`` BRAM18Ks holds."""
    return int(bram18k) * STORE_WORDS_PER_BRAM


def band_rows(producer: LayerShape, consumer: LayerShape, rows: int) -> int:
    """Rows of the producer's output a band ring holds (at most the map): the input rows one
    consumer tile-row of ``rows`` output rows reads, plus the rows the producer's last band
    overshoots them by (its bands are ``rows`` high, so fewer than ``rows``); the rows the
    next consumer band no longer reads are overwritten by the producer's next band."""
    tr = min(rows, consumer.R)
    rin = min((tr - 1) * consumer.stride + consumer.K, consumer.H + 2 * consumer.pad)
    return min(producer.R, rin + min(rows, producer.R) - 1)


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
    layers: tuple[LayerShape, ...], edges: set[int] | frozenset[int] = frozenset()
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
    layers: tuple[LayerShape, ...], capacity: int, rows: int = 0
) -> tuple[Placement, ...]:
    """Placements of the tensors of ``layers`` (engine layers, in run order) in a store of
    ``capacity`` words (cached: the DSE asks for the same plans again and again). With
    ``rows > 0`` band-fusable tensors that a plan leaves in DDR ask for a band ring instead
    (rings save as much DDR traffic in fewer words, but cost band switches, so a tensor that
    fits whole stays whole); rings may displace whole tensors, which then may become rings
    too, until no more do. The plan that saves the most DDR traffic wins."""
    span = spans(layers)
    best = _place(layers, capacity, {}, span)
    if rows <= 0 or capacity <= 0:
        return best
    edges = _band_edges(layers, _readers(layers))
    best_saved = _saved(layers, best)
    ring: dict[int, int] = {}
    current = best
    while True:
        on = {q.tensor for q in current}
        more = {
            p: tensor_words(layers[p].M, band_rows(layers[p], layers[p + 1], rows) * layers[p].C)
            for p in edges - set(ring) if layers[p].tout not in on
        }
        more = {p: w for p, w in more.items()
                if w < tensor_words(layers[p].M, out_pixels(layers[p]))}
        if not more:
            return best
        ring.update(more)
        current = _place(layers, capacity, ring, spans(layers, set(ring)))
        saved = _saved(layers, current)
        if saved > best_saved:
            best, best_saved = current, saved


def _saved(layers: tuple[LayerShape, ...], placed: tuple[Placement, ...]) -> int:
    """DDR words a plan saves: each placed tensor's write and its reads."""
    uses = _readers(layers)
    by_tensor = {ly.tout: ly for ly in layers if ly.tout >= 0}
    return sum(tensor_words(by_tensor[q.tensor].M, out_pixels(by_tensor[q.tensor]))
               * (1 + len(uses.get(q.tensor, []))) for q in placed)


def _place(
    layers: tuple[LayerShape, ...], capacity: int, ring: dict[int, int],
    span: list[tuple[int, int]],
) -> tuple[Placement, ...]:
    """First-fit placement of every tensor with a reader (``ring``: producer position -> band
    ring words, for the tensors held as rings). Tensors are taken in order of DDR bits saved
    per word and layer of lifetime (short-lived, often-read tensors first) and each goes to
    the lowest word range free over its whole lifetime; one that fits nowhere stays in DDR."""
    if capacity <= 0:
        return ()
    uses = _readers(layers)
    cands = []
    for p, ly in enumerate(layers):
        readers = [i for i in uses.get(ly.tout, []) if i > p] if ly.tout >= 0 else []
        if not readers:
            continue
        words = tensor_words(ly.M, out_pixels(ly))
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
    layers: tuple[LayerShape, ...], capacity: int, rows: int = 0
) -> np.ndarray:
    """Per engine layer, whether the plan holds its input, output and residual operand on
    chip and whether its input is a band ring: a (layers, 4) bool array (cached)."""
    placed = plan(layers, capacity, rows)
    on = np.array(sorted(q.tensor for q in placed), dtype=np.int64)
    band = np.array(sorted(q.tensor for q in placed if q.band), dtype=np.int64)
    ids = np.array([(ly.tin, ly.tout, ly.tskip) for ly in layers], dtype=np.int64)
    ids = ids.reshape(len(layers), 3)
    flags = np.isin(ids, on) & (ids >= 0)
    out = np.concatenate([flags, (np.isin(ids[:, 0], band) & (ids[:, 0] >= 0))[:, None]],
                         axis=1)
    out.flags.writeable = False  # shared by every caller of the cache
    return out


def place_tensors(layers: list[LayerShape], capacity: int, rows: int = 0) -> list[LayerShape]:
    """Engine layers with ``in_chip`` / ``out_chip`` / ``skip_chip`` set by the plan of a store
    of ``capacity`` words and ``in_band`` on the consumers of band rings (``rows``: the
    design's ``Tr`` with band fusion, else 0); all False without a store."""
    base = tuple(replace(ly, in_chip=False, out_chip=False, skip_chip=False, in_band=False)
                 for ly in layers)
    flags = chip_flags_of(base, capacity, rows)
    if not flags.any() and base == tuple(layers):
        return list(layers)
    return [replace(ly, in_chip=bool(f[0]), out_chip=bool(f[1]), skip_chip=bool(f[2]),
                    in_band=bool(f[3])) for ly, f in zip(base, flags, strict=True)]
