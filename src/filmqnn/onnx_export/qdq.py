"""A QDQ view of the artifact for other tools: float ONNX with QuantizeLinear /
DequantizeLinear pairs, as ONNX Runtime's quantizer and QDQ-reading tools expect.

Weights are the artifact's integers (int8 initializers; a 4-bit filter's values lie in
-7..7) behind a per-channel DequantizeLinear whose scale is the one the integer graph
implements, s_w[m] = M[m] * 2^-S[m] * s_out / s_in (the stored dyadic multiplier, not the
float scale of training). The bias is real (int bias plus the rounding offset's fraction). A
5-bit activation is a Clip to its integer range times its scale followed by a uint8 / int8
QuantizeLinear and DequantizeLinear. The view is not exact: QuantizeLinear rounds half to
even where the integer graph rounds half up, and float convolution and requantization
round differently; docs/onnx.md gives the measured distance.
"""

from __future__ import annotations

import json

import numpy as np
import onnx

from filmqnn.lower.graph import IntGraph, Node
from filmqnn.onnx_export.builder import GraphBuilder, finish_model, value_info
from filmqnn.onnx_export.graph import OnnxExportError, inverse, model_metadata, weight_doc

INPUT_NAME = "input"
LOGITS = "logits"


class _QdqExporter:
    """Float tensors holding real values (scale * integer) between Q / DQ pairs."""

    def __init__(self, graph: IntGraph) -> None:
        self.g = graph
        self.b = GraphBuilder()
        self.env: dict[str, str] = {}
        self.quantized: dict[str, str] = {}  # artifact tensor -> its QuantizeLinear output

    def qdq(self, x: str, tensor: str, lo: int | None = None, hi: int | None = None) -> str:
        """Clip `x` to [lo, hi] * scale (when given), then QuantizeLinear + DequantizeLinear."""
        b, t = self.b, self.g.tensors[tensor]
        s = float(t.scale)
        if lo is not None:
            x = b.op("Clip", [x, b.const(f"{tensor}.min", np.float32(lo * s)),
                              b.const(f"{tensor}.max", np.float32(hi * s))], tensor)
        if t.bits > 8:
            raise OnnxExportError(f"'{tensor}': a {t.bits}-bit activation has no int8 QDQ form")
        scale = b.const(f"{tensor}.scale", np.float32(s))
        zp = b.const(f"{tensor}.zero_point", np.zeros((), np.int8 if t.signed else np.uint8))
        q = b.op("QuantizeLinear", [x, scale, zp], tensor)
        self.quantized[tensor] = q
        return b.op("DequantizeLinear", [q, scale, zp], tensor)

    def gather(self, tensor: str, index: np.ndarray | None, base: str) -> str:
        x = self.env[tensor]
        if index is None:
            return x
        return self.b.op("Gather", [x, self.b.const(f"{base}.index", index.astype(np.int64))],
                         base, axis=1)

    def weight_scales(self, node: Node) -> np.ndarray:
        """Per-filter weight scale the integer graph implements (physical filter order)."""
        p = node.params
        s_in = float(self.g.tensors[node.inputs[0]].scale)
        out = self.g.tensors[node.output]
        if node.requantizes:
            ratio = p["mult"].astype(np.float64) * np.exp2(-p["shift"].astype(np.float64))
            return ratio * float(out.scale) / s_in
        s_acc = np.asarray(out.scale, dtype=np.float64)  # original class order
        if out.order is not None:
            s_acc = s_acc[out.order]
        return s_acc / s_in

    def weight_node(self, node: Node) -> str:
        b, p, a = self.b, node.params, node.attrs
        s_in = float(self.g.tensors[node.inputs[0]].scale)
        s_w = self.weight_scales(node)
        if np.any(s_w <= 0):
            raise OnnxExportError(f"'{node.name}': a filter has a zero multiplier; QDQ needs "
                                  "positive weight scales")
        m = len(p["bits"])
        w = b.const(f"{node.name}.weight", p["weight"].astype(np.int8), doc=weight_doc(node))
        w = b.op("DequantizeLinear", [w, b.const(f"{node.name}.weight_scale",
                                                 s_w.astype(np.float32)),
                                      b.const(f"{node.name}.weight_zero_point",
                                              np.zeros(m, np.int8))], node.name, axis=0)
        bias = p["bias"].astype(np.float64)
        if node.requantizes:
            bias = bias + p["offset"] / p["mult"].astype(np.float64)
        bias_real = b.const(f"{node.name}.bias", (bias * s_in * s_w).astype(np.float32))
        x = self.gather(node.inputs[0], p.get("in_index"), f"{node.name}.in")
        if node.op == "conv":
            y = b.op("Conv", [x, w, bias_real], node.name, kernel_shape=a["kernel"],
                     strides=a["stride"], pads=[*a["padding"], *a["padding"]],
                     group=a["groups"])
        else:
            y = b.op("Gemm", [x, w, bias_real], node.name, transB=1)
        if len(node.inputs) > 1:
            y = b.op("Add", [y, self.gather(node.inputs[1], p.get("skip_index"),
                                            f"{node.name}.skip")], node.name)
        if not node.requantizes:
            return y
        return self.qdq(y, node.output, a["lo"], a["hi"])

    def run(self) -> tuple[list[onnx.ValueInfoProto], list[onnx.ValueInfoProto]]:
        g, b = self.g, self.b
        t_in = g.tensors[g.input]
        b.reserve(INPUT_NAME)
        for i, name in enumerate(g.outputs):
            b.reserve(LOGITS if i == 0 else name, hold=True)
        self.env[g.input] = self.qdq(INPUT_NAME, g.input)
        inputs = [value_info(INPUT_NAME, np.float32, ["N", *t_in.shape])]
        for node in g.nodes:
            a = node.attrs
            if node.op in ("conv", "fc"):
                y = self.weight_node(node)
            elif node.op == "maxpool":
                y = b.op("MaxPool", [self.env[node.inputs[0]]], node.name,
                         kernel_shape=a["kernel"], strides=a["stride"],
                         pads=[*a["padding"], *a["padding"]])
            elif node.op == "gap":
                y = b.op("GlobalAveragePool", [self.env[node.inputs[0]]], node.name)
                y = self.qdq(y, node.output, a["lo"], a["hi"])
            elif node.op == "add":
                y = b.op("Add", [self.env[node.inputs[0]],
                                 self.gather(node.inputs[1], node.params.get("b_index"),
                                             node.name)], node.name)
                y = self.qdq(y, node.output, a["lo"], a["hi"])
            elif node.op == "flatten":
                y = b.op("Flatten", [self.env[node.inputs[0]]], node.name, axis=1)
            else:
                raise OnnxExportError(f"'{node.name}': op {node.op!r} has no ONNX form")
            self.env[node.output] = y
        outs = []
        for i, name in enumerate(g.outputs):
            t = g.tensors[name]
            out_name = LOGITS if i == 0 else name
            y = self.env[name]
            if t.order is not None:
                idx = b.const(f"{name}.restore_order", inverse(t.order).astype(np.int64))
                b.op("Gather", [y, idx], name, out=out_name, axis=1)
            else:
                b.op("Identity", [y], name, out=out_name)
            outs.append(value_info(out_name, np.float32, ["N", *t.shape]))
        return inputs, outs


def build_qdq_model(graph: IntGraph, artifact_sha: str = "") -> onnx.ModelProto:
    """The QDQ float view of an integer graph: input `input` (the normalised float image),
    output `logits` (real-valued, original class order)."""
    ex = _QdqExporter(graph)
    inputs, outputs = ex.run()
    doc = ("filmqnn QDQ view (approximate): float input normalised like the training data; "
           "the integer-exact graph is the one written by `filmqnn onnx --out`.")
    meta = model_metadata(graph, artifact_sha, "qdq")
    meta["filmqnn.tensor_names"] = json.dumps(ex.quantized, separators=(",", ":"))
    return finish_model(ex.b, "filmqnn_qdq", inputs, outputs, meta, doc)
