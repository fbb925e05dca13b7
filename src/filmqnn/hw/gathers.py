"""Channel groups a gathered operand costs beyond an in-order read.

Reordering (``lower/reordering.py``) puts each layer's 8-bit filters into the 8-bit slots of
the Tm tiles by swapping them with 4-bit filters, so a depthwise conv's input and a fused
residual add's skip operand are read through an index: a Tm tile's channels then come from
G-channel groups of other tiles too, and the kernel reads every group a tile touches
(once: ``hls.ddr_image.gather_order``). This module counts those extra group reads: exactly
from an artifact's index, or, when no index is at hand, as the mean over a few seeded random
choices of the 8-bit filters, reordered by the lowering's own rule. Numpy only.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from filmqnn.lower.reordering import filter_order
from filmqnn.lower.tiling import Tiling
from filmqnn.tile_rule import tiled_high_filters

#: Random assignments the estimate averages over (fixed seed: the model is deterministic).
ESTIMATE_DRAWS = 8


def extra_groups(index: np.ndarray, tm: int, g: int) -> float:
    """Mean over the Tm tiles of the G-channel groups a tile's gather reads beyond the groups
    an in-order read of the same positions reads."""
    idx = np.asarray(index, np.int64)
    if idx.size == 0:
        return 0.0
    pos = np.arange(len(idx))
    tile = pos // tm

    def groups(src: np.ndarray) -> int:
        return len(np.unique(tile * (len(idx) + g) + src // g))

    return (groups(idx) - groups(pos)) / int(tile[-1] + 1)


@cache
def estimated_extra_groups(M: int, Tm: int, Tm8: int, G: int) -> float:
    """Expected extra groups per tile of a mixed layer's gather: Tm8 8-bit filters per tile
    (the tile rule's count) drawn at random over the layer, placed by ``filter_order`` with
    the operand's order preferred (the original order stands for it)."""
    if Tm8 <= 0 or Tm8 >= Tm or M <= Tm:
        return 0.0
    n8 = int(tiled_high_filters(M, Tm, Tm8))
    tiling = Tiling(tm=Tm, tm8=Tm8, tn=2, g=1, axi_bits=128)  # filter_order reads tm, tm8
    rng = np.random.default_rng(0)
    total = 0.0
    for _ in range(ESTIMATE_DRAWS):
        bits = np.full(M, 4, np.uint8)
        bits[rng.choice(M, n8, replace=False)] = 8
        order, _ = filter_order(bits, tiling, prefer=np.arange(M))
        total += extra_groups(order, Tm, G)
    return total / ESTIMATE_DRAWS


def _estimate(M: int, Tm: Any, Tm8: Any, G: Any) -> Any:
    """``estimated_extra_groups`` over arrays of designs (each distinct design once)."""
    keys = np.stack(np.broadcast_arrays(np.asarray(Tm), np.asarray(Tm8), np.asarray(G)), -1)
    flat = keys.reshape(-1, 3)
    uniq, inv = np.unique(flat, axis=0, return_inverse=True)
    vals = np.array([estimated_extra_groups(M, *map(int, k)) for k in uniq])
    return vals[inv.ravel()].reshape(keys.shape[:-1])


def gather_extra(measured: tuple[int, int, float, int] | None, M: int, mixed: bool, Tm: Any,
                 Tm8: Any, G: Any) -> tuple[Any, Any]:
    """(extra groups per tile, whether an index is read) of one gathered operand for arrays
    of designs: ``measured`` (tm, g, extra, indexed) where the design has the artifact's Tm
    and G, else the estimate for a mixed layer (indexed when any filter moves), none for a
    uniform one."""
    est = _estimate(M, Tm, Tm8, G) if mixed else np.zeros(np.shape(Tm))
    if measured is None:
        return est, est > 0
    tm, g, value, indexed = measured
    same = (np.asarray(Tm) == tm) & (np.asarray(G) == g)
    return np.where(same, value, est), np.where(same, bool(indexed), est > 0)
