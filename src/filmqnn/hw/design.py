"""A design point of the convolution engine and the engine-level layer mapping.

The engine (DESIGN.md §4) has two PE arrays on one input tile: PE4 (``Tm4 x Tn`` rows x
columns, 4-bit weights) and PE8 (``Tm8 x Tn``, 8-bit weights); every PE position computes
``PIXELS`` adjacent output pixels per cycle because the DSP packing shares one weight between
two pixels (``dsp_packing`` "paper" schemes). ``dsp4`` / ``dsp8`` are the PE positions of each
array that sit on packed DSPs; the rest are on LUTs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from filmqnn.formats import ACT_BITS
from filmqnn.hw.devices import Board
from filmqnn.hw.layers import LayerShape
from filmqnn.hw.residency import StoreLayout, place_tensors, store_layout
from filmqnn.lower import packing

#: Output pixels computed per PE position per cycle (the packed DSP holds 2 pixels' products).
PIXELS = 2
#: Cycles to refill a PE row's weight registers for the next kernel tap (weights stay in
#: registers for the Tr*Tc/PIXELS cycles of one tap; the weight bank is sized for this).
WEIGHT_RELOAD = 16


def raw_window(k: int, stride: int) -> int:
    """Columns of the on-chip im2col's window register (and of a raw tile bank's word): whole
    pixel pairs' ``PIXELS*stride`` columns, at least the ``K + stride`` a pair's taps span."""
    s2 = PIXELS * stride
    return (-(-(k - 1) // s2) + 1) * s2


@dataclass(frozen=True)
class EngineOptions:
    """Engine features the model assumes (each is a mode the HLS kernel must implement).

    split8: layers whose filters are all 8-bit (first conv, last FC) also run on PE4, an 8-bit
        filter taking two PE4 rows (high and low nibble) plus one shared input-sum row that
        corrects the low nibble's offset; without it they run on PE8 alone.
    first_im2col: the first conv runs unrolled (N*K*K channels, 1x1 kernel), so the
        3-channel input does not leave most of the Tn columns idle.
    im2col_onchip: with first_im2col, the engine reads the raw 8-bit input tile of an output
        tile with the first step of each of its groups (output passes), one burst per channel
        and row of the zero-padded map the host writes, and unrolls it on chip (a K x
        (K-1+2S) window register per channel and a tap mux in front of the columns); without
        it the host writes the unrolled input as two 5-bit planes to DDR, K*K times the
        input's size, read once per output pass.
    dw_taps: depthwise layers put the K*K kernel taps of a channel on the Tn columns of its
        PE row (a per-row sliding-window register feeds them); without it one column per row.
    axi_outstanding: the AXI masters keep several transactions in flight: a tile's reads are
        issued as soon as its buffer half is free and writes do not wait for their responses,
        so the AXI latency overlaps the previous transfer; without it every transfer pays it.
    layer_queue: the host writes one descriptor per layer into DDR and starts the engine once
        per frame; the engine fetches the next layer's descriptor itself. Without it the host
        starts every layer over AXI-lite and polls for "done".
    pipe_rewind: the compute pipeline runs on from one step of a group to the next (HLS
        ``pipeline rewind`` / one flattened loop over the group's steps), so its fill is paid
        once per group before the write-back, not once per step; a step lasts at least the
        pipeline depth so it never reads an accumulator the step before has not written.
        Without it every step pays the fill.
    fuse_stem_pool: the max pool straight after the first conv (ResNet stem) runs in that
        conv's write-back: the post lanes requantize every conv output, take the window
        maxima (a line of halo rows and columns from the neighbouring tiles kept on chip) and
        write only the pooled map: the same operations in the same order as the two layers,
        without the DDR round trip of the unpooled map.
    multi_chunk: a step of a 1x1 conv or FC loads and computes several Tn-channel chunks (as
        many as the weight banks, sized for the network's largest kernel, and the input banks
        hold), so short steps on small maps do not each wait out an AXI latency; a larger
        kernel does so when all its input channels fit (for ``input_reuse``).
    input_reuse: when one step holds all input channels of a conv / FC tile, the input stays
        on chip for all output passes of that tile (the weight banks alternate halves, the
        input half is kept), so later passes load weights only. A conv whose channels do not
        fit at the design's ``Tr`` may run with fewer rows per tile (a divisor of ``Tr``, a
        per-layer choice of its descriptor) where they do.
    fm_store: the DSE gives the BRAM18Ks a design leaves free (within the limits) to an
        on-chip feature-map store (``DesignPoint.store``, planned by ``residency``); without
        it designs get no store. A design's own ``store`` is modelled either way.
    band_fusion: a tensor whose only reader is the next conv / depthwise conv may sit in the
        store as a ring of rows instead of whole: the two layers run interleaved, one tile-row
        band of the consumer at a time (``residency.band_rows``), each band switch costing a
        layer start (``performance.band_switches``). Without it tensors are placed whole.
    """

    split8: bool = True
    first_im2col: bool = True
    im2col_onchip: bool = True
    dw_taps: bool = True
    axi_outstanding: bool = True
    layer_queue: bool = True
    pipe_rewind: bool = True
    fuse_stem_pool: bool = True
    multi_chunk: bool = True
    input_reuse: bool = True
    fm_store: bool = True
    band_fusion: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


#: Engine modes the generated HLS kernel implements (hls/templates/engine.cpp.j2), each
#: bit-exact in C-simulation; every other mode of ``EngineOptions`` is modelled only.
KERNEL_MODES = frozenset({"layer_queue", "first_im2col", "im2col_onchip", "split8", "dw_taps",
                          "multi_chunk", "input_reuse", "fm_store", "fuse_stem_pool",
                          "band_fusion"})
#: The option set of the implemented engine: ``explore``'s default.
IMPLEMENTED = EngineOptions(**{k: k in KERNEL_MODES for k in EngineOptions().to_dict()})


def kernel_only(opts: EngineOptions) -> bool:
    """Whether every mode ``opts`` turns on is one the generated kernel has."""
    return all(k in KERNEL_MODES for k, on in opts.to_dict().items() if on)


def mode_table(opts: EngineOptions) -> dict[str, dict[str, bool]]:
    """Per engine mode: on in ``opts``, and implemented in the kernel or modelled only."""
    return {k: {"on": on, "implemented": k in KERNEL_MODES} for k, on in opts.to_dict().items()}


def kernel_takes(Tm: Any, Tm8: Any, Tc: Any, G: Any, axi_bits: int) -> Any:
    """Designs the generated kernel takes: a pass writes whole activation words (G | Tm), a
    tile whole beats (words per beat | Tc), and PE8 has a row for the all-8-bit layers."""
    wpb = np.maximum(1, axi_bits // (ACT_BITS * np.asarray(G)))
    return (np.asarray(Tm) % G == 0) & (np.asarray(Tc) % wpb == 0) & (np.asarray(Tm8) >= 1)


@dataclass(frozen=True)
class DesignPoint:
    """Tiling, PE split and packing factor of one accelerator instance."""

    Tm: int
    Tm8: int
    Tn: int
    Tr: int
    Tc: int
    G: int
    dsp4: int = 0  # PE4 positions on packed DSPs (of Tm4*Tn)
    dsp8: int = 0  # PE8 positions on packed DSPs (of Tm8*Tn)
    post: int = 16  # post-processing lanes: accumulators requantized per cycle
    clock_mhz: float = 100.0
    ports: int | None = None  # AXI ports the engine uses; None: all of the board's
    buf: int = 1  # input / weight banks this many times deeper than one step needs
    store: int = 0  # BRAM18Ks of the on-chip feature-map store (0: every tensor in DDR)
    # the store's plan may hold band rings (``band_fusion``); the DSE turns it off for a
    # design whose rings cost more in band restarts than they save in DDR traffic
    rings: bool = True
    # store banks per AXI port: beats the store reads or writes per port and cycle
    store_banks: int = 1
    # the output accumulators in LUTRAM (distributed RAM) instead of BRAM18Ks: a tile's
    # accumulator banks are shallow, so this trades LUTs for BRAMs the store can take
    acc_lutram: bool = False
    # the on-chip im2col's raw 8-bit tile banks in LUTRAM instead of BRAM18Ks (likewise)
    raw_lutram: bool = False

    @property
    def band_tr(self) -> int:
        """The tile rows the store's band rings are planned for (0: no rings)."""
        return self.Tr if self.rings else 0

    def store_layout(self, board: Board) -> StoreLayout:
        """The beats the design's feature-map store holds on ``board`` and their layout."""
        return store_layout(self.store, self.G, self.store_bank_count(board),
                            board.axi_width_bits)

    def store_bank_count(self, board: Board) -> int:
        """Banks of the feature-map store on ``board``: ``store_banks`` per AXI port."""
        return self.axi_ports(board) * self.store_banks

    def axi_ports(self, board: Board) -> int:
        """AXI ports this design uses on ``board`` (checked against the board's count)."""
        if self.ports is None:
            return board.axi_ports
        if not 1 <= self.ports <= board.axi_ports:
            raise ValueError(
                f"ports must lie in [1, {board.axi_ports}] on {board.name}, got {self.ports}"
            )
        return self.ports

    @property
    def Tm4(self) -> int:
        """Rows of the 4-bit array."""
        return self.Tm - self.Tm8

    @property
    def macs_per_cycle(self) -> int:
        """Peak MACs per cycle of both arrays."""
        return self.Tm * self.Tn * PIXELS

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready) with the derived Tm4 and peak MACs."""
        d = asdict(self)
        d["Tm4"] = self.Tm4
        d["macs_per_cycle"] = self.macs_per_cycle
        return d


def ring_rows(Tr: Any, opts: EngineOptions) -> Any:
    """The tile rows the store's band rings are planned for: the design's ``Tr`` with
    ``band_fusion``, else 0 (whole tensors only)."""
    return Tr if opts.band_fusion else np.zeros_like(Tr)


def engine_layers(
    layers: list[LayerShape], opts: EngineOptions, store: StoreLayout | None = None,
    rows: int = 0,
) -> list[LayerShape]:
    """Layers as the engine runs them: the first conv's 8-bit input becomes two 5-bit planes
    (high and low nibble, accumulated with a 4-bit shift between them), optionally im2col'd
    (on chip from the raw input, or by the host); the stem's max pool optionally fused; the
    tensors the feature-map store ``store`` holds marked on chip (band rings for a
    design with ``rows`` tile rows when ``band_fusion`` is on)."""
    out: list[LayerShape] = []
    for ly in layers:
        if opts.fuse_stem_pool and ly.kind == "maxpool" and out and _pools(out[-1], ly):
            out[-1] = replace(out[-1], pool=(ly.K, ly.stride, ly.pad), tout=ly.tout)
            continue
        if ly.first and ly.kind == "conv":
            if opts.first_im2col and ly.K > 1:
                raw = (ly.N, ly.K, ly.stride) if opts.im2col_onchip else None
                ly = replace(
                    ly, N=ly.N * ly.K * ly.K, H=ly.R, W=ly.C, K=1, stride=1, pad=0, raw=raw
                )
            ly = replace(ly, planes=2)
        out.append(ly)
    return place_tensors(out, store if opts.fm_store else None, int(ring_rows(rows, opts)))


@cache
def pool_tiling(pool: tuple[int, int, int], n_in: int, n_out: int, tile: int
                ) -> tuple[int, int]:
    """A max pool fused into a conv's write-back, along one axis of ``n_in`` conv and
    ``n_out`` pooled lines tiled by ``tile`` conv lines: (halo, most). A tile completes the
    pooled lines whose window ends in it; ``halo`` is the most conv lines before a tile that
    those windows reach back to (kept from the tile before), ``most`` the most pooled lines
    one tile completes."""
    k, s, p = pool
    halo = most = 0
    for t0 in range(0, n_in, tile):
        done = [i for i in range(n_out)
                if t0 <= min(i * s - p + k - 1, n_in - 1) < t0 + tile]
        if done:
            halo = max(halo, t0 - max(done[0] * s - p, 0))
            most = max(most, len(done))
    return halo, most


def _pools(conv: LayerShape, pool: LayerShape) -> bool:
    """Whether ``pool`` is the max pool of the first conv's output (the ResNet stem)."""
    return conv.first and conv.kind == "conv" and conv.pool is None and (
        (pool.N, pool.H, pool.W) == (conv.M, conv.R, conv.C)
    )


