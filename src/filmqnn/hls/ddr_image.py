"""Writes the engine's DDR image from an artifact's graph (rules in ``hls.layout``).

The image is what a board's DDR holds before the engine starts: the descriptor queue, every
layer's tables and weight streams, and one buffer per activation tensor. The host then writes
each frame's input planes (``write_input``) and reads the outputs (``read_outputs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from filmqnn.hls.layout import (
    DESC_FIELDS,
    DESC_WORDS,
    FLAGS,
    INT32_BYTES,
    OPS,
    TABLE_WORDS,
    Geometry,
    block_beats,
)
from filmqnn.hls.plan import EngineDesign, EngineLayer
from filmqnn.lower.graph import IntGraph
from filmqnn.lower.packing import pack_activations, pack_int4, unpack_activations
from filmqnn.quant.formats import ACT_BITS


@dataclass
class Region:
    """A beat-aligned range of the image holding one tensor, table or stream."""

    addr: int  # beat offset
    beats: int
    kind: str  # "act" | "int32" | "table" | "index" | "w4" | "w8" | "queue"
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


def weight_streams(ly: EngineLayer, d: EngineDesign) -> tuple[bytes, bytes]:
    """(PE4 stream, PE8 stream) of a conv / depthwise layer."""
    w = ly.weight
    m = w.shape[0]
    pos4, pos8 = [], []
    for t0 in range(0, m, d.Tm):
        p = np.arange(t0, min(m, t0 + d.Tm))
        if ly.all8:
            pos8.append(p)
            pos4.append(p[:0])
        else:
            pos8.append(p[: d.Tm8])
            pos4.append(p[d.Tm8:])
    dw = ly.op == "dwconv"
    return (_stream(w, pos4, d.Tn, dw, 4, d.geo), _stream(w, pos8, d.Tn, dw, 8, d.geo))


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
    n_layers: int
    tensors: dict[str, Region]
    input_planes: tuple[Region, Region]
    outputs: list[str]
    layers: list[dict[str, Any]]
    im2col: tuple[int, ...] | None = None  # (kh, kw, sh, sw, ph, pw): host-unrolled input

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
        }

    @classmethod
    def from_layout(cls, lay: dict[str, Any]) -> DdrImage:
        """The map of an image from ``layout()`` (without its bytes): what the host needs to
        write inputs and read outputs."""
        reg = Region.from_dict
        return cls(np.zeros(0, np.uint8), Geometry(lay["axi_bits"], lay["g"]), lay["queue"],
                   lay["n_layers"], {k: reg(v) for k, v in lay["tensors"].items()},
                   (reg(lay["input_planes"][0]), reg(lay["input_planes"][1])),
                   list(lay["outputs"]), list(lay["layers"]),
                   tuple(lay["input_im2col"]) if lay.get("input_im2col") else None)


def _act_region(b: ImageBuilder, shape: tuple[int, ...], signed: bool) -> Region:
    return b.add(b.geo.act_beats(shape), "act", shape=tuple(shape), signed=signed)


def build_image(graph: IntGraph, layers: list[EngineLayer], d: EngineDesign) -> DdrImage:
    """The DDR image of a planned network (``plan.plan_network``)."""
    geo = d.geo
    b = ImageBuilder(geo)
    queue = b.add(geo.bytes_to_beats(len(layers) * DESC_WORDS * 4), "queue")
    head = next(ly for ly in layers if ly.inputs[0] == graph.input)
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
            idx = np.zeros(2 * m, np.uint32)
            if in_key in p:
                idx[:m] = p[in_key]
            if "skip_index" in p:
                idx[m:] = p["skip_index"]
        t_reg = b.add_bytes(table.tobytes(), "table") if table.size else None
        i_reg = b.add_bytes(np.asarray(idx, np.uint32).tobytes(), "index") if len(idx) else None
        w4 = w8 = None
        if ly.weight is not None:
            s4, s8 = weight_streams(ly, d)
            w4 = b.add_bytes(s4, "w4") if s4 else None
            w8 = b.add_bytes(s8, "w8") if s8 else None
        out = graph.tensors[ly.output]
        if ly.node.requantizes or ly.op == "maxpool":
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
        if ly.signed_skip:
            flags |= FLAGS["signed_skip"]
        attrs = ly.node.attrs
        fields = {
            "op": OPS[ly.op], "flags": flags, **s, "planes": ly.planes,
            "lo": attrs.get("lo", 0), "hi": attrs.get("hi", 0),
            "in_addr": in_reg.addr,
            "in2_addr": planes[1].addr if first else (second.addr if ly.op == "add" else 0),
            "skip_addr": second.addr if second is not None and ly.op != "add" else 0,
            "out_addr": o_reg.addr,
            "w4_addr": w4.addr if w4 else 0, "w8_addr": w8.addr if w8 else 0,
            "table_addr": t_reg.addr if t_reg else 0, "index_addr": i_reg.addr if i_reg else 0,
            "skip_h": second.shape[1] if second is not None else 0,
            "skip_w": second.shape[2] if second is not None else 0,
        }
        descs.append([int(fields[k]) & 0xFFFFFFFF for k in DESC_FIELDS])
        infos.append({"name": ly.node.name, "op": ly.op, **s, "all8": ly.all8,
                      "planes": ly.planes})
    q = np.zeros((len(layers), DESC_WORDS), np.uint32)
    q[:, : len(DESC_FIELDS)] = np.array(descs, np.uint64).astype(np.uint32)
    b.chunks.append((queue.addr, q.tobytes()))
    for name in graph.outputs:
        if name not in tensors:
            raise ValueError(f"network output '{name}' is not written by an engine layer")
    return DdrImage(b.image(), geo, queue.addr, len(layers), tensors, planes,
                    list(graph.outputs), infos, head.im2col)


def _pad_cols(q: np.ndarray, geo: Geometry) -> np.ndarray:
    c, h, w = q.shape
    out = np.zeros((c, h, geo.row_words(w)), dtype=np.int64)
    out[:, :, :w] = q
    return out


def pack_tensor(q: np.ndarray, signed: bool, geo: Geometry) -> bytes:
    """The bytes of a 5-bit [C, H, W] tensor in the engine's layout (rows padded to beats)."""
    q = np.asarray(q).reshape(q.shape if q.ndim == 3 else (q.shape[0], 1, 1))
    return pack_activations(_pad_cols(q, geo), ACT_BITS, signed, geo.g, geo.axi_bits).tobytes()


