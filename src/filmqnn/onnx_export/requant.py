"""The dyadic requantization of DESIGN.md §2 as standard ONNX integer operators, exactly.

    y = clamp((sum_i t_i * M_i + C + 2^(S-1)) >> S, lo, hi)      (int64, arithmetic shift)

ONNX `BitShift` exists for unsigned types only and integer `Div` truncates toward zero, so
neither is an arithmetic shift of a negative number. The numerator n is therefore moved to
n + 2^62, which is non-negative, in uint64; as 2^S divides 2^62 (S <= 62),

    (n + 2^62) >> S  ==  floor(n / 2^S) + 2^(62-S)

exactly, and the constant 2^(62-S) is subtracted again in int64. The offset is folded into
the constant C, so the graph computes Mul, Add, Cast(uint64), BitShift, Cast(int64), Sub,
Clip: every intermediate is an integer of proven magnitude (`check_numerator`).
"""

from __future__ import annotations

import numpy as np

from filmqnn.lower.requant import MAX_SHIFT
from filmqnn.onnx_export.builder import GraphBuilder

#: log2 of the offset that makes every numerator non-negative before the unsigned shift.
SHIFT_BIAS_BITS = MAX_SHIFT
NUMERATOR_LIMIT = 1 << SHIFT_BIAS_BITS


class RequantExportError(ValueError):
    """A requantization's numerator could leave the range the exact ONNX form needs."""


def check_numerator(name: str, bounds: list[int], mults: list[np.ndarray], const: np.ndarray,
                    shift: np.ndarray) -> None:
    """Raise unless |sum t_i*M_i + C + 2^(S-1)| < 2^62 for every |t_i| <= bounds[i]."""
    total = np.abs(np.asarray(const, dtype=object)) + (1 << (np.asarray(shift, object) - 1))
    for bound, m in zip(bounds, mults, strict=True):
        total = total + int(bound) * np.abs(np.asarray(m, dtype=object))
    worst = int(np.max(total))
    if worst >= NUMERATOR_LIMIT:
        raise RequantExportError(
            f"'{name}': the requantization numerator can reach {worst} >= 2^{SHIFT_BIAS_BITS}, "
            "beyond the exact uint64 shift of the ONNX graph; re-export the artifact with "
            "smaller multipliers (this artifact breaks the documented number formats)"
        )


def add_requant(
    b: GraphBuilder,
    base: str,
    terms: list[tuple[str, np.ndarray]],
    const: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
    out_dtype: np.dtype,
    shape: tuple[int, ...],
    out: str | None = None,
) -> str:
    """Append clamp((sum t*M + const + 2^(S-1)) >> S, lo, hi) as `out_dtype`; int64 terms.

    `terms` pairs an int64 tensor with its multipliers; `const`, `shift` and the multipliers
    hold one value per channel (or one for all) and are reshaped to `shape` to broadcast.
    """
    shift = np.asarray(shift, dtype=np.int64)
    if shift.min() < 1 or shift.max() > SHIFT_BIAS_BITS:
        raise RequantExportError(f"'{base}': shifts must lie in [1, {SHIFT_BIAS_BITS}]")
    acc = None
    for i, (t, mult) in enumerate(terms):
        mult = np.asarray(mult, dtype=np.int64)
        if np.all(mult == 1):
            prod = t
        else:
            prod = b.op("Mul", [t, b.const(f"{base}.mult{i or ''}", mult.reshape(shape))], base)
        acc = prod if acc is None else b.op("Add", [acc, prod], base)
    assert acc is not None, "a requantization needs at least one term"
    biased = (np.asarray(const, dtype=np.int64) + (np.int64(1) << (shift - 1))
              + np.int64(NUMERATOR_LIMIT))
    n = b.op("Add", [acc, b.const(f"{base}.round_bias", biased.reshape(shape))], base)
    u = b.cast(n, np.uint64, base)
    u = b.op("BitShift", [u, b.const(f"{base}.shift", shift.astype(np.uint64).reshape(shape))],
             base, direction="RIGHT")
    y = b.cast(u, np.int64, base)
    unbias = np.int64(1) << (SHIFT_BIAS_BITS - shift)
    y = b.op("Sub", [y, b.const(f"{base}.unbias", unbias.reshape(shape))], base)
    y = b.op("Clip", [y, b.const(f"{base}.lo", np.int64(lo)), b.const(f"{base}.hi", np.int64(hi))],
             base)
    return b.cast(y, out_dtype, base, out)
