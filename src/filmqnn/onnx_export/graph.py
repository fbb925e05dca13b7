"""The artifact's integer graph as a standard ONNX model that ONNX Runtime runs bit-exactly.

Tensors between layers keep their integer formats (int8 input, uint8 / int8 5-bit
activations, int32 logits). A conv or fc casts its integer input to float32 and runs the
float32 `Conv` / `Gemm` on the integer weights (int8 initializers, cast in the graph) only
over input-channel chunks whose accumulator bound sum|w| * max|x| stays below 2^24: every
partial sum of such a chunk is an integer of magnitude below 2^24, exact in float32 in any
summation order (FMA included). A layer that exceeds the bound is split into several chunks
(`Slice` + `Conv`), whose exact partial sums are cast to int64 and added. The requantization
is integer-only (`requant.add_requant`); weights stay in the artifact's reordered layout,
skip / depthwise gathers are `Gather`s, and the outputs come back in the original class order.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx

from filmqnn.lower.graph import IntGraph, Node, TensorInfo
from filmqnn.onnx_export.builder import GraphBuilder, finish_model, int_dtype, value_info
from filmqnn.onnx_export.requant import add_requant, check_numerator

#: float32 represents every integer below 2^24 exactly (the reference executor's bound too).
FLOAT32_EXACT = 1 << 24
INPUT_NAME = "input_q"
LOGITS_INT = "logits_int"
LOGITS = "logits"


class OnnxExportError(ValueError):
    """The artifact holds something the ONNX export cannot express exactly (names it)."""


def amax(t: TensorInfo) -> int:
    """Largest |value| of an integer tensor."""
    return max(-t.fmt.qmin, t.fmt.qmax)


def channel_chunks(weight: np.ndarray, x_amax: int, limit: int = FLOAT32_EXACT,
                   name: str = "") -> list[tuple[int, int]]:
    """Contiguous input-channel ranges [c0, c1) of a conv / fc weight [M, C, ...] whose
    accumulator bound max_m sum_{c in range} |w[m, c]| * x_amax stays below `limit`."""
    m, c = weight.shape[:2]
    per_channel = np.abs(weight.reshape(m, c, -1).astype(np.int64)).sum(axis=2) * x_amax
    chunks, start, running = [], 0, np.zeros(m, dtype=np.int64)
    for ch in range(c):
        if (running + per_channel[:, ch]).max() >= limit:
            if ch == start:
                raise OnnxExportError(
                    f"'{name}': one input channel alone reaches an accumulator of "
                    f"{int(per_channel[:, ch].max())} >= {limit}, which float32 cannot hold "
                    "exactly; this kernel is too large for the exact ONNX form"
                )
            chunks.append((start, ch))
            start, running = ch, np.zeros(m, dtype=np.int64)
        running += per_channel[:, ch]
    chunks.append((start, c))
    return chunks


def high_filters(graph: IntGraph) -> dict[str, dict[str, Any]]:
    """Per conv / fc layer: its 8-bit filters, as positions in the stored (reordered) weight
    and as original filter indices, and the layer's filter count."""
    out = {}
    for n in graph.nodes:
        if "bits" not in n.params:
            continue
        bits = n.params["bits"]
        pos = np.flatnonzero(bits == 8)
        order = graph.tensors[n.output].order
        orig = pos if order is None else order[pos]
        out[n.name] = {"positions": pos.tolist(), "filters": sorted(orig.tolist()),
                       "of": len(bits)}
    return out


