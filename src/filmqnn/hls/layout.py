"""The engine's DDR image: layer descriptors, tables, weight blocks and activation buffers.

One definition, read by the Python writer (``ddr_image``) and by the generated C++ (the
descriptor field indices and the layout constants go into ``engine_config.h``):

* every region starts on an AXI beat; addresses in descriptors are beat offsets; an address
  with bit ``STORE_BIT`` set is a beat of the on-chip feature-map store instead (a tensor
  the model's store plan, ``hw.residency``, holds on chip; it has no DDR region);
* a 5-bit activation tensor [C, H, W] is ``lower.packing.pack_activations`` of the tensor
  zero-padded on the right to ``row_words(W)`` columns, so every row of every channel group
  starts on a beat (the engine writes whole beats);
* the network input (signed 8-bit) is two such 5-bit tensors: the high nibble ``x >> 4``
  (-8..7) and the low nibble ``x & 15`` (0..15); the first conv accumulates the high plane,
  shifts its accumulator left by 4 and accumulates the low plane. With ``first_im2col`` and
  without ``im2col_onchip`` they are the planes of the host-unrolled input
  (``ddr_image.unroll``: N*K*K channels, a 1x1 conv);
* with ``im2col_onchip`` the network input is instead one region of raw signed 8-bit bytes
  (``pynq.host_io.pack_raw``): the [C, H, W] map zero-padded by the first conv's padding
  (ph, pw) on every side, channel-major rows of ``W + 2 pw`` two's-complement bytes (byte k
  of a beat in bits 8k .. 8k + 7), every row padded with zero bytes to whole beats
  (``Geometry.raw_row_beats``), so map row y of channel c starts at beat
  ``(c * (H + 2 ph) + y) * raw_row_beats``. The engine reads an output tile's raw input as
  one burst per channel and row, ``(tr - 1) sh + kh`` rows of the beats that columns
  ``c0 sw .. c0 sw + (tc - 1) sw + kw - 1`` touch (the padding is in the image, so no read is
  clipped), and unrolls it on chip into the two 5-bit planes of the host's unroll. Its
  descriptor (flag ``raw``) carries the conv's own geometry (n = C, h, w, kernel, stride,
  padding); its weights are those of the unrolled 1x1 conv (N*K*K channels);
* with ``band_fusion`` a tensor whose only reader is the next layer may sit in the store as a
  ring of ``ring`` rows (``hw.residency.band_rows``): map row y of channel group g is at beat
  ``(g * ring + y % ring) * row_beats``; producer and consumer then run interleaved, one
  descriptor per band of output rows (``hw.residency.band_schedule``), so each row is written
  before it is read and overwritten only once no later band reads it;
* an int32 output [M] is stored pass by pass: the ``Tm`` channels of a pass fill whole beats;
* weights: per layer two streams, PE8 (one byte per weight) and PE4 (two 4-bit weights per
  byte, ``packing.pack_int4``); each holds, per output tile of ``Tm`` filter positions and per
  input chunk of ``Tn`` channels, one beat-aligned block of that tile's filters of the stream,
  each filter a run of (kernel row, kernel column, channel) values as in
  ``lower.weight_layout`` (depthwise: a run of the K*K taps);
* a per-layer table of ``TABLE_WORDS`` 32-bit words per output channel (bias, rounding offset,
  multiplier | shift << 16, skip multiplier), and an optional index table of 4 x M 32-bit
  words: the physical source channel of each position for the input / b gather and for the
  skip gather, then for each the positions of every Tm tile sorted by source channel (the
  order the kernel reads them in, ``ddr_image.gather_order``).
"""

from __future__ import annotations

from dataclasses import dataclass

from filmqnn.hw.buffers import REQUANT_TABLE_BYTES
from filmqnn.hw.performance import DESC_BEATS
from filmqnn.pynq.host_io import raw_row_bytes

#: Address bit that selects the feature-map store (its beat offset in the bits below).
STORE_BIT = 31

