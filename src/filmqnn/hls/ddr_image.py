"""Writes the engine's DDR image from an artifact's graph (rules in ``hls.layout``).

The image is what a board's DDR holds before the engine starts: the descriptor queue, every
layer's tables and weight streams, and one buffer per activation tensor. The host then writes
each frame's input (``write_input``: two 5-bit planes, or the padded raw bytes an on-chip
im2col reads) and reads the outputs (``read_tensor``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from filmqnn.formats import ACT_BITS
from filmqnn.hls.layout import (
    DESC_FIELDS,
    DESC_WORDS,
    FLAGS,
    OPS,
    STORE_BIT,
    TABLE_WORDS,
    Geometry,
    block_beats,
)
from filmqnn.hls.plan import EngineDesign, EngineLayer, band_runs, ring_shape
from filmqnn.lower.graph import IntGraph
from filmqnn.lower.packing import pack_int4
from filmqnn.pynq import host_io


@dataclass
class Region:
    """A beat-aligned range of the image holding one tensor, table or stream."""

    addr: int  # beat offset
    beats: int
    kind: str  # "act" | "int32" | "raw" | "table" | "index" | "w4" | "w8" | "queue" | "store"
    shape: tuple[int, ...] = ()
    signed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"addr": self.addr, "beats": self.beats, "kind": self.kind,
                "shape": list(self.shape), "signed": self.signed}

    @classmethod
    def from_dict(cls, r: dict[str, Any]) -> Region:
        return cls(r["addr"], r["beats"], r["kind"], tuple(r["shape"]), r["signed"])


def _stream(weight: np.ndarray, positions: list[np.ndarray], tn: int, depthwise: bool,
            bits: int, geo: Geometry) -> bytes:
    """One weight stream: per tile, per input chunk, a beat-padded block of its filters."""
    m, cin, kh, kw = weight.shape
    taps = kh * kw
    out = bytearray()
    for pos in positions:
        chunks = [(0, taps)] if depthwise else [(c0, min(tn, cin - c0))
                                                for c0 in range(0, cin, tn)]
        for c0, n in chunks:
            if depthwise:
                runs = weight[pos, 0].reshape(len(pos), 1, taps)
            else:
                runs = weight[pos, c0:c0 + n].transpose(0, 2, 3, 1).reshape(len(pos), taps, n)
            if bits == 4:
                if runs.shape[-1] % 2:
                    runs = np.concatenate([runs, np.zeros((*runs.shape[:-1], 1), np.int8)], -1)
                data = pack_int4(runs.astype(np.int64)).tobytes() if runs.size else b""
            else:
                data = runs.astype(np.int8).tobytes()
            nbeats = block_beats(geo, len(pos), 1 if depthwise else taps,
                                 taps if depthwise else n, bits)
            assert len(data) <= nbeats * geo.beat_bytes
            out += data + bytes(nbeats * geo.beat_bytes - len(data))
    return bytes(out)


def split_nibbles(w: np.ndarray) -> np.ndarray:
    """8-bit weights as [high nibbles; low nibbles - 8] (both -8..7): w = 16 hi + lo + 8, the
    8 times the input sum that the kernel adds (``FLAGS["split8"]``)."""
    w = np.asarray(w, np.int64)
    return np.concatenate([w >> 4, (w & 15) - 8]).astype(np.int8)


def weight_streams(ly: EngineLayer, d: EngineDesign) -> tuple[bytes, bytes]:
    """(PE4 stream, PE8 stream) of a conv / depthwise layer. A split8 layer's pass runs steps
    of ``Tm8 + split_k`` filters: the first Tm8 on PE8, the rest on PE4 as (high, low) nibble
    rows; each stream holds a pass's steps in order."""
    w = ly.weight
    m = w.shape[0]
    cap = d.Tm8 + d.split_k if ly.split8 else d.Tm8
    w4 = split_nibbles(w) if ly.split8 else w
    pos4, pos8 = [], []
    for t0 in range(0, m, d.Tm):
        p = np.arange(t0, min(m, t0 + d.Tm))
        if ly.all8:
            steps = [p[i:i + cap] for i in range(0, len(p), cap)]
            pos8.append(np.concatenate([f[: d.Tm8] for f in steps]))
            pos4.append(np.concatenate([np.stack([f[d.Tm8:], f[d.Tm8:] + m], -1).reshape(-1)
                                        for f in steps]))
        else:
            pos8.append(p[: d.Tm8])
            pos4.append(p[d.Tm8:])
    dw = ly.op == "dwconv"
    return (_stream(w4, pos4, d.Tn, dw, 4, d.geo), _stream(w, pos8, d.Tn, dw, 8, d.geo))


