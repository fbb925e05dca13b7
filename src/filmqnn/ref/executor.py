"""The integer reference executor: runs an artifact's integer graph on a batch, exactly.

Convolutions run as float32 (oneDNN) when the layer's proven bound sum|w|*max|x| is below
2^24: every partial sum is then an integer of magnitude below 2^24, exactly representable,
so the result is exact in any summation order. Otherwise they run in float64 (bound < 2^31 <
2^53, proven by the lowering). A conv's requantization runs in float64 on numerators proven
below 2^53 (`_scaled_requant`), the rest in int64 (`requant.requantize`).
"""

import numpy as np
import torch
import torch.nn.functional as F

from filmqnn.lower.graph import WEIGHT_OPS, IntGraph, Node
from filmqnn.lower.requant import dequantize, quantize_input, requantize

FLOAT32_EXACT = 1 << 24


def _ieee_fp32() -> bool:
    """True when torch computes float32 convolutions and matmuls at full IEEE precision."""
    conv = getattr(getattr(torch.backends.mkldnn, "conv", None), "fp32_precision", "none")
    return torch.get_float32_matmul_precision() == "highest" and conv in ("none", "ieee")


def _scaled_requant(p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...] | None:
    """float64 constants M*2^-S, (offset + 2^(S-1))*2^-S, M2*2^-S for a faster requantization.

    floor(acc*M*2^-S + C*2^-S + skip*M2*2^-S) equals (acc*M + C + skip*M2) >> S exactly when
    the integer numerator stays below 2^53: |acc*M| < 2^47 (acc < 2^31, M < 2^16), |bias*M +
    offset| < 2^48, |skip*M2| < 2^40 and 2^(S-1) <= 2^51 for S <= 52. None: use int64.
    """
    shift = p["shift"]
    if int(shift.max()) > 52:
        return None
    scale = torch.ldexp(torch.ones_like(shift, dtype=torch.float64), -shift)
    rounding = p["offset"] + (1 << (shift - 1))
    skip = p["skip_mult"].double() * scale if "skip_mult" in p else None
    return p["mult"].double() * scale, rounding.double() * scale, skip


def requantize_scaled(
    acc: torch.Tensor,
    scaled: tuple[torch.Tensor, ...],
    lo: int,
    hi: int,
    skip: torch.Tensor | None = None,
) -> torch.Tensor:
    """`requant.requantize` computed on `_scaled_requant` constants in float64 (exact)."""
    mult, rounding, skip_mult = scaled
    y = acc.to(torch.float64).mul_(mult).add_(rounding)
    if skip is not None:
        y.addcmul_(skip, skip_mult)
    return y.floor_().clamp_(lo, hi)


class _Op:
    """One node with its parameters as torch tensors, ready to run."""

    def __init__(self, node: Node, graph: IntGraph) -> None:
        self.node = node
        self.attrs = node.attrs
        self.scaled: tuple[torch.Tensor, ...] | None = None
        p = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in node.params.items()}
        shape = (-1, 1, 1) if node.op == "conv" else (-1,)
        for key in ("bias", "mult", "shift", "skip_mult", "offset"):
            if key in p and node.op in WEIGHT_OPS:
                p[key] = p[key].to(torch.int64).reshape(shape)
        if node.requantizes and "offset" in p:  # (acc + bias)*M + offset, one pass fewer
            p["offset"] = p["offset"] + p["bias"] * p["mult"]
            self.scaled = _scaled_requant(p)
        if "weight" in p:
            t_in = graph.tensors[node.inputs[0]]
            amax = max(-t_in.fmt.qmin, t_in.fmt.qmax)
            bound = int(p["weight"].abs().to(torch.int64).flatten(1).sum(1).max()) * amax
            self.dtype = torch.float32 if bound < FLOAT32_EXACT else torch.float64
            p["weight"] = p["weight"].to(self.dtype)
        self.p = p

    def __call__(self, xs: list[torch.Tensor], fast: bool) -> torch.Tensor:
        n, a, p = self.node, self.attrs, self.p
        x = xs[0]
        if n.op == "flatten":
            return x.flatten(1)
        if n.op == "maxpool":
            return F.max_pool2d(x, a["kernel"], a["stride"], a["padding"])
        if n.op == "gap":
            acc = x.to(torch.int64).sum(dim=(2, 3), keepdim=True)
            return requantize(acc, p["mult"], p["shift"], a["lo"], a["hi"]).float()
        if n.op == "add":
            b = xs[1] if "b_index" not in p else xs[1].index_select(1, p["b_index"])
            y = x.to(torch.int64) * p["mult"] + b.to(torch.int64) * p["mult_b"]
            return requantize(y, 1, p["shift"], a["lo"], a["hi"]).float()
        dtype = self.dtype if fast else torch.float64
        w = p["weight"].to(dtype)
        if "in_index" in p:
            x = x.index_select(1, p["in_index"])
        if n.op == "conv":
            acc = F.conv2d(x.to(dtype), w, None, a["stride"], a["padding"], 1, a["groups"])
        else:
            acc = F.linear(x.to(dtype), w)
        if not n.requantizes:
            return acc.to(torch.int64) + p["bias"]
        skip = None
        if len(xs) > 1:
            skip = xs[1] if "skip_index" not in p else xs[1].index_select(1, p["skip_index"])
        if self.scaled is None:
            y = requantize(
                acc, p["mult"], p["shift"], a["lo"], a["hi"], skip, p.get("skip_mult"), p["offset"]
            )
            return y.float()
        return requantize_scaled(acc, self.scaled, a["lo"], a["hi"], skip).float()


class ReferenceExecutor:
    """Runs an integer graph (usually `load_artifact(DIR)`) with integer semantics only."""

    def __init__(self, graph: IntGraph) -> None:
        self.graph = graph
        self.ops = [_Op(n, graph) for n in graph.nodes]
        self.input_scale = float(graph.tensors[graph.input].scale)

    @torch.no_grad()
    def run_int(self, x_int: torch.Tensor) -> list[torch.Tensor]:
        """int64 network outputs, in the original channel order, of int8-range inputs [N,C,H,W]."""
        fast = _ieee_fp32()
        env = {self.graph.input: x_int.float()}
        for op in self.ops:
            env[op.node.output] = op([env[i] for i in op.node.inputs], fast)
        outs = []
        for name in self.graph.outputs:
            y = env[name].to(torch.int64)
            order = self.graph.tensors[name].order
            if order is not None:  # host restores the original class / channel order
                y = torch.empty_like(y).index_copy_(1, torch.from_numpy(order), y)
            outs.append(y)
        return outs

    def int_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Integer logits of the first output for normalised float images (host quantizes)."""
        return self.run_int(quantize_input(x, self.input_scale))[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Dequantized float64 logits (int logits times each class's scale)."""
        out = self.graph.tensors[self.graph.outputs[0]]
        return dequantize(self.int_logits(x), out.scale)
