"""Consistency checks of an integer graph: topology, shapes, value ranges, accumulator bounds.

Run before an artifact is written and after it is read, so a tampered artifact that still
has valid checksums (or a bug upstream) is refused with the node and the reason."""

import math

import numpy as np

from filmqnn.formats import ACC_BITS, INPUT_FORMAT, SUPPORTED_WEIGHT_BITS
from filmqnn.lower.graph import OPS, WEIGHT_OPS, IntGraph, Node, TensorInfo
from filmqnn.lower.reordering import INDEX_PARAMS, slot_is_high
from filmqnn.lower.requant import MAX_SHIFT, OPERAND_MULT_BITS, REQUANT_MANTISSA_BITS
from filmqnn.lower.tiling import Tiling

ACC_LIMIT = (1 << (ACC_BITS - 1)) - 1


def _fail(node: Node | str, msg: str) -> None:
    name = node.name if isinstance(node, Node) else node
    raise ValueError(f"'{name}': {msg}")


def _window(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_attrs(node: Node) -> None:
    a = node.attrs
    if node.op in ("conv", "maxpool"):
        for key, least in (("kernel", 1), ("stride", 1), ("padding", 0)):
            v = a.get(key)
            if not (isinstance(v, list) and len(v) == 2 and all(_is_int(x) and x >= least
                                                                 for x in v)):
                _fail(node, f"{key} must be two integers >= {least}, got {v!r}")
        if any(p > k // 2 for p, k in zip(a["padding"], a["kernel"], strict=True)):
            _fail(node, "padding must not exceed half the kernel")
    if node.op == "conv" and not (_is_int(a.get("groups")) and a["groups"] >= 1):
        _fail(node, f"groups must be an integer >= 1, got {a.get('groups')!r}")
    if node.requantizes and not (_is_int(a["lo"]) and _is_int(a.get("hi"))):
        _fail(node, "the output clamp lo, hi must be integers")
    if node.op in ("gap", "add") and not node.requantizes:
        _fail(node, "a gap or add must requantize (lo, hi)")


def infer_shape(node: Node, ins: list[TensorInfo]) -> tuple[int, ...]:
    """Output shape (per sample) of `node` from its inputs' shapes and attributes."""
    x, a, p = ins[0].shape, node.attrs, node.params
    if node.op in ("conv", "maxpool"):
        if len(x) != 3:
            _fail(node, f"needs a (C, H, W) input, got {x}")
        k, s, pad = a["kernel"], a["stride"], a["padding"]
        hw = tuple(_window(x[i + 1], k[i], s[i], pad[i]) for i in range(2))
        c = x[0] if node.op == "maxpool" else len(p["bits"])
        return (c, *hw)
    if node.op == "fc":
        return (len(p["bits"]),)
    if node.op == "gap":
        return (x[0], 1, 1)
    if node.op == "flatten":
        return (int(np.prod(x)),)
    if ins[1].shape != x:
        _fail(node, f"adds tensors of shapes {x} and {ins[1].shape}")
    return x


def _check_perm(node: Node | str, what: str, v: np.ndarray, n: int) -> None:
    if v.shape != (n,) or not np.array_equal(np.sort(v), np.arange(n)):
        _fail(node, f"{what} is not a permutation of 0..{n - 1}")


def _check_requant(node: Node, out: TensorInfo, n: int) -> None:
    p, a = node.params, node.attrs
    for key, bits in (("mult", REQUANT_MANTISSA_BITS), ("mult_b", OPERAND_MULT_BITS),
                      ("skip_mult", OPERAND_MULT_BITS)):
        if key in p and (p[key].shape != (n,) or p[key].min() < 0 or p[key].max() >= 1 << bits):
            _fail(node, f"{key} must hold {n} values in [0, 2^{bits})")
    if "offset" in p and (p["offset"].shape != (n,) or np.abs(p["offset"]).max() > p["mult"].max()):
        _fail(node, "the rounding offset must hold one value per filter, |offset| <= M")
    if node.op in WEIGHT_OPS and "offset" not in p:
        _fail(node, "a requantizing conv or fc needs its rounding offset")
    if p["shift"].shape != (n,) or p["shift"].min() < 1 or p["shift"].max() > MAX_SHIFT:
        _fail(node, f"shift must hold {n} values in [1, {MAX_SHIFT}]")
    fmt = out.fmt
    if not fmt.qmin <= a["lo"] <= a["hi"] <= fmt.qmax:
        _fail(node, f"clamp [{a['lo']}, {a['hi']}] lies outside its output format")


def _check_weights(node: Node, ins: list[TensorInfo], out: TensorInfo, tiling: Tiling | None,
                   reordered: bool) -> None:
    p, a = node.params, node.attrs
    w, bits = p["weight"], p["bits"]
    m = len(bits)
    depthwise = node.op == "conv" and a["groups"] > 1
    cin = ins[0].shape[0]
    if depthwise and (a["groups"] != cin or m != cin):
        _fail(node, "a depthwise conv needs groups == input channels == filters")
    want = (m, cin) if node.op == "fc" else (m, 1 if depthwise else cin, *a["kernel"])
    if w.shape != want:
        _fail(node, f"weight shape {w.shape}, expected {want}")
    if not set(np.unique(bits).tolist()) <= set(SUPPORTED_WEIGHT_BITS):
        _fail(node, f"filter bit widths {sorted(set(bits.tolist()))} not all supported")
    qmax = (1 << (bits.astype(np.int64) - 1)) - 1
    if np.any(np.abs(w.reshape(m, -1).astype(np.int64)).max(axis=1) > qmax):
        _fail(node, "a weight lies outside its filter's narrow signed range")
    if p["bias"].shape != (m,):
        _fail(node, "bias must hold one int32 per filter")
    amax = max(-ins[0].fmt.qmin, ins[0].fmt.qmax)
    bound = np.abs(w.reshape(m, -1).astype(np.int64)).sum(axis=1) * amax + np.abs(
        p["bias"].astype(np.int64))
    if bound.max() > ACC_LIMIT:
        _fail(node, f"accumulator can reach {int(bound.max())} > int32 max")
    for key in INDEX_PARAMS:
        if key in p:
            _check_perm(node, key, p[key], m)
    if "in_index" in p and not depthwise:
        _fail(node, "only a depthwise conv gathers its input (in_index)")
    if (len(node.inputs) > 1) != ("skip_mult" in p):
        _fail(node, "a fused residual add needs a skip operand and skip_mult together")
    if len(ins) > 1 and ins[1].shape != out.shape:
        _fail(node, f"skip operand of shape {ins[1].shape} does not match {out.shape}")
    if node.requantizes:
        _check_requant(node, out, m)
    elif out.bits != ACC_BITS or not isinstance(out.scale, list) or len(out.scale) != m:
        _fail(node, "an accumulator output must be int32 with one scale per filter")
    if reordered and tiling is not None and len(np.unique(bits)) > 1:
        hi = slot_is_high(m, tiling)
        if not np.array_equal(bits, np.where(hi, bits.max(), bits.min())):
            _fail(node, "filter precisions do not follow the tiling's slot rule")


def _check_tensor(t: TensorInfo) -> None:
    scales = t.scale if isinstance(t.scale, list) else [t.scale]
    if not scales or not all(isinstance(s, (int, float)) and not isinstance(s, bool)
                             and math.isfinite(s) and s > 0 for s in scales):
        _fail(t.name, "scales must be finite positive numbers")
    if t.order is not None:
        _check_perm(t.name, "channel order", t.order, t.shape[0])
    if not 2 <= t.bits <= ACC_BITS:
        _fail(t.name, f"bit width {t.bits} out of range")


def validate_graph(g: IntGraph) -> None:
    """Raise ValueError naming the first node or tensor that breaks the integer-graph rules."""
    tiling = Tiling.from_dict(g.tiling) if g.tiling else None
    for t in g.tensors.values():
        _check_tensor(t)
    inp = g.tensors.get(g.input)
    if inp is None or inp.fmt != INPUT_FORMAT:
        _fail(g.input, f"the network input must be a {INPUT_FORMAT.bits}-bit signed tensor")
    ready = {g.input}
    for node in g.nodes:
        if node.op not in OPS:
            _fail(node, f"unknown op {node.op!r}")
        if any(i not in ready for i in node.inputs) or node.output not in g.tensors:
            _fail(node, "reads a tensor not yet computed or writes an undeclared one")
        if node.output in ready:
            _fail(node, "writes a tensor that is already written")
        _check_attrs(node)
        ins = [g.tensors[i] for i in node.inputs]
        out = g.tensors[node.output]
        if len(ins) != (2 if node.op == "add" else len(ins)) or len(ins) not in (1, 2):
            _fail(node, "has the wrong number of inputs")
        if infer_shape(node, ins) != out.shape:
            _fail(node, f"output shape {out.shape}, expected {infer_shape(node, ins)}")
        if node.op in WEIGHT_OPS:
            _check_weights(node, ins, out, tiling, g.reordered)
        elif node.op in ("gap", "add"):
            _check_requant(node, out, 1)
            if "b_index" in node.params:
                _check_perm(node, "b_index", node.params["b_index"], out.shape[0])
        elif (out.bits, out.signed) != (ins[0].bits, ins[0].signed):
            _fail(node, "must keep its input's format")
        ready.add(node.output)
    if not g.outputs or any(o not in ready for o in g.outputs):
        _fail("outputs", "every network output must be computed by a node")
