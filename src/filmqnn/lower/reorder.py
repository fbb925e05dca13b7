"""Weight reordering (paper §3.2.2): every output tile holds its 8-bit filters in the first Tm8
slots; each permutation is folded into the consumers' input channels, and only where a tensor
meets another order (skip operand, depthwise input, network output) is an index stored."""

import copy
import math

import numpy as np

from filmqnn.lower.graph import IntGraph, Node
from filmqnn.lower.tiling import Tiling

INDEX_PARAMS = ("skip_index", "in_index", "b_index")


class ReorderError(ValueError):
    """A layer's precision assignment does not fit the tiling's 8-bit slots."""


def slot_is_high(m: int, tiling: Tiling) -> np.ndarray:
    """Whether physical filter position j of an M-filter layer is an 8-bit slot."""
    return (np.arange(m) % tiling.tm) < tiling.tm8


def filter_order(
    bits: np.ndarray, tiling: Tiling, layer: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """(order, slot bits): order[j] is the original filter at position j, slot bits its format.

    A uniform layer keeps its order. Otherwise the high-precision filters fill the 8-bit slots
    in their original order, 4-bit filters fill the rest (first the 8-bit slots left over,
    stored at 8 bit), so the layout depends only on the tiling.
    """
    m = len(bits)
    high, low = int(bits.max()), int(bits.min())
    if high == low:
        return np.arange(m), bits.copy()
    is_high = slot_is_high(m, tiling)
    hi_f = np.flatnonzero(bits == high)
    lo_f = np.flatnonzero(bits != high)
    if len(hi_f) > is_high.sum():
        raise ReorderError(
            f"layer '{layer}' has {len(hi_f)} {high}-bit filters but the tiling (tm={tiling.tm}, "
            f"tm8={tiling.tm8}) gives only {int(is_high.sum())} slots for them; assign with "
            f"`--tm {tiling.tm}` or export with a larger tm8"
        )
    spare = int(is_high.sum()) - len(hi_f)
    order = np.empty(m, dtype=np.int64)
    order[is_high] = np.concatenate([hi_f, lo_f[:spare]])
    order[~is_high] = lo_f[spare:]
    slot_bits = np.where(is_high, high, low).astype(np.uint8)
    return order, slot_bits


def _inverse(order: np.ndarray) -> np.ndarray:
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    return inv


def _gather(src: np.ndarray | None, dst: np.ndarray | None, n: int) -> np.ndarray | None:
    """Physical positions in a tensor ordered `src` that hold the channels ordered `dst`."""
    src = np.arange(n) if src is None else src
    dst = np.arange(n) if dst is None else dst
    idx = _inverse(src)[dst]
    return None if np.array_equal(idx, np.arange(n)) else idx


def _flatten_order(order: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if order is None:
        return None
    hw = int(np.prod(shape[1:]))
    return (order[:, None] * hw + np.arange(hw)[None]).ravel()


def _permute_filters(node: Node, order: np.ndarray, slot_bits: np.ndarray) -> None:
    p = node.params
    for key in ("weight", "bias", "mult", "shift", "skip_mult", "offset"):
        if key in p:
            p[key] = p[key][order]
    p["bits"] = slot_bits


def _reorder_weight_node(node: Node, g: IntGraph, tiling: Tiling) -> np.ndarray | None:
    t_in = g.tensors[node.inputs[0]]
    p = node.params
    order, slot_bits = filter_order(p["bits"], tiling, node.name)
    depthwise = node.op == "conv" and node.attrs["groups"] > 1
    if depthwise:
        idx = _gather(t_in.order, order, len(order))
        if idx is not None:
            p["in_index"] = idx
    elif t_in.order is not None:
        p["weight"] = p["weight"][:, t_in.order]
    _permute_filters(node, order, slot_bits)
    if len(node.inputs) > 1:  # fused residual add: load the skip operand in this order
        idx = _gather(g.tensors[node.inputs[1]].order, order, len(order))
        if idx is not None:
            p["skip_index"] = idx
    return None if np.array_equal(order, np.arange(len(order))) else order


def reorder(graph: IntGraph, tiling: Tiling) -> IntGraph:
    """A copy of `graph` with filters in tile-slot order and every permutation folded in."""
    g = copy.deepcopy(graph)
    g.tiling = tiling.to_dict()
    g.reordered = True
    for node in g.nodes:
        t_in = g.tensors[node.inputs[0]]
        out = g.tensors[node.output]
        if node.op in ("conv", "fc"):
            out.order = _reorder_weight_node(node, g, tiling)
        elif node.op == "flatten":
            out.order = _flatten_order(t_in.order, t_in.shape)
        elif node.op == "add":
            out.order = t_in.order
            idx = _gather(g.tensors[node.inputs[1]].order, t_in.order, t_in.channels)
            if idx is not None:
                node.params["b_index"] = idx
        else:  # maxpool, gap: per channel, order kept
            out.order = t_in.order
    return g


def mark_unreordered(graph: IntGraph, tiling: Tiling) -> IntGraph:
    """A copy of `graph` that keeps the original filter order but records the tiling."""
    g = copy.deepcopy(graph)
    g.tiling = tiling.to_dict()
    return g


def index_bits(graph: IntGraph) -> int:
    """Bits of index storage the hardware needs: n * ceil(log2 n) per stored order."""
    total = 0
    vectors = [n.params[k] for n in graph.nodes for k in INDEX_PARAMS if k in n.params]
    vectors += [graph.tensors[o].order for o in graph.outputs if graph.tensors[o].order is not None]
    for v in vectors:
        total += len(v) * max(1, math.ceil(math.log2(len(v))))
    return total


def unreordered_index_bits(graph: IntGraph) -> dict[str, int]:
    """Index storage without reordering: a precision flag per filter, or a filter index each."""
    layers = [n for n in graph.nodes if n.op in ("conv", "fc") and len(set(n.params["bits"])) > 1]
    flags = sum(len(n.params["bits"]) for n in layers)
    index = sum(len(n.params["bits"]) * max(1, math.ceil(math.log2(len(n.params["bits"]))))
                for n in layers)
    return {"flag_bits": flags, "filter_index_bits": index}