def model_metadata(graph: IntGraph, artifact_sha: str, kind: str) -> dict[str, str]:
    """metadata_props of both ONNX views: provenance, scales, 8-bit filters, tiling.

    Each view adds `filmqnn.tensor_names`: the ONNX tensor holding each artifact tensor's
    integers (in the QDQ view: the output of its QuantizeLinear), for layer-by-layer checks.
    """
    from filmqnn import __version__

    out = graph.tensors[graph.outputs[0]]
    meta = {
        "filmqnn.version": __version__,
        "filmqnn.artifact_sha256": artifact_sha,
        "filmqnn.graph": kind,
        "filmqnn.input_scale": repr(float(graph.tensors[graph.input].scale)),
        "filmqnn.output_scales": json.dumps(out.scale),
        "filmqnn.filters_8bit": json.dumps(high_filters(graph), separators=(",", ":")),
        "filmqnn.tiling": json.dumps(graph.tiling),
        "filmqnn.reordered": json.dumps(graph.reordered),
    }
    for key in ("model", "data", "num_classes"):
        if key in graph.meta:
            meta[f"filmqnn.{key}"] = str(graph.meta[key])
    return meta


def inverse(order: np.ndarray) -> np.ndarray:
    """inv with inv[order[j]] = j: gathering positions inv restores the original order."""
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    return inv


def weight_doc(node: Node, c0: int = 0, c1: int | None = None) -> str:
    """Doc string of a weight initializer: layout and which filter positions are 8-bit."""
    bits = node.params["bits"]
    part = "" if c1 is None else f", input channels {c0}..{c1 - 1}"
    lo, hi = int(bits.min()), int(bits.max())
    prec = (f"all filters {hi}-bit" if lo == hi else
            f"{hi}-bit filter positions {np.flatnonzero(bits == hi).tolist()}, the rest {lo}-bit")
    return (f"integer weights of '{node.name}' in the artifact's (reordered) filter "
            f"order{part}; {prec}")