def _table(ly: EngineLayer) -> np.ndarray:
    """TABLE_WORDS uint32 words per entry (layout.py)."""
    p, op = ly.node.params, ly.op
    if op == "maxpool":
        return np.zeros((0, TABLE_WORDS), np.uint32)
    t = np.zeros((1 if op in ("gap", "add") else ly.shape["m"], TABLE_WORDS), np.int64)
    if op == "add":
        t[0] = [p["mult"][0], p["mult_b"][0], p["shift"][0], 0]
    elif op == "gap":
        t[0, 2] = int(p["mult"][0]) | int(p["shift"][0]) << 16
    else:
        t[:, 0] = p["bias"]
        if ly.node.requantizes:
            t[:, 1] = p["offset"]
            t[:, 2] = p["mult"] | (p["shift"].astype(np.int64) << 16)
            if "skip_mult" in p:
                t[:, 3] = p["skip_mult"]
    return (t & 0xFFFFFFFF).astype(np.uint32)


class ImageBuilder:
    """Lays out regions beat by beat and collects their bytes."""

    def __init__(self, geo: Geometry) -> None:
        self.geo = geo
        self.beats = 0
        self.chunks: list[tuple[int, bytes]] = []

    def add(self, nbeats: int, kind: str, data: bytes = b"", shape: tuple[int, ...] = (),
            signed: bool = False) -> Region:
        r = Region(self.beats, nbeats, kind, shape, signed)
        if data:
            assert len(data) <= nbeats * self.geo.beat_bytes
            self.chunks.append((self.beats, data))
        self.beats += nbeats
        return r

    def add_bytes(self, data: bytes, kind: str) -> Region:
        return self.add(self.geo.bytes_to_beats(len(data)), kind, data)

    def image(self) -> np.ndarray:
        buf = np.zeros(self.beats * self.geo.beat_bytes, np.uint8)
        for addr, data in self.chunks:
            o = addr * self.geo.beat_bytes
            buf[o:o + len(data)] = np.frombuffer(data, np.uint8)
        return buf


