"""Host-side data of the engine's DDR image: the one implementation, numpy only.

The board driver (``driver.py``, Python 3.8 on a PYNQ image) and filmqnn's own stages
(``lower.packing``, ``hls.ddr_image``, the C-simulation) all pack and unpack through this
module, so the bytes the board writes are the bytes the tests check. It imports nothing from
filmqnn (it is copied into the deploy bundle) and keeps to Python 3.8 syntax.

Rules (``hls.layout`` documents the image, ``lower.packing`` the bit layout of a word):

* a 5-bit map [C, H, W] is packed as words of ``g`` channels (channel ``cg*g + i`` in bits
  ``[i*bits, (i+1)*bits)``), words row-major over [ceil(C/g), H, W], ``words_per_beat`` words
  per little-endian AXI beat; the engine pads every row to whole beats (``row_words``);
* the network input (signed 8-bit) is two such signed 5-bit planes, ``x >> 4`` then
  ``x & 15``, after the host's im2col unrolling when the layout asks for it (``unroll``);
  or, when the engine unrolls the first conv on chip (the layout's ``input_raw``, the
  padding (ph, pw)), one region of raw bytes: the map zero-padded by (ph, pw), channel-major
  rows of ``W + 2 pw`` two's-complement bytes, each row padded with zeros to whole beats
  (``pack_raw``);
* an int32 output of M channels is stored pass by pass, ``tm`` channels per pass, each pass
  padded to whole beats.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = [
    "decode_region",
    "input_writes",
    "pack_activations",
    "pack_raw",
    "pack_tensor",
    "quantize_images",
    "restore_order",
    "row_words",
    "unpack_activations",
    "unroll",
    "words_per_beat",
]


def words_per_beat(axi_bits: int, g: int, bits: int) -> int:
    """Packed words (``g`` fields of ``bits`` bits) per AXI beat; a word never spans beats."""
    return max(1, axi_bits // (bits * g))


def row_words(w: int, g: int, axi_bits: int, bits: int) -> int:
    """Words of one row of ``w`` pixels padded to whole beats (the engine's row stride)."""
    wpb = words_per_beat(axi_bits, g, bits)
    return -(-w // wpb) * wpb


def _beats(c: int, h: int, w: int, g: int, axi_bits: int, bits: int) -> int:
    return -(-(-(-c // g) * h * w) // words_per_beat(axi_bits, g, bits))


def pack_activations(q: np.ndarray, bits: int, g: int, axi_bits: int) -> np.ndarray:
    """Pack an integer map [C, H, W] into uint8 AXI beats [n_beats, axi_bits/8] (fields are
    masked to ``bits`` bits: range checks are the caller's): each word of ``g`` fields (at most
    64 bits, as ``lower.packing`` allows) as one integer, a beat's words shifted into its
    64-bit lanes."""
    if g * bits > 64:
        raise ValueError(f"a word of g*bits = {g}*{bits} = {g * bits} bits exceeds 64 bits")
    a = np.asarray(q)
    c, h, w = a.shape
    groups = -(-c // g)
    words = groups * h * w
    wpb = words_per_beat(axi_bits, g, bits)
    beats = _beats(c, h, w, g, axi_bits, bits)
    fields = np.zeros((groups * g, h, w), dtype=np.uint64)
    fields[:c] = a.astype(np.int64) & ((1 << bits) - 1)
    fields = fields.reshape(groups, g, h, w)
    word = np.zeros((groups, h, w), dtype=np.uint64)
    for f in range(g):
        word |= fields[:, f] << np.uint64(f * bits)
    slots = np.zeros(beats * wpb, dtype=np.uint64)
    slots[:words] = word.ravel()
    slots = slots.reshape(beats, wpb)
    wb, n_lanes = g * bits, -(-axi_bits // 64)
    lanes = np.zeros((beats, n_lanes), dtype=np.uint64)
    for k in range(wpb):
        off = k * wb
        for lane in range(n_lanes):
            lo = 64 * lane
            if off + wb <= lo or off >= lo + 64:
                continue
            if off >= lo:
                lanes[:, lane] |= slots[:, k] << np.uint64(off - lo)
            else:
                lanes[:, lane] |= slots[:, k] >> np.uint64(lo - off)
    raw = lanes.astype("<u8").view(np.uint8).reshape(beats, n_lanes * 8)
    return np.ascontiguousarray(raw[:, : axi_bits // 8])


def unpack_activations(buf: np.ndarray, shape: Sequence[int], bits: int, signed: bool, g: int,
                       axi_bits: int) -> np.ndarray:
    """Inverse of ``pack_activations``: whole beats of uint8 bytes to an int32 map [C, H, W]."""
    c, h, w = (int(s) for s in shape)
    groups = -(-c // g)
    words = groups * h * w
    wpb = words_per_beat(axi_bits, g, bits)
    beats = _beats(c, h, w, g, axi_bits, bits)
    b = np.asarray(buf, dtype=np.uint8).reshape(beats, axi_bits // 8)
    beat_bits = np.unpackbits(b, axis=1, bitorder="little")
    wbits = beat_bits[:, : wpb * g * bits].reshape(beats * wpb, g, bits)[:words]
    fields = (wbits.astype(np.int64) << np.arange(bits)).sum(axis=-1)  # [words, g]
    if signed:
        fields -= (fields >> (bits - 1)) << bits
    out = fields.reshape(groups, h, w, g).transpose(0, 3, 1, 2).reshape(groups * g, h, w)
    return out[:c].astype(np.int32)


def _chw(q: np.ndarray) -> np.ndarray:
    return q if q.ndim == 3 else q.reshape(q.shape[0], 1, 1)


def pack_tensor(q: np.ndarray, signed: bool, g: int, axi_bits: int, bits: int) -> bytes:
    """The bytes of a ``bits``-bit [C, H, W] (or [F]) tensor in the engine's layout: every
    row padded with zero words to whole beats."""
    a = _chw(np.asarray(q))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"values span {a.min()}..{a.max()}; the {bits}-bit {kind} format "
                         f"allows {lo}..{hi}")
    c, h, w = a.shape
    padded = np.zeros((c, h, row_words(w, g, axi_bits, bits)), dtype=np.int64)
    padded[:, :, :w] = a
    return pack_activations(padded, bits, g, axi_bits).tobytes()


def unroll(x: np.ndarray, im2col: Sequence[int]) -> np.ndarray:
    """The first conv's input as the host unrolls it: [C*KH*KW, R, C'] (channel c*KH*KW +
    i*KW + j holds tap (i, j)), the layout of a 1x1 conv over the filters' flattened taps."""
    kh, kw, sh, sw, ph, pw = (int(v) for v in im2col)
    xp = np.pad(np.asarray(x), ((0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    return win.transpose(0, 3, 4, 1, 2).reshape(-1, win.shape[1], win.shape[2])


def raw_row_bytes(w: int, pw: int, axi_bits: int) -> int:
    """Bytes of one row of the raw input in DDR: ``w + 2 pw`` padded to whole beats."""
    bb = axi_bits // 8
    return -(-(w + 2 * pw) // bb) * bb


def pack_raw(x: np.ndarray, pad: Sequence[int], axi_bits: int) -> bytes:
    """The bytes of a signed 8-bit map [C, H, W] as the engine's on-chip im2col reads it:
    zero-padded by ``pad`` = (ph, pw) on every side, [C, H + 2 ph] rows of ``W + 2 pw``
    bytes (two's complement), each row padded with zero bytes to whole beats."""
    a = np.asarray(x, dtype=np.int64)
    ph, pw = (int(v) for v in pad)
    c, h, w = a.shape
    out = np.zeros((c, h + 2 * ph, raw_row_bytes(w, pw, axi_bits)), dtype=np.int64)
    out[:, ph:ph + h, pw:pw + w] = a
    return out.astype(np.int8).tobytes()


def input_writes(x_int: np.ndarray, plane_addrs: Sequence[int], g: int, axi_bits: int,
                 bits: int, im2col: Sequence[int] | None = None,
                 raw: Sequence[int] | None = None) -> list[tuple[int, np.ndarray]]:
    """(byte offset, uint8 bytes) writes of one signed 8-bit frame [C, H, W]: its high and low
    nibble planes at the planes' beat addresses (unrolled first when ``im2col`` is set), or
    with ``raw`` (the padding (ph, pw) of an on-chip im2col) the padded raw bytes at the
    first address (``pack_raw``)."""
    x = np.asarray(x_int, dtype=np.int64)
    if x.size and (int(x.min()) < -128 or int(x.max()) > 127):
        raise ValueError(f"input values span {x.min()}..{x.max()}; the network input is "
                         "signed 8-bit (-128..127)")
    bb = axi_bits // 8
    if raw is not None:
        return [(int(plane_addrs[0]) * bb, np.frombuffer(pack_raw(x, raw, axi_bits), np.uint8))]
    if im2col:
        x = unroll(x, im2col)
    out = []
    for addr, plane in zip(plane_addrs, (x >> 4, x & 15)):
        raw = np.frombuffer(pack_tensor(plane, True, g, axi_bits, bits), np.uint8)
        out.append((int(addr) * bb, raw))
    return out


def decode_region(raw: np.ndarray, region: dict[str, Any], g: int, axi_bits: int, bits: int,
                  tm: int) -> np.ndarray:
    """A tensor from its region's bytes (``region``: the layout's dict of addr, beats, kind,
    shape, signed), in physical channel order: int64 [M] or int32 5-bit [C, H, W]."""
    bb = axi_bits // 8
    raw = np.asarray(raw, dtype=np.uint8)[: int(region["beats"]) * bb]
    shape = tuple(int(s) for s in region["shape"])
    if region["kind"] == "int32":
        seg = -(-tm * 4 // bb) * bb
        per = raw.reshape(-1, seg)[:, : tm * 4].copy().view("<i4").reshape(-1)
        return per[: shape[0]].reshape(shape).astype(np.int64)
    c, h, w = shape if len(shape) == 3 else (shape[0], 1, 1)
    full = unpack_activations(raw, (c, h, row_words(w, g, axi_bits, bits)), bits,
                              bool(region["signed"]), g, axi_bits)
    return full[:, :, :w].reshape(shape)


def restore_order(y: np.ndarray, order: Sequence[int] | None) -> np.ndarray:
    """Channels (axis 0) of a tensor in physical order back in the network's original order:
    physical channel k is original channel ``order[k]``."""
    if order is None:
        return y
    z = np.empty_like(y)
    z[np.asarray(order)] = y
    return z


def quantize_images(images: np.ndarray, mean: Sequence[float], std: Sequence[float],
                    scale: float, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """uint8 images [N, C, H, W] -> signed 8-bit frames (int64): the float32 steps of the
    training pipeline, ``x * (1 / (255 std)) - mean / std``, then ``round(x / scale)`` (half to
    even) clamped to ``qmin..qmax``."""
    c = images.shape[1]
    m = np.asarray(mean, np.float32).reshape(1, c, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, c, 1, 1)
    mul = np.float32(1.0) / (np.float32(255.0) * s)
    x = images.astype(np.float32) * mul - m / s
    q = np.round(x / np.float32(scale))
    return np.clip(q, qmin, qmax).astype(np.int64)
