"""Weight reordering (paper §3.2.2): every output tile holds its 8-bit filters in the first Tm8
slots; each permutation is folded into the consumers' input channels, and only where a tensor
meets another order (skip operand, depthwise input, network output) is an index stored."""

import copy
import math

import numpy as np

from filmqnn.lower.graph import WEIGHT_OPS, IntGraph, Node
from filmqnn.lower.tiling import Tiling

INDEX_PARAMS = ("skip_index", "in_index", "b_index")


class ReorderError(ValueError):
    """A layer's precision assignment does not fit the tiling's 8-bit slots."""


def slot_is_high(m: int, tiling: Tiling) -> np.ndarray:
    """Whether physical filter position j of an M-filter layer is an 8-bit slot."""
    return (np.arange(m) % tiling.tm) < tiling.tm8


def filter_order(
    bits: np.ndarray, tiling: Tiling, layer: str = "", prefer: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(order, slot bits): order[j] is the original filter at position j, slot bits its format.

    Without `prefer`, the high-precision filters fill the 8-bit slots in their original order
    and 4-bit filters the rest (first any 8-bit slots left over, stored at 8 bit). With
    `prefer` (an order this layer's output should stay close to, e.g. the order of the skip
    operand it is added to), the order is `prefer` with each high filter that sits in a 4-bit
    slot swapped with a 4-bit filter in an 8-bit slot: the fewest positions move, so the index
    between the two orders is short. A uniform layer keeps `prefer` (or its own order).
    """
    m = len(bits)
    high, low = int(bits.max()), int(bits.min())
    if high == low:
        return (np.arange(m) if prefer is None else prefer.copy()), bits.copy()
    is_high = slot_is_high(m, tiling)
    hi_f = np.flatnonzero(bits == high)
    lo_f = np.flatnonzero(bits != high)
    if len(hi_f) > is_high.sum():
        raise ReorderError(
            f"layer '{layer}' has {len(hi_f)} {high}-bit filters but the tiling (tm={tiling.tm}, "
            f"tm8={tiling.tm8}) gives only {int(is_high.sum())} slots for them; assign with "
            f"`--tm {tiling.tm}` or export with a larger tm8"
        )
    slot_bits = np.where(is_high, high, low).astype(np.uint8)
    if prefer is not None:
        order = prefer.copy()
        holds_high = bits[order] == high
        misplaced = np.flatnonzero(holds_high & ~is_high)
        free = np.flatnonzero(~holds_high & is_high)[: len(misplaced)]
        order[misplaced], order[free] = order[free], order[misplaced]
        return order, slot_bits
    spare = int(is_high.sum()) - len(hi_f)
    order = np.empty(m, dtype=np.int64)
    order[is_high] = np.concatenate([hi_f, lo_f[:spare]])
    order[~is_high] = lo_f[spare:]
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
    m = len(p["bits"])
    depthwise = node.op == "conv" and node.attrs["groups"] > 1
    # stay close to the order this output is gathered against: the skip operand's of a fused
    # add, the input's of a depthwise conv (tied channels), else the original order
    near = g.tensors[node.inputs[1]] if len(node.inputs) > 1 else t_in if depthwise else None
    prefer = near.order if near is not None and near.order is not None else np.arange(m)
    order, slot_bits = filter_order(p["bits"], tiling, node.name, prefer)
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
        if node.op in WEIGHT_OPS:
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


def stored_index_bits(v: np.ndarray) -> int:
    """Bits the engine needs for one gather index of n entries: the (position, source) pairs
    of the k displaced entries, 2 * k * ceil(log2 n) bits, or the whole vector,
    n * ceil(log2 n) bits, whichever is smaller."""
    width = max(1, math.ceil(math.log2(len(v))))
    moved = int(np.count_nonzero(v != np.arange(len(v))))
    return min(len(v), 2 * moved) * width


def index_bits(graph: IntGraph) -> int:
    """Bits of index storage the hardware needs for every stored order (`stored_index_bits`)."""
    vectors = [n.params[k] for n in graph.nodes for k in INDEX_PARAMS if k in n.params]
    vectors += [graph.tensors[o].order for o in graph.outputs if graph.tensors[o].order is not None]
    return sum(stored_index_bits(v) for v in vectors)


def unreordered_index_bits(graph: IntGraph) -> dict[str, int]:
    """Index storage without reordering: a precision flag per filter, or a filter index each."""
    layers = [n for n in graph.nodes if n.op in WEIGHT_OPS and len(set(n.params["bits"])) > 1]
    flags = sum(len(n.params["bits"]) for n in layers)
    index = sum(len(n.params["bits"]) * max(1, math.ceil(math.log2(len(n.params["bits"]))))
                for n in layers)
    return {"flag_bits": flags, "filter_index_bits": index}