class _IntExporter:
    """Walks the integer graph in execution order, emitting ONNX nodes per artifact node."""

    def __init__(self, graph: IntGraph, float_limit: int) -> None:
        self.g = graph
        self.limit = float_limit
        self.b = GraphBuilder()
        self.env: dict[str, str] = {}
        self.chunks: dict[str, int] = {}

    def dtype(self, tensor: str) -> np.dtype:
        t = self.g.tensors[tensor]
        return int_dtype(t.bits, t.signed)

    def int64(self, tensor: str, index: np.ndarray | None, base: str) -> str:
        """A tensor (gathered along channels by `index` when given) as int64."""
        x = self.env[tensor]
        if index is not None:
            x = self.b.op("Gather", [x, self.b.const(f"{base}.index", index.astype(np.int64))],
                          base, axis=1)
        return self.b.cast(x, np.int64, base)

    def accumulate(self, node: Node) -> tuple[str, int]:
        """The int64 accumulator (without bias) of a conv / fc, and its proven bound."""
        b, p, a = self.b, node.params, node.attrs
        t_in = self.g.tensors[node.inputs[0]]
        x = self.env[node.inputs[0]]
        if "in_index" in p:
            x = b.op("Gather", [x, b.const(f"{node.name}.in_index",
                                           p["in_index"].astype(np.int64))], node.name, axis=1)
        xf = b.cast(x, np.float32, node.name)
        w = p["weight"]
        m = w.shape[0]
        bound = int(np.abs(w.reshape(m, -1).astype(np.int64)).sum(axis=1).max()) * amax(t_in)
        groups = a.get("groups", 1) if node.op == "conv" else 1
        if groups > 1:  # depthwise: each filter reads one channel, no split possible
            if bound >= self.limit:
                raise OnnxExportError(
                    f"'{node.name}': a depthwise filter reaches an accumulator of {bound} >= "
                    f"{self.limit}, which float32 cannot hold exactly")
            chunks = [(0, w.shape[1])]
        else:
            chunks = channel_chunks(w, amax(t_in), self.limit, node.name)
        self.chunks[node.name] = len(chunks)
        partials = []
        for c0, c1 in chunks:
            whole = len(chunks) == 1
            xin = xf if whole else b.op("Slice", [
                xf, b.const(f"{node.name}.c0", np.array([c0], np.int64)),
                b.const(f"{node.name}.c1", np.array([c1], np.int64)),
                b.const(f"{node.name}.axis", np.array([1], np.int64))], node.name)
            wq = w if whole else w[:, c0:c1]
            wname = b.const(f"{node.name}.weight", wq.astype(np.int8),
                            doc=weight_doc(node, *(() if whole else (c0, c1))))
            wf = b.cast(wname, np.float32, f"{node.name}.weight")
            if node.op == "conv":
                pads = [*a["padding"], *a["padding"]]
                y = b.op("Conv", [xin, wf], node.name, kernel_shape=a["kernel"],
                         strides=a["stride"], pads=pads, group=groups)
            else:
                y = b.op("Gemm", [xin, wf], node.name, transB=1)
            partials.append(b.cast(y, np.int64, node.name))
        acc = partials[0]
        for part in partials[1:]:  # exact: every partial and every sum is below 2^31
            acc = b.op("Add", [acc, part], node.name)
        return acc, bound

    def weight_node(self, node: Node) -> str:
        b, p = self.b, node.params
        acc, bound = self.accumulate(node)
        m = len(p["bits"])
        shape = (1, m, 1, 1) if node.op == "conv" else (1, m)
        bias = p["bias"].astype(np.int64)
        if not node.requantizes:
            y = b.op("Add", [acc, b.const(f"{node.name}.bias", bias.reshape(shape))], node.name)
            return b.cast(y, self.dtype(node.output), node.name)
        mult = p["mult"].astype(np.int64)
        const = p["offset"].astype(np.int64) + bias * mult
        terms, bounds, mults = [(acc, mult)], [bound], [mult]
        if len(node.inputs) > 1:  # fused residual add
            skip = self.int64(node.inputs[1], p.get("skip_index"), f"{node.name}.skip")
            terms.append((skip, p["skip_mult"]))
            bounds.append(amax(self.g.tensors[node.inputs[1]]))
            mults.append(p["skip_mult"])
        check_numerator(node.name, bounds, mults, const, p["shift"])
        return add_requant(b, node.name, terms, const, p["shift"], node.attrs["lo"],
                           node.attrs["hi"], self.dtype(node.output), shape)

    def maxpool(self, node: Node) -> str:
        a, dt = node.attrs, self.dtype(node.output)
        x = self.env[node.inputs[0]]
        native = dt in (np.dtype(np.int8), np.dtype(np.uint8))  # ONNX MaxPool's int types
        if not native:
            x = self.b.cast(x, np.float32, node.name)  # exact: at most 16-bit values
        y = self.b.op("MaxPool", [x], node.name, kernel_shape=a["kernel"], strides=a["stride"],
                      pads=[*a["padding"], *a["padding"]])
        return y if native else self.b.cast(y, dt, node.name)

    def gap(self, node: Node) -> str:
        b, p, t_in = self.b, node.params, self.g.tensors[node.inputs[0]]
        x = self.int64(node.inputs[0], None, node.name)
        s = b.op("ReduceSum", [x, b.const(f"{node.name}.axes", np.array([2, 3], np.int64))],
                 node.name, keepdims=1)
        bound = t_in.shape[1] * t_in.shape[2] * amax(t_in)
        zero = np.zeros(1, np.int64)
        check_numerator(node.name, [bound], [p["mult"]], zero, p["shift"])
        return add_requant(b, node.name, [(s, p["mult"])], zero, p["shift"], node.attrs["lo"],
                           node.attrs["hi"], self.dtype(node.output), (1,))

    def add(self, node: Node) -> str:
        p = node.params
        xa = self.int64(node.inputs[0], None, f"{node.name}.a")
        xb = self.int64(node.inputs[1], p.get("b_index"), f"{node.name}.b")
        zero = np.zeros(1, np.int64)
        bounds = [amax(self.g.tensors[i]) for i in node.inputs]
        check_numerator(node.name, bounds, [p["mult"], p["mult_b"]], zero, p["shift"])
        return add_requant(self.b, node.name, [(xa, p["mult"]), (xb, p["mult_b"])], zero,
                           p["shift"], node.attrs["lo"], node.attrs["hi"],
                           self.dtype(node.output), (1,))

    def run(self) -> tuple[list[onnx.ValueInfoProto], list[onnx.ValueInfoProto]]:
        g, b = self.g, self.b
        t_in = g.tensors[g.input]
        self.env[g.input] = b.reserve(INPUT_NAME)
        for i, name in enumerate(g.outputs):  # keep the output names for the outputs
            b.reserve(LOGITS_INT if i == 0 else f"{name}_int", hold=True)
        b.reserve(LOGITS, hold=True)
        inputs = [value_info(INPUT_NAME, self.dtype(g.input), ["N", *t_in.shape])]
        for node in g.nodes:
            if node.op in ("conv", "fc"):
                y = self.weight_node(node)
            elif node.op == "maxpool":
                y = self.maxpool(node)
            elif node.op == "gap":
                y = self.gap(node)
            elif node.op == "add":
                y = self.add(node)
            elif node.op == "flatten":
                y = b.op("Flatten", [self.env[node.inputs[0]]], node.name, axis=1)
            else:
                raise OnnxExportError(f"'{node.name}': op {node.op!r} has no ONNX form")
            self.env[node.output] = y
        return inputs, self.outputs()

    def outputs(self) -> list[onnx.ValueInfoProto]:
        g, b = self.g, self.b
        outs = []
        for i, name in enumerate(g.outputs):
            t = g.tensors[name]
            y = self.env[name]
            out_name = LOGITS_INT if i == 0 else f"{name}_int"
            if t.order is not None:  # the host's restore of the original class order
                idx = b.const(f"{name}.restore_order", inverse(t.order).astype(np.int64))
                y = b.op("Gather", [y, idx], name, out=out_name, axis=1)
            else:
                y = b.op("Identity", [y], name, out=out_name)
            outs.append(value_info(out_name, self.dtype(name), ["N", *t.shape]))
            if i == 0:
                scale = np.asarray(t.scale, dtype=np.float64)
                scale = scale.reshape(1, -1, *([1] * (len(t.shape) - 1))) if scale.ndim else scale
                yd = b.cast(y, np.float64, f"{LOGITS}.dequant")
                b.op("Mul", [yd, b.const(f"{name}.scale", scale)], LOGITS, out=LOGITS)
                outs.append(value_info(LOGITS, np.float64, ["N", *t.shape]))
        return outs


def build_int_model(graph: IntGraph, artifact_sha: str = "",
                    float_limit: int = FLOAT32_EXACT) -> onnx.ModelProto:
    """The integer-exact ONNX model of an (already validated) integer graph.

    Input `input_q` (int8 [N, C, H, W], the host-quantized image); outputs `logits_int` (the
    int32 logits in the original class order), `logits` (float64, logits_int * class scale)
    and any further network outputs. `float_limit` (2^24; smaller only in tests) bounds the
    accumulator of one float32 conv chunk.
    """
    ex = _IntExporter(graph, float_limit)
    inputs, outputs = ex.run()
    doc = (f"filmqnn integer graph. Feed {INPUT_NAME} = clamp(round_half_even(x / input_scale), "
           "-128, 127) as int8 (input_scale in metadata_props); logits_int equals filmqnn's "
           "integer reference executor bit for bit.")
    meta = model_metadata(graph, artifact_sha, "integer")
    meta["filmqnn.float32_conv_chunks"] = json.dumps(ex.chunks, separators=(",", ":"))
    meta["filmqnn.tensor_names"] = json.dumps(ex.env, separators=(",", ":"))
    return finish_model(ex.b, "filmqnn_int", inputs, outputs, meta, doc)