#: 32-bit fields of a layer descriptor, in order (the C++ reads them by these indices).
DESC_FIELDS = (
    "op", "flags", "n", "m", "h", "w", "r", "c", "kh", "kw", "sh", "sw", "ph", "pw", "planes",
    "lo", "hi", "in_addr", "in2_addr", "skip_addr", "out_addr", "w4_addr", "w8_addr",
    "table_addr", "index_addr", "skip_h", "skip_w", "chunks", "rows",
    "pool", "pr", "pc",  # a fused max pool: kernel | stride << 8 | pad << 16, pooled rows, cols
    # the output rows [r_lo, r_hi) this descriptor runs (a band of a band-fused layer, else
    # the whole map), and the rows the band rings of its input / output hold (0: whole)
    "r_lo", "r_hi", "in_ring", "out_ring",
)
DESC_WORDS = 40  # whole beats of every AXI width up to 256 bits
DESC_BYTES = DESC_WORDS * 4
#: op codes of the engine's layer kinds
OPS = {"conv": 0, "dwconv": 1, "maxpool": 2, "gap": 3, "add": 4}
#: flag bits
FLAGS = {
    "requant": 1 << 0,  # requantize to 5 bit (else write int32 accumulators)
    "residual": 1 << 1,  # fused residual add (skip operand at skip_addr)
    "signed_in": 1 << 2,  # input activations are signed 5-bit
    "all8": 1 << 3,  # every filter position is 8-bit: steps of Tm8 filters on PE8
    "in_index": 1 << 4,  # the input (depthwise) or b operand (add) is gathered by the index
    "skip_index": 1 << 5,  # the skip operand is gathered by the index
    "signed_skip": 1 << 6,  # the skip / b operand is signed
    "split8": 1 << 7,  # an all8 layer's steps also put SPLIT_K filters on PE4 as nibble pairs
    "raw": 1 << 8,  # the first conv reads the raw 8-bit input and unrolls it on chip (im2col)
    "pool": 1 << 9,  # a max pool fused into the write-back writes the pooled map only
}
TABLE_WORDS = REQUANT_TABLE_BYTES // 4
INT32_BYTES = 4

assert len(DESC_FIELDS) <= DESC_WORDS
assert DESC_BYTES * 8 <= DESC_BEATS * 64, "hw.performance.DESC_BEATS counts the descriptor"


@dataclass(frozen=True)
class Geometry:
    """Beat geometry of a design: AXI width, activations per word (G), words per beat."""

    axi_bits: int
    g: int
    act_bits: int = 5

    @property
    def beat_bytes(self) -> int:
        return self.axi_bits // 8

    @property
    def wpb(self) -> int:
        """Packed words per beat (a word never spans two beats)."""
        return max(1, self.axi_bits // (self.g * self.act_bits))

    def row_beats(self, w: int) -> int:
        """Beats of one row of one channel group."""
        return -(-w // self.wpb)

    def row_words(self, w: int) -> int:
        return self.row_beats(w) * self.wpb

    def act_beats(self, shape: tuple[int, ...]) -> int:
        """Beats of a 5-bit activation tensor [C, H, W] (or [F] as [F, 1, 1])."""
        c, h, w = (shape[0], 1, 1) if len(shape) == 1 else shape
        return -(-c // self.g) * h * self.row_beats(w)

    def raw_row_beats(self, w: int, pw: int) -> int:
        """Beats of one row of the raw 8-bit input, padded by ``pw`` on both sides (the
        host's rule, ``pynq.host_io.raw_row_bytes``)."""
        return raw_row_bytes(w, pw, self.axi_bits) // self.beat_bytes

    def raw_beats(self, shape: tuple[int, ...], pad: tuple[int, int]) -> int:
        """Beats of the raw 8-bit input [C, H, W] zero-padded by ``pad`` = (ph, pw)."""
        c, h, w = shape
        return c * (h + 2 * pad[0]) * self.raw_row_beats(w, pad[1])

    def int32_beats(self, m: int, tm: int) -> int:
        """Beats of an int32 output of m channels stored pass by pass (tm per pass)."""
        per_pass = -(-tm * INT32_BYTES // self.beat_bytes)
        return -(-m // tm) * per_pass

    def bytes_to_beats(self, nbytes: int) -> int:
        return -(-nbytes // self.beat_bytes)


def run_bytes(tn: int, bits: int) -> int:
    """Bytes of one filter's run of ``tn`` values in a stream of ``bits`` (4: nibbles)."""
    return -(-tn // 2) if bits == 4 else tn


def block_beats(geo: Geometry, nf: int, taps: int, tn: int, bits: int) -> int:
    """Beats of one weight block: ``nf`` filters x ``taps`` x a run of ``tn`` channels."""
    return geo.bytes_to_beats(nf * taps * run_bytes(tn, bits))