@dataclass
class DdrImage:
    """The image bytes and the map of its regions (tensors by name, per-layer regions)."""

    data: np.ndarray
    geo: Geometry
    queue: int
    n_layers: int  # descriptors in the queue (a band-fused layer has one per band)
    tensors: dict[str, Region]
    input_planes: tuple[Region, ...]  # the two 5-bit planes, or the one raw region
    outputs: list[str]
    layers: list[dict[str, Any]]
    im2col: tuple[int, ...] | None = None  # (kh, kw, sh, sw, ph, pw): host-unrolled input
    raw: tuple[int, int] | None = None  # (ph, pw): the raw input padded, unrolled on chip
    runs: list[list[int]] | None = None  # per descriptor: [layer index, first row, end row]

    def layout(self) -> dict[str, Any]:
        """JSON-ready map of the image (what the host and the board driver need)."""
        return {
            "beat_bytes": self.geo.beat_bytes, "axi_bits": self.geo.axi_bits, "g": self.geo.g,
            "beats": int(len(self.data) // self.geo.beat_bytes), "queue": self.queue,
            "n_layers": self.n_layers,
            "tensors": {k: r.to_dict() for k, r in self.tensors.items()},
            "input_planes": [r.to_dict() for r in self.input_planes],
            "outputs": self.outputs, "layers": self.layers,
            "input_im2col": list(self.im2col) if self.im2col else None,
            "input_raw": list(self.raw) if self.raw else None,
            "runs": self.runs,
        }

    @classmethod
    def from_layout(cls, lay: dict[str, Any]) -> DdrImage:
        """The map of an image from ``layout()`` (without its bytes): what the host needs to
        write inputs and read outputs."""
        reg = Region.from_dict
        return cls(np.zeros(0, np.uint8), Geometry(lay["axi_bits"], lay["g"]), lay["queue"],
                   lay["n_layers"], {k: reg(v) for k, v in lay["tensors"].items()},
                   tuple(reg(r) for r in lay["input_planes"]),
                   list(lay["outputs"]), list(lay["layers"]),
                   tuple(lay["input_im2col"]) if lay.get("input_im2col") else None,
                   tuple(lay["input_raw"]) if lay.get("input_raw") else None,
                   lay.get("runs"))


def gather_order(index: np.ndarray, tm: int) -> np.ndarray:
    """Per ``tm``-position tile, its positions sorted by the source channel they gather: the
    kernel reads a tile's gathered channels in this order, each channel group once."""
    idx = np.asarray(index, np.int64)
    return np.concatenate([t + np.argsort(idx[t:t + tm], kind="stable")
                           for t in range(0, len(idx), tm)]) if len(idx) else idx


def _act_region(b: ImageBuilder, shape: tuple[int, ...], signed: bool) -> Region:
    return b.add(b.geo.act_beats(shape), "act", shape=tuple(shape), signed=signed)


def build_image(graph: IntGraph, layers: list[EngineLayer], d: EngineDesign) -> DdrImage:
    """The DDR image of a planned network (``plan.plan_network``)."""
    geo = d.geo
    b = ImageBuilder(geo)
    runs = band_runs(layers, d)
    queue = b.add(geo.bytes_to_beats(len(runs) * DESC_WORDS * 4), "queue")
    head = next(ly for ly in layers if ly.inputs[0] == graph.input)
    raw_pad = None
    if head.raw is not None:  # one region of padded raw bytes (layout.py)
        c, h, w, _, _, _, _, ph, pw = head.raw
        raw_pad = (ph, pw)
        planes: tuple[Region, ...] = (b.add(geo.raw_beats((c, h, w), raw_pad), "raw",
                                            shape=(c, h, w), signed=True),)
    else:
        xs = (head.shape["n"], head.shape["h"], head.shape["w"])
        planes = (_act_region(b, xs, True), _act_region(b, xs, True))
    tensors: dict[str, Region] = {}
    descs, infos = [], []
    for ly in layers:
        s = ly.shape
        table = _table(ly)
        idx = []
        p = ly.node.params
        in_key = "in_index" if ly.op == "dwconv" else ("b_index" if ly.op == "add" else None)
        flags = 0
        if in_key and in_key in p:
            flags |= FLAGS["in_index"]
        if "skip_index" in p:
            flags |= FLAGS["skip_index"]
        if flags & (FLAGS["in_index"] | FLAGS["skip_index"]):
            m = s["m"]
            idx = np.zeros(4 * m, np.uint32)  # in, skip gathers; then their read orders
            if in_key in p:
                idx[:m] = p[in_key]
                idx[2 * m:3 * m] = gather_order(p[in_key], d.Tm)
            if "skip_index" in p:
                idx[m:2 * m] = p["skip_index"]
                idx[3 * m:] = gather_order(p["skip_index"], d.Tm)
        t_reg = b.add_bytes(table.tobytes(), "table") if table.size else None
        i_reg = b.add_bytes(np.asarray(idx, np.uint32).tobytes(), "index") if len(idx) else None
        w4 = w8 = None
        if ly.weight is not None:
            s4, s8 = weight_streams(ly, d)
            w4 = b.add_bytes(s4, "w4") if s4 else None
            w8 = b.add_bytes(s8, "w8") if s8 else None
        out = graph.tensors[ly.output]
        if ly.store_at >= 0:  # in the feature-map store (plan.plan_network checked it)
            o_reg = Region((1 << STORE_BIT) | ly.store_at,
                           geo.act_beats(ring_shape(out.shape, ly.ring)), "store",
                           tuple(out.shape), out.signed)
        elif ly.node.requantizes or ly.op == "maxpool":
            o_reg = _act_region(b, out.shape, out.signed)
        else:
            o_reg = b.add(geo.int32_beats(s["m"], d.Tm), "int32", shape=tuple(out.shape),
                          signed=True)
        tensors[ly.output] = o_reg
        first = ly.inputs[0] == graph.input
        in_reg = planes[0] if first else tensors[ly.inputs[0]]
        second = None
        if len(ly.inputs) > 1:
            second = tensors[ly.inputs[1]]
        if ly.node.requantizes or ly.op == "maxpool":
            flags |= FLAGS["requant"]
        if ly.op in ("conv", "dwconv") and len(ly.inputs) > 1:
            flags |= FLAGS["residual"]
        if ly.signed_in:
            flags |= FLAGS["signed_in"]
        if ly.all8:
            flags |= FLAGS["all8"]
        if ly.split8:
            flags |= FLAGS["split8"]
        if ly.signed_skip:
            flags |= FLAGS["signed_skip"]
        if ly.pool is not None:
            flags |= FLAGS["pool"]
        attrs = ly.node.attrs
        rows = ly.rows or d.Tr
        geom = dict(s)
        if ly.raw is not None:  # the conv's own geometry; the engine unrolls it (layout.py)
            flags |= FLAGS["raw"]
            geom.update(zip(("n", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw"), ly.raw,
                            strict=True))
        fields = {
            "op": OPS[ly.op], "flags": flags, **geom, "planes": ly.planes,
            "lo": attrs.get("lo", 0), "hi": attrs.get("hi", 0),
            "in_addr": in_reg.addr,
            "in2_addr": (planes[-1].addr if first else
                         (second.addr if ly.op == "add" else 0)),
            "skip_addr": second.addr if second is not None and ly.op != "add" else 0,
            "out_addr": o_reg.addr,
            "w4_addr": w4.addr if w4 else 0, "w8_addr": w8.addr if w8 else 0,
            "table_addr": t_reg.addr if t_reg else 0, "index_addr": i_reg.addr if i_reg else 0,
            "skip_h": second.shape[1] if second is not None else 0,
            "skip_w": second.shape[2] if second is not None else 0,
            "chunks": ly.chunks, "rows": rows,
            **(dict(zip(("pool", "pr", "pc"), (ly.pool[0] | ly.pool[1] << 8 | ly.pool[2] << 16,
                                               *ly.pool[3:]), strict=True))
               if ly.pool is not None else {"pool": 0, "pr": 0, "pc": 0}),
        }
        descs.append(fields)
        infos.append({"name": ly.node.name, "op": ly.op, **s, "all8": ly.all8,
                      "split8": ly.split8, "planes": ly.planes, "chunks": ly.chunks,
                      "rows": rows, "raw": list(ly.raw) if ly.raw is not None else None})
    q = np.zeros((len(runs), DESC_WORDS), np.uint32)
    for j, (i, lo, hi) in enumerate(runs):
        f = {**descs[i], "r_lo": lo, "r_hi": hi, "out_ring": layers[i].ring,
             "in_ring": layers[i - 1].ring if i > 0 else 0}
        q[j, : len(DESC_FIELDS)] = [int(f[k]) & 0xFFFFFFFF for k in DESC_FIELDS]
    b.chunks.append((queue.addr, q.tobytes()))
    for name in graph.outputs:
        if name not in tensors:
            raise ValueError(f"network output '{name}' is not written by an engine layer")
    return DdrImage(b.image(), geo, queue.addr, len(runs), tensors, planes,
                    list(graph.outputs), infos, head.im2col, raw_pad,
                    [list(r) for r in runs])


def pack_tensor(q: np.ndarray, signed: bool, geo: Geometry) -> bytes:
    """The bytes of a 5-bit [C, H, W] tensor in the engine's layout (rows padded to beats):
    ``pynq.host_io.pack_tensor``, the host's own packing."""
    return host_io.pack_tensor(q, signed, geo.g, geo.axi_bits, ACT_BITS)


def unroll(x: np.ndarray, im2col: tuple[int, ...]) -> np.ndarray:
    """The first conv's input as the host unrolls it (``pynq.host_io.unroll``): [C*KH*KW, R,
    C'], the layout of a 1x1 conv over the filters' flattened taps."""
    return host_io.unroll(x, im2col)


def write_input(image: DdrImage, data: np.ndarray, x_int: np.ndarray) -> None:
    """Writes one frame's signed 8-bit input [C, H, W] into ``data`` as the board driver
    does: its two 5-bit planes (unrolled first when the host runs the first conv's im2col),
    or the padded raw bytes the engine unrolls on chip."""
    for off, raw in host_io.input_writes(x_int, [r.addr for r in image.input_planes],
                                         image.geo.g, image.geo.axi_bits, ACT_BITS,
                                         image.im2col, image.raw):
        data[off:off + len(raw)] = raw


def read_tensor(image: DdrImage, data: np.ndarray, name: str, tm: int) -> np.ndarray:
    """A tensor of the image in physical channel order: int32 [M] or 5-bit [C, H, W]
    (``pynq.host_io.decode_region``, as the board driver reads it)."""
    reg = image.tensors[name]
    bb = image.geo.beat_bytes
    raw = data[reg.addr * bb:(reg.addr + reg.beats) * bb]
    return host_io.decode_region(raw, reg.to_dict(), image.geo.g, image.geo.axi_bits, ACT_BITS,
                                 tm)
