"""Deploy mode: the quantized model as a torch module that computes with the integer graph's
semantics (int weights, int32 accumulators, dyadic requantization), so its logits equal the
integer reference's bit for bit. It runs in float64 (exact: every accumulator is proven below
2^31 by the lowering) on the unreordered, unpacked graph."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from filmqnn.lower.graph import WEIGHT_OPS, IntGraph, Node
from filmqnn.lower.requant import dequantize, quantize_input, requantize


def _t(a: np.ndarray, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


class _DeployOp(nn.Module):
    """One integer-graph node; buffers hold its integer parameters."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        p = node.params
        for key, value in p.items():
            dtype = torch.float64 if key == "weight" else torch.int64
            self.register_buffer(key, _t(value, dtype))
        per_channel = node.op in WEIGHT_OPS
        shape = (-1, 1, 1) if node.op == "conv" else (-1,)
        for key in ("mult", "shift", "skip_mult", "offset", "bias"):
            if key in p and per_channel:
                setattr(self, key, getattr(self, key).reshape(shape))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        n, a = self.node, self.node.attrs
        x = xs[0]
        if n.op == "flatten":
            return x.flatten(1)
        if n.op == "maxpool":
            y = F.max_pool2d(x.double(), a["kernel"], a["stride"], a["padding"])
            return y.to(torch.int64)
        if n.op == "gap":
            acc = x.sum(dim=(2, 3), keepdim=True)
            return requantize(acc, self.mult, self.shift, a["lo"], a["hi"])
        if n.op == "add":
            y = x * self.mult + xs[1] * self.mult_b
            return requantize(y, 1, self.shift, a["lo"], a["hi"])
        if n.op == "conv":
            acc = F.conv2d(x.double(), self.weight, None, a["stride"], a["padding"], 1, a["groups"])
        else:
            acc = F.linear(x.double(), self.weight)
        acc = acc.to(torch.int64) + self.bias
        if not n.requantizes:
            return acc
        skip = xs[1] if len(xs) > 1 else None
        return requantize(
            acc, self.mult, self.shift, a["lo"], a["hi"], skip, getattr(self, "skip_mult", None),
            self.offset,
        )


class DeployModel(nn.Module):
    """Runs an (unreordered) integer graph; `forward` takes normalised float images."""

    def __init__(self, graph: IntGraph) -> None:
        super().__init__()
        if graph.reordered:
            raise ValueError("deploy mode runs the unreordered graph from `lower`")
        self.graph = graph
        self.ops = nn.ModuleList(_DeployOp(n) for n in graph.nodes)
        self.input_scale = float(graph.tensors[graph.input].scale)

    def forward_int(self, x_int: torch.Tensor) -> list[torch.Tensor]:
        """Integer outputs (int64) of integer inputs."""
        env = {self.graph.input: x_int.to(torch.int64)}
        for op in self.ops:
            env[op.node.output] = op(*(env[i] for i in op.node.inputs))
        return [env[o] for o in self.graph.outputs]

    def int_logits(self, x: torch.Tensor) -> torch.Tensor:
        """int32-range logits of the first output for float images (host quantization included)."""
        return self.forward_int(quantize_input(x, self.input_scale))[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dequantized float64 logits: int logits times each class's scale."""
        out = self.graph.tensors[self.graph.outputs[0]]
        return dequantize(self.int_logits(x), out.scale)


def to_deploy(graph: IntGraph) -> DeployModel:
    """Deploy-mode torch model of a lowered graph."""
    return DeployModel(graph).eval()
