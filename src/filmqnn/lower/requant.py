"""Dyadic requantization (DESIGN.md §2): the one definition of how an int32 accumulator becomes
an output integer, shared by the deploy-mode torch model and the integer reference."""

import math

import numpy as np
import torch

from filmqnn.formats import INPUT_FORMAT, IntFormat

REQUANT_MANTISSA_BITS = 16
"""Width of the unsigned multiplier M: every M lies in [0, 2^16); the largest multiplier of a
filter is normalised to [2^15, 2^16), so each real ratio keeps 16 significant bits."""
OPERAND_MULT_BITS = 32
"""Width of the multipliers of 5- or 8-bit operands that share the accumulator's shift."""
MAX_SHIFT = 62


class RequantError(ValueError):
    """A real rescaling ratio cannot be represented as M * 2^-S with the documented widths."""


def dyadic(ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers M [k, n] and shifts S [n] with M[i, j] * 2^-S[j] ~ ratios[i, j].

    `ratios` is [k, n]: for each of n output channels, the accumulator's ratio first, then the
    ratios that share its shift (the skip operand of a fused residual add). S normalises the
    first ratio to a 16-bit M in [2^15, 2^16); the others are rounded at the same S and must
    stay below 2^OPERAND_MULT_BITS (they multiply 5- or 8-bit operands, not accumulators).
    """
    r = np.atleast_2d(np.asarray(ratios, dtype=np.float64))
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise RequantError("requantization ratios must be finite and positive")
    exp = np.array([math.frexp(float(t))[1] for t in r[0]])  # r = f * 2^exp, f in [0.5, 1)
    shift = REQUANT_MANTISSA_BITS - exp
    if np.any(shift < 1):
        worst = float(r[0][np.argmin(shift)])
        raise RequantError(
            f"requantization ratio {worst:.4g} needs a shift below 1 with a "
            f"{REQUANT_MANTISSA_BITS}-bit multiplier; the output scale is too small for its "
            "input (recalibrate the activation quantizers)"
        )
    if np.any(shift > MAX_SHIFT):
        raise RequantError(
            f"requantization ratio {float(r[0].min()):.4g} is too small for a shift of at most "
            f"{MAX_SHIFT}; the output scale is far too large (recalibrate)"
        )
    mult = np.round(r * np.exp2(shift)).astype(np.int64)
    mult[0] = np.minimum(mult[0], (1 << REQUANT_MANTISSA_BITS) - 1)  # rounding 0.99999.. up
    if np.any(mult[1:] >= 1 << OPERAND_MULT_BITS):
        raise RequantError(
            "a residual operand's scale is more than 2^16 times the accumulator's; "
            "recalibrate the activation quantizers"
        )
    return mult, shift.astype(np.int64)


def requantize(
    acc: torch.Tensor,
    mult: torch.Tensor,
    shift: torch.Tensor,
    lo: int,
    hi: int,
    skip: torch.Tensor | None = None,
    skip_mult: torch.Tensor | None = None,
    offset: torch.Tensor | int = 0,
) -> torch.Tensor:
    """clamp((acc*M + skip*M2 + offset + 2^(S-1)) >> S, lo, hi) in int64, per channel.

    The shift is arithmetic (floor), so the rounding is half up, as in the generated C++.
    `offset` (|offset| < 2^15) carries the part of the bias below the accumulator's LSB.
    """
    rounding = torch.as_tensor(offset, dtype=torch.int64) + (1 << (shift - 1))
    y = torch.addcmul(rounding, acc.to(torch.int64), torch.as_tensor(mult, dtype=torch.int64))
    if skip is not None:
        y.addcmul_(skip.to(torch.int64), skip_mult)
    y.bitwise_right_shift_(shift)
    return y.clamp_(lo, hi)


def quantize_input(x: torch.Tensor, scale: float, fmt: IntFormat = INPUT_FORMAT) -> torch.Tensor:
    """The host's quantization of a normalised float image: round half to even, clamp (int32).

    The same float32 ops as the fake-quant input quantizer (division by a 0-dim float32
    tensor), so the integers agree bit for bit.
    """
    s = torch.tensor(scale, dtype=torch.float32)
    return torch.round(x.float() / s).clamp(fmt.qmin, fmt.qmax).to(torch.int32)


def dequantize(q: torch.Tensor, scale: float | list[float]) -> torch.Tensor:
    """Real values of an integer output: q * scale, per channel when `scale` is a list."""
    s = torch.as_tensor(scale, dtype=torch.float64)
    return q.double() * (s.reshape(-1, *([1] * (q.dim() - 2))) if s.dim() else s)
