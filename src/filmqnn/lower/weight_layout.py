"""Weight stream layout in DDR: one stream per precision, tile by tile, packed (DESIGN.md §4).

The stream of precision b holds, in this order, for every output tile (Tm filter positions),
every input chunk (Tn channels), every filter position of the tile with b-bit slots, every
kernel row and column: a run of the chunk's input channels. A depthwise filter's run is its
K*K taps instead. Values of b <= 4 bits are packed two per byte (`packing.pack_int4`, low
nibble first); every run is padded with one zero to an even length there. Values of 5..8 bits
take one byte each (two's complement).
"""

import numpy as np

from filmqnn.lower.packing import pack_int4, unpack_int4
from filmqnn.lower.tiling import Tiling

NIBBLE_MAX_BITS = 4


def _as_4d(shape: tuple[int, ...], depthwise: bool) -> tuple[int, int, int, int]:
    if len(shape) == 2:  # fc [M, F]
        return shape[0], shape[1], 1, 1
    m, c, kh, kw = shape
    return (m, kh * kw, 1, 1) if depthwise else (m, c, kh, kw)


def stream_index(
    shape: tuple[int, ...], slot_bits: np.ndarray, bits: int, tiling: Tiling, depthwise: bool
) -> np.ndarray:
    """Flat indices into the weight array in stream order; -1 marks a padding nibble."""
    m, c, kh, kw = _as_4d(shape, depthwise)
    tn = c if depthwise else tiling.tn
    f_sel = np.flatnonzero(slot_bits == bits)
    f, ch, y, x = np.meshgrid(f_sel, np.arange(c), np.arange(kh), np.arange(kw), indexing="ij")
    idx = ((f * c + ch) * kh + y) * kw + x
    keys = [a.ravel() for a in (ch, x, y, f, ch // tn, f // tiling.tm)]
    idx = idx.ravel()
    last = c - (c - 1) // tn * tn  # length of the last chunk's runs
    if bits <= NIBBLE_MAX_BITS and last % 2:
        pf, py, px = np.meshgrid(f_sel, np.arange(kh), np.arange(kw), indexing="ij")
        pad_keys = [np.full(pf.size, c), px.ravel(), py.ravel(), pf.ravel(),
                    np.full(pf.size, (c - 1) // tn), pf.ravel() // tiling.tm]
        keys = [np.concatenate([k, p]) for k, p in zip(keys, pad_keys, strict=True)]
        idx = np.concatenate([idx, np.full(pf.size, -1)])
    return idx[np.lexsort(keys)]


def stream_bits(slot_bits: np.ndarray) -> list[int]:
    """The precisions that have a stream in a layer, ascending."""
    return sorted(int(b) for b in np.unique(slot_bits))


def pack_stream(weight: np.ndarray, index: np.ndarray, bits: int) -> np.ndarray:
    """The bytes of one precision's stream (uint8)."""
    flat = weight.reshape(-1).astype(np.int8)
    vals = np.where(index >= 0, flat[np.maximum(index, 0)], 0).astype(np.int8)
    return pack_int4(vals) if bits <= NIBBLE_MAX_BITS else vals.view(np.uint8)


def stream_bytes(index: np.ndarray, bits: int) -> int:
    """Size in bytes of a stream with this index."""
    return len(index) // 2 if bits <= NIBBLE_MAX_BITS else len(index)


def unpack_streams(
    streams: dict[int, np.ndarray],
    shape: tuple[int, ...],
    slot_bits: np.ndarray,
    tiling: Tiling,
    depthwise: bool,
) -> np.ndarray:
    """The int8 weight array of a layer from its per-precision streams (inverse of pack)."""
    flat = np.zeros(int(np.prod(shape)), dtype=np.int8)
    for bits, buf in streams.items():
        index = stream_index(shape, slot_bits, bits, tiling, depthwise)
        vals = unpack_int4(buf) if bits <= NIBBLE_MAX_BITS else buf.view(np.int8)
        if len(vals) != len(index):
            raise ValueError(f"{bits}-bit weight stream holds {len(vals)} values, expected "
                             f"{len(index)}")
        keep = index >= 0
        flat[index[keep]] = vals[keep]
    return flat.reshape(shape)