def unroll(x: np.ndarray, im2col: tuple[int, ...]) -> np.ndarray:
    """The first conv's input as the host unrolls it: [C*KH*KW, R, C'] (channel c*KH*KW +
    i*KW + j holds tap (i, j)), the layout of a 1x1 conv over the filters' flattened taps."""
    kh, kw, sh, sw, ph, pw = im2col
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]
    return win.transpose(0, 3, 4, 1, 2).reshape(-1, win.shape[1], win.shape[2])


def write_input(image: DdrImage, data: np.ndarray, x_int: np.ndarray) -> None:
    """Writes one frame's signed 8-bit input [C, H, W] as its two 5-bit planes into ``data``
    (unrolled first when the first conv runs as im2col)."""
    x = np.asarray(x_int, dtype=np.int64)
    if image.im2col:
        x = unroll(x, image.im2col)
    hi, lo = x >> 4, x & 15
    bb = image.geo.beat_bytes
    for reg, plane in zip(image.input_planes, (hi, lo), strict=True):
        raw = np.frombuffer(pack_tensor(plane, True, image.geo), np.uint8)
        data[reg.addr * bb: reg.addr * bb + len(raw)] = raw


def read_tensor(image: DdrImage, data: np.ndarray, name: str, tm: int) -> np.ndarray:
    """A tensor of the image in physical channel order: int32 [M] or 5-bit [C, H, W]."""
    reg = image.tensors[name]
    geo = image.geo
    bb = geo.beat_bytes
    raw = data[reg.addr * bb:(reg.addr + reg.beats) * bb]
    if reg.kind == "int32":
        m = reg.shape[0]
        seg = -(-tm * INT32_BYTES // bb) * bb
        per = raw.reshape(-1, seg)[:, : tm * INT32_BYTES].copy().view("<i4").reshape(-1)
        return per[:m].reshape(reg.shape).astype(np.int64)
    shape = reg.shape if len(reg.shape) == 3 else (reg.shape[0], 1, 1)
    c, h, w = shape
    full = unpack_activations(raw, (c, h, geo.row_words(w)), ACT_BITS, reg.signed, geo.g,
                              geo.axi_bits)
    return full[:, :, :w].reshape(reg.shape)
