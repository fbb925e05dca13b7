"""Bit-level packing of the accelerator's DDR data: the one definition host, tests and HLS share.

Rules (the HLS C++ implements the same):

4-bit weights (``pack_int4``)
    A row of L values (L even, each -8..7) becomes L/2 bytes. Byte k holds value 2k in its low
    nibble (bits 0-3) and value 2k+1 in its high nibble (bits 4-7), each as a 4-bit two's
    complement field: byte k = (v[2k] & 0xF) | ((v[2k+1] & 0xF) << 4). Unpacking sign-extends
    each nibble.

Activations (``pack_activations``)
    A feature map [C, H, W] (a flat [F] is [F, 1, 1]) of ``bits``-bit values (unsigned
    0..2^bits-1 or signed -2^(bits-1)..2^(bits-1)-1) is split into ceil(C/g) channel groups.
    A word of g*bits bits holds one pixel (h, w) of one group cg: channel cg*g+i lies in bits
    [i*bits, (i+1)*bits) as a ``bits``-bit two's complement field; channels past C in the
    last group are 0. Words are numbered k = 0, 1, ... in row-major order of [ceil(C/g), H, W]
    (group slowest, column fastest). A beat of ``axi_bits`` bits holds
    wpb = max(1, axi_bits // (g*bits)) words: word k lies in beat k // wpb at bit offset
    (k % wpb) * g * bits. Bits of a beat above wpb*g*bits are 0, and the last beat is filled
    up with zero words. Each beat is stored little-endian: beat bit j is bit j % 8 of byte
    j // 8, so the buffer is n_beats * axi_bits / 8 bytes, beats in increasing address order.

The activation packing itself is ``filmqnn.pynq.host_io`` (numpy only, shipped to the board
with the driver); this module validates formats and ranges and calls it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from filmqnn.formats import ACT_BITS, IntFormat, activation_format
from filmqnn.pynq import host_io

__all__ = [
    "activation_beats",
    "activation_bytes",
    "pack_activations",
    "pack_int4",
    "unpack_activations",
    "unpack_int4",
    "words_per_beat",
]

_INT4 = IntFormat(4, signed=True)


def _check_integer(a: np.ndarray, what: str) -> None:
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} must be an integer array, got dtype {a.dtype}")


def _check_range(a: np.ndarray, fmt: IntFormat, what: str) -> None:
    if a.size and (int(a.min()) < fmt.qmin or int(a.max()) > fmt.qmax):
        raise ValueError(
            f"{what} out of range: values span {int(a.min())}..{int(a.max())}, "
            f"the {fmt.bits}-bit {'signed' if fmt.signed else 'unsigned'} format allows "
            f"{fmt.qmin}..{fmt.qmax}"
        )


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Pack int4 values [..., L] into uint8 [..., L/2], low nibble first (two's complement)."""
    v = np.asarray(values)
    _check_integer(v, "int4 values")
    if v.ndim < 1 or v.shape[-1] % 2:
        raise ValueError(f"int4 packing needs an even last axis length, got shape {v.shape}")
    _check_range(v, _INT4, "int4 values")
    v = v.astype(np.int64)
    return ((v[..., 0::2] & 0xF) | ((v[..., 1::2] & 0xF) << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """Inverse of ``pack_int4``: uint8 [..., n] to sign-extended int8 [..., 2n]."""
    p = np.asarray(packed)
    _check_integer(p, "packed int4 bytes")
    if p.ndim < 1:
        raise ValueError("packed int4 bytes need at least one axis")
    _check_range(p, IntFormat(8, signed=False), "packed int4 bytes")
    p = p.astype(np.int16)
    nib = np.stack([p & 0xF, p >> 4], axis=-1)
    return ((nib ^ 8) - 8).astype(np.int8).reshape(*p.shape[:-1], 2 * p.shape[-1])


def words_per_beat(axi_bits: int, g: int, bits: int = ACT_BITS) -> int:
    """Packed words (g fields of ``bits`` bits) per AXI beat; a word never spans two beats."""
    if g < 1 or bits < 1:
        raise ValueError(f"need g >= 1 and bits >= 1, got g={g}, bits={bits}")
    if g * bits > 64:
        raise ValueError(f"a word of g*bits = {g}*{bits} = {g * bits} bits exceeds 64 bits")
    if g * bits > axi_bits:
        raise ValueError(
            f"a word of g*bits = {g}*{bits} = {g * bits} bits does not fit a "
            f"{axi_bits}-bit AXI beat"
        )
    return host_io.words_per_beat(axi_bits, g, bits)


def activation_beats(channels: Any, pixels: Any, g: Any, axi_bits: int, bits: int = ACT_BITS
                     ) -> Any:
    """AXI beats of a packed map: ceil(ceil(C/g) * pixels / wpb), vectorised over numpy arrays
    (the hardware model's transfer sizes use this; parameters are not validated here)."""
    g = np.asarray(g)
    words = -(-np.asarray(channels) // g) * np.asarray(pixels)
    wpb = np.maximum(1, axi_bits // (bits * g))
    return -(-words // wpb)


def _act_geometry(shape: tuple[int, ...], bits: int, g: int, axi_bits: int) -> tuple[int, ...]:
    """(C, H, W, groups, words, wpb, beats) of a feature map, after validating the parameters."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        shape = (shape[0], 1, 1)
    if len(shape) != 3 or min(shape) < 0:
        raise ValueError(f"activation shape must be [C, H, W] or [F], got {shape}")
    activation_format(bits)  # validates the bit width
    if axi_bits < 8 or axi_bits % 8:
        raise ValueError(f"axi_bits must be a positive multiple of 8, got {axi_bits}")
    wpb = words_per_beat(axi_bits, g, bits)
    c, h, w = shape
    groups = -(-c // g)
    words = groups * h * w
    return c, h, w, groups, words, wpb, int(activation_beats(c, h * w, g, axi_bits, bits))


def activation_bytes(shape: tuple[int, ...], bits: int, g: int, axi_bits: int) -> int:
    """Bytes ``pack_activations`` produces for a feature map of ``shape`` (whole beats)."""
    beats = _act_geometry(shape, bits, g, axi_bits)[-1]
    return beats * axi_bits // 8


def pack_activations(q: np.ndarray, bits: int, signed: bool, g: int, axi_bits: int) -> np.ndarray:
    """Pack a [C, H, W] (or [F]) activation map into uint8 AXI beats [n_beats, axi_bits/8]."""
    a = np.asarray(q)
    _check_integer(a, "activations")
    if a.ndim not in (1, 3):
        raise ValueError(f"activations must be [C, H, W] or [F], got shape {a.shape}")
    c, h, w, *_ = _act_geometry(a.shape, bits, g, axi_bits)
    _check_range(a, activation_format(bits, signed), "activations")
    return host_io.pack_activations(a.reshape(c, h, w), bits, g, axi_bits)


def unpack_activations(
    buf: np.ndarray, shape: tuple[int, ...], bits: int, signed: bool, g: int, axi_bits: int
) -> np.ndarray:
    """Inverse of ``pack_activations``: packed bytes (any shape) to an int32 map of ``shape``."""
    b = np.asarray(buf)
    if b.dtype != np.uint8:
        raise ValueError(f"packed activations must be uint8 bytes, got dtype {b.dtype}")
    c, h, w, *_, beats = _act_geometry(shape, bits, g, axi_bits)
    expected = beats * axi_bits // 8
    if b.size != expected:
        raise ValueError(
            f"packed activations of shape {tuple(shape)} need {expected} bytes, got {b.size}"
        )
    out = host_io.unpack_activations(b, (c, h, w), bits, signed, g, axi_bits)
    return out.reshape(tuple(int(s) for s in shape))
