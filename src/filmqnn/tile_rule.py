"""The hardware granularity rule of the precision assignment (DESIGN §3), torch-free: every
output tile of Tm filters holds Tm8 = max(1, round(r * Tm)) 8-bit filters, a last, partial
tile no more than its own filters. The assignment, the lowering and the hardware model all
count 8-bit filters with these functions."""

from __future__ import annotations

from typing import Any

import numpy as np


def tile_high_filters(tm: int, ratio: float) -> int:
    """Tm8, the 8-bit filters in every output tile of Tm filters: max(1, round(r*Tm))
    (0 when r = 0, never more than Tm)."""
    if tm < 1:
        raise ValueError(f"tile size Tm must be >= 1, got {tm}")
    if ratio <= 0:
        return 0
    return min(tm, max(1, round(ratio * tm)))


def tiled_high_filters(num_filters: Any, tm: Any, tm8: Any) -> Any:
    """8-bit filters of a layer of ``num_filters`` under Tm8 per tile: Tm8 in every full tile,
    min(Tm8, rest) in a last, partial one (numpy arrays of designs welcome)."""
    m, tm, tm8 = np.asarray(num_filters), np.asarray(tm), np.asarray(tm8)
    return tm8 * (m // tm) + np.minimum(tm8, m % tm)


def high_filter_count(num_filters: int, ratio: float, tm: int | None = None) -> int:
    """Number of high-precision filters in a layer of `num_filters` filters.

    With a tile size `tm` the hardware rule applies (``tiled_high_filters`` at
    ``tile_high_filters(tm, ratio)``). Without it, a plain ratio: round(r*M), at least one
    when r > 0.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio of 8-bit filters must lie in [0, 1], got {ratio}")
    if ratio == 0:
        return 0
    if tm is None:
        return min(num_filters, max(1, round(ratio * num_filters)))
    return int(tiled_high_filters(num_filters, tm, tile_high_filters(tm, ratio)))