def dw_pixels(dsp4: Any) -> Any:
    """Output pixels per cycle of a depthwise PE row: a packed PE4 DSP multiplies two rows'
    weights by one activation pair, and depthwise rows need different channels, so 1 on DSPs."""
    return np.where(np.asarray(dsp4) > 0, 1, PIXELS)


def words_per_beat(axi_bits: int, G: int) -> int:
    """Packed activation words (G x 5 bits) per AXI beat; the rule lives in lower.packing."""
    return packing.words_per_beat(axi_bits, G, ACT_BITS)


def check_design(d: DesignPoint) -> None:
    """Raise ValueError when a design point's parameters are inconsistent."""
    for k in ("Tm", "Tn", "Tr", "Tc", "G", "post", "buf"):
        if getattr(d, k) < 1:
            raise ValueError(f"{k} must be >= 1")
    if d.store < 0:
        raise ValueError("store must be >= 0 BRAM18Ks")
    if not 0 <= d.Tm8 <= d.Tm:
        raise ValueError("Tm8 must lie in [0, Tm]")
    if not 0 <= d.dsp4 <= d.Tm4 * d.Tn or not 0 <= d.dsp8 <= d.Tm8 * d.Tn:
        raise ValueError("dsp4/dsp8 must not exceed the PE positions of their array")
    if d.clock_mhz <= 0 or not math.isfinite(d.clock_mhz):
        raise ValueError("clock_mhz must be positive")


def design_arrays(d: DesignPoint, board: Board) -> dict[str, Any]:
    """One design on ``board`` as the length-1 arrays the vectorised models take."""
    keys = ("Tm4", "Tm8", "Tn", "Tr", "Tc", "G", "dsp4", "dsp8", "post", "buf", "store",
            "rings", "store_banks", "acc_lutram", "raw_lutram")
    D = {k: np.array([getattr(d, k)]) for k in keys}
    D["ports"] = np.array([d.axi_ports(board)])
    return D
