"""Bit-exact model of the Xilinx DSP48E1 / DSP48E2 multiply path at the real port widths.

Only the datapath that DSP packing uses is modelled: the pre-adder ``AD = A + D``, the
signed multiplier ``M = AD * B`` and the 48-bit accumulator ``P = P + M``.

* DSP48E1 (7-series, UG479 "7 Series DSP48E1 Slice User Guide", Ch. 2, Fig. 2-1 and Table 2-1):
  A is 30 bits but only ``A[24:0]`` feeds the pre-adder / multiplier; D is 25 bits; the
  pre-adder output (AD register) is 25 bits and wraps; B is 18 bits; the multiplier is
  25 x 18 two's complement (43-bit product, sign-extended); P is 48 bits and wraps.
* DSP48E2 (UltraScale / UltraScale+, UG579 "UltraScale Architecture DSP Slice User Guide",
  Ch. 2, Fig. 2-1 and Table 2-1): A is 30 bits, ``A[26:0]`` feeds the pre-adder / multiplier;
  D is 27 bits; the pre-adder output is 27 bits and wraps; B is 18 bits; the multiplier is
  27 x 18 (45-bit product); P is 48 bits.

Every function accepts Python ints or numpy int64 arrays (vectorised). All intermediate
values stay below 2**63: a 27 x 18 product is < 2**44 and P is kept wrapped to 48 bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

IntLike = TypeVar("IntLike", int, np.ndarray)


@dataclass(frozen=True)
class DspSpec:
    """Port widths (bits) of one DSP slice kind, as in the vendor user guide."""

    name: str
    a_port: int  # width of the A input port
    a_mult: int  # low bits of A that reach the pre-adder / multiplier
    d_port: int
    preadd: int  # width of the pre-adder result (AD register)
    b_port: int
    p_port: int
    guide: str

    @property
    def product_bits(self) -> int:
        """Width of the signed multiplier output (43 on DSP48E1, 45 on DSP48E2)."""
        return self.preadd + self.b_port


DSP48E1 = DspSpec("dsp48e1", 30, 25, 25, 25, 18, 48, "UG479 (7 Series DSP48E1 Slice)")
DSP48E2 = DspSpec("dsp48e2", 30, 27, 27, 27, 18, 48, "UG579 (UltraScale DSP Slice)")
DSP_SPECS: dict[str, DspSpec] = {s.name: s for s in (DSP48E1, DSP48E2)}


def dsp_spec(name: str) -> DspSpec:
    """Look up a DSP kind by name; ValueError lists the valid names."""
    try:
        return DSP_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown dsp {name!r}; valid choices: {sorted(DSP_SPECS)}") from None


def wrap_signed(x: IntLike, bits: int) -> IntLike:
    """Two's-complement wrap of ``x`` to ``bits`` bits (keep the low bits, sign-extend)."""
    half = 1 << (bits - 1)
    mask = (1 << bits) - 1
    return ((x + half) & mask) - half


def fits_signed(x: IntLike, bits: int) -> bool:
    """True when every value of ``x`` is representable as a ``bits``-bit signed number."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    arr = np.asarray(x)
    return bool(arr.size == 0 or (arr.min() >= lo and arr.max() <= hi))


def signed_field(x: IntLike, lsb: int, width: int) -> IntLike:
    """Bits ``[lsb+width-1 : lsb]`` of the two's-complement ``x``, read as a signed number."""
    return wrap_signed(x >> lsb, width)


def bit(x: IntLike, index: int) -> IntLike:
    """Bit ``index`` (0 or 1) of the two's-complement ``x``."""
    return (x >> index) & 1


def preadd(spec: DspSpec, a: IntLike, d: IntLike) -> IntLike:
    """Pre-adder output ``AD = A[a_mult-1:0] + D``, wrapped to the AD register width."""
    return wrap_signed(wrap_signed(a, spec.a_mult) + wrap_signed(d, spec.d_port), spec.preadd)


def multiply(spec: DspSpec, ad: IntLike, b: IntLike) -> IntLike:
    """Signed ``AD x B`` as the multiplier computes it (operands cut to their port widths)."""
    return wrap_signed(ad, spec.preadd) * wrap_signed(b, spec.b_port)


def mac(spec: DspSpec, a: IntLike, d: IntLike, b: IntLike, p: IntLike = 0) -> IntLike:
    """One cycle of ``P = P + (A + D) * B`` with the 48-bit P wrap."""
    return wrap_signed(p + multiply(spec, preadd(spec, a, d), b), spec.p_port)


def accumulate(spec: DspSpec, a: np.ndarray, d: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Run ``mac`` over the last axis (cycles) of equally shaped int64 arrays; returns P."""
    a, d, b = (np.asarray(v, dtype=np.int64) for v in (a, d, b))
    p = np.zeros(a.shape[:-1], dtype=np.int64)
    for t in range(a.shape[-1]):
        p = mac(spec, a[..., t], d[..., t], b[..., t], p)
    return p
