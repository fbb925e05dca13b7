"""Bytes moved per inference, packed (data packing, DESIGN.md §4) against byte-aligned, and the
index storage of the weight reordering: the figures `filmqnn export` reports."""

from typing import Any

import numpy as np

from filmqnn.lower.graph import WEIGHT_OPS, IntGraph, TensorInfo
from filmqnn.lower.packing import activation_bytes
from filmqnn.lower.reordering import index_bits, unreordered_index_bits
from filmqnn.lower.tiling import Tiling
from filmqnn.lower.weight_layout import stream_bits, stream_bytes, stream_index

CONST_BYTES_PER_FILTER = 4 + 2 + 2 + 1  # int32 bias, 16-bit multiplier, 16-bit offset, shift
WIDE_BITS = 8


def tensor_bytes(t: TensorInfo, tiling: Tiling) -> tuple[int, int]:
    """(packed, byte-aligned) bytes of one sample of tensor `t` in DDR."""
    n = int(np.prod(t.shape))
    if t.bits > WIDE_BITS:
        return n * t.bits // 8, n * t.bits // 8
    g = max(1, min(tiling.g, 64 // t.bits, tiling.axi_bits // t.bits))
    return activation_bytes(t.shape, t.bits, g, tiling.axi_bits), n


def weight_bytes(graph: IntGraph, tiling: Tiling) -> dict[str, tuple[int, int]]:
    """(packed, byte-aligned) weight bytes of every conv / fc node."""
    out = {}
    for node in graph.nodes:
        if node.op not in WEIGHT_OPS:
            continue
        w, bits = node.params["weight"], node.params["bits"]
        depthwise = node.attrs.get("groups", 1) > 1
        packed = sum(
            stream_bytes(stream_index(w.shape, bits, b, tiling, depthwise), b)
            for b in stream_bits(bits)
        )
        out[node.name] = (packed, int(w.size))
    return out


def traffic_report(graph: IntGraph) -> dict[str, Any]:
    """Per-inference DDR bytes (weights + constants once, each activation tensor written once
    and read once per consumer), packed and byte-aligned, plus the reordering's index bits."""
    tiling = Tiling.from_dict(graph.tiling or Tiling().to_dict())
    wb = weight_bytes(graph, tiling)
    const = sum(CONST_BYTES_PER_FILTER * len(n.params["bits"]) for n in graph.nodes
                if n.op in WEIGHT_OPS)
    act = [0, 0]
    for name, t in graph.tensors.items():
        moves = len(graph.consumers(name)) + (0 if name == graph.input else 1)
        moves += name in graph.outputs  # the host reads the logits
        packed, aligned = tensor_bytes(t, tiling)
        act[0] += moves * packed
        act[1] += moves * aligned
    w_packed = sum(p for p, _ in wb.values())
    w_aligned = sum(a for _, a in wb.values())
    packed = w_packed + const + act[0]
    aligned = w_aligned + const + act[1]
    return {
        "tiling": tiling.to_dict(),
        "weight_bytes": {"packed": w_packed, "byte_aligned": w_aligned},
        "activation_bytes": {"packed": act[0], "byte_aligned": act[1]},
        "constant_bytes": const,
        "total_bytes": {"packed": packed, "byte_aligned": aligned,
                        "ratio": round(aligned / packed, 3)},
        "index_bits": index_bits(graph) if graph.reordered else None,
        "unreordered_index_bits": unreordered_index_bits(graph),
    }
