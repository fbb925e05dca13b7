"""On-chip feature-map store: which activation tensors stay on chip between layers.

A design may give otherwise unused BRAM18Ks to a feature-map store (``DesignPoint.store``).
A tensor placed there is written by its producer's write-back and read by its consumers'
loads (and residual adds) without touching DDR. The placement is a compile-time plan: every
tensor gets a fixed word range of the store for its whole lifetime (from its producer to its
last consumer, both inclusive), and tensors whose lifetimes overlap never share a word. The
network input (read by the first conv) and the network output (read by the host) stay in DDR.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from filmqnn.hw.layers import LayerShape
from filmqnn.quant.formats import ACT_BITS

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


@cache
def plan(layers: tuple[LayerShape, ...], capacity: int) -> tuple[Placement, ...]:
    """Placements of the tensors of ``layers`` (engine layers, in run order) in a store of
    ``capacity`` words (cached: the DSE asks for the same plans again and again). Tensors are
    taken in order of DDR bits saved per word and layer of lifetime (short-lived, often-read
    tensors first) and each goes to the lowest word range free over its whole lifetime
    (first fit); a tensor that fits nowhere stays in DDR."""
    if capacity <= 0:
        return ()
    made: dict[int, tuple[int, int]] = {}  # tensor -> (producer position, words)
    uses: dict[int, list[int]] = {}  # tensor -> consumer positions
    for i, ly in enumerate(layers):
        for t in (ly.tin, ly.tskip):
            if t >= 0:
                uses.setdefault(t, []).append(i)
        if ly.tout >= 0:
            made[ly.tout] = (i, tensor_words(ly.M, out_pixels(ly)))
    cands = []
    for t, (p, words) in made.items():
        readers = [i for i in uses.get(t, []) if i > p]
        if not readers or words > capacity:
            continue
        last = max(readers)
        saved = words * (1 + len(readers))
        cands.append((-saved / (words * (last - p + 1)), p, t, words, last))
    placed: list[Placement] = []
    for _, p, t, words, last in sorted(cands):
        busy = sorted((q.offset, q.offset + q.words) for q in placed
                      if q.first <= last and p <= q.last)
        at = 0
        for lo, hi in busy:
            if at + words <= lo:
                break
            at = max(at, hi)
        if at + words <= capacity:
            placed.append(Placement(t, at, words, p, last))
    return tuple(sorted(placed, key=lambda q: q.first))


def place_tensors(layers: list[LayerShape], capacity: int) -> list[LayerShape]:
    """Engine layers with ``in_chip`` / ``out_chip`` / ``skip_chip`` set by the plan of a store
    of ``capacity`` words (all False without a store)."""
    on = {q.tensor for q in plan(tuple(layers), capacity)}
    if not on and not any(ly.in_chip or ly.out_chip or ly.skip_chip for ly in layers):
        return list(layers)
    return [
        replace(ly, in_chip=ly.tin in on, out_chip=ly.tout in on, skip_chip=ly.tskip in on)
        for ly in layers
    ]
