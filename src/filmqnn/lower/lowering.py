"""Lower a calibrated fake-quantized torch model (quant.conversion) to an integer graph."""

from dataclasses import dataclass

import numpy as np
import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from filmqnn.formats import ACC_BITS
from filmqnn.lower.graph import IntGraph, Node, TensorInfo
from filmqnn.lower.requant import RequantError, dyadic
from filmqnn.quant.act_quant import ActQuant
from filmqnn.quant.conversion import is_add, is_gap, is_pass
from filmqnn.quant.errors import UnsupportedLayerError
from filmqnn.quant.qmodules import QConv2d, QLinear


class LoweringError(ValueError):
    """The quantized model cannot be lowered to the integer graph (names the layer and why)."""


@dataclass
class _Acc:
    """A conv / fc whose int32 accumulator is not yet requantized (scale per filter)."""

    node: Node
    scale: np.ndarray
    bias_frac: np.ndarray  # bias / scale - int32 bias: the part below the accumulator LSB
    cap: float | None = None  # ReLU6's real upper bound

    def set_requant(self, mult: np.ndarray, shift: np.ndarray) -> None:
        """Store M, S (and M2 of a fused add) and the per-filter rounding offset that carries
        the bias fraction: round(bias_frac * M), |offset| <= M/2 < 2^15."""
        p = self.node.params
        offset = np.round(self.bias_frac * mult[0]).astype(np.int64)
        p.update(mult=mult[0], shift=shift, offset=offset)
        if len(mult) > 1:
            p["skip_mult"] = mult[1]


@dataclass
class _Pending:
    """A gap or add (of two quantized tensors) waiting for the quantizer of its output."""

    kind: str
    node: Node
    acc: _Acc | None = None


def _amax(t: TensorInfo) -> int:
    return max(-t.fmt.qmin, t.fmt.qmax)


def _pair(v: int | tuple[int, ...]) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


def accumulator_bound(weight: np.ndarray, bias: np.ndarray, in_amax: int) -> np.ndarray:
    """Largest |accumulator| of every filter: sum|w| * max|x| + |bias| (int64 [M])."""
    w = np.abs(weight.reshape(weight.shape[0], -1).astype(np.int64)).sum(axis=1)
    return w * in_amax + np.abs(bias.astype(np.int64))


def _check_accumulator(name: str, bound: np.ndarray, acc_bits: int) -> None:
    limit = (1 << (acc_bits - 1)) - 1
    if bound.max() > limit:
        m = int(bound.argmax())
        raise LoweringError(
            f"layer '{name}' can overflow its int{acc_bits} accumulator: filter {m} reaches "
            f"|acc| <= {int(bound[m])} > {limit}; reduce its fan-in or weight/activation bits, "
            "or retrain with a larger weight scale"
        )


class _Lowerer:
    def __init__(self, gm: fx.GraphModule, input_shape: tuple[int, ...], acc_bits: int) -> None:
        self.gm = gm
        self.acc_bits = acc_bits
        if sum(n.op == "placeholder" for n in gm.graph.nodes) != 1:
            raise LoweringError("models with several inputs are not supported")
        ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
        self.values: dict[fx.Node, object] = {}
        self.tensors: dict[str, TensorInfo] = {}
        self.nodes: list[Node] = []
        self.input: str | None = None
        self.outputs: list[str] = []

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        return tuple(int(d) for d in node.meta["tensor_meta"].shape[1:])

    def int_input(self, node: fx.Node, arg: object) -> TensorInfo:
        v = self.values.get(arg) if isinstance(arg, fx.Node) else None
        if not isinstance(v, TensorInfo):
            raise LoweringError(f"'{node.name}' reads a tensor that is not quantized ({arg})")
        return v

    def add_tensor(self, t: TensorInfo) -> TensorInfo:
        self.tensors[t.name] = t
        return t

    def run(self) -> IntGraph:
        for node in self.gm.graph.nodes:
            self.values[node] = self.visit(node)
        if self.input is None:
            raise LoweringError("the model has no quantized input")
        return IntGraph(self.input, self.tensors, self.nodes, self.outputs)

    def visit(self, node: fx.Node) -> object:
        if node.op == "placeholder":
            return node
        if node.op == "output":
            return self.output(node)
        mod = self.gm.get_submodule(node.target) if node.op == "call_module" else None
        if isinstance(mod, ActQuant):
            return self.quantize(node, mod)
        if isinstance(mod, (QConv2d, QLinear)):
            return self.weight_layer(node, mod)
        if isinstance(mod, nn.ReLU6):
            acc = self.values[node.args[0]]
            if not isinstance(acc, _Acc):
                raise LoweringError(f"ReLU6 '{node.name}' must directly follow a conv or linear")
            acc.cap = 6.0
            return acc
        if isinstance(mod, nn.MaxPool2d):
            return self.maxpool(node, mod)
        if is_gap(self.gm, node):
            return self.gap(node)
        if is_add(node):
            return self.add(node)
        if node.op == "call_method" and node.target == "size":
            return None
        if is_pass(self.gm, node):
            return self.passthrough(node)
        raise UnsupportedLayerError(f"cannot lower '{node.name}' ({node.op} {node.target})")

    def passthrough(self, node: fx.Node) -> object:
        src = self.values[node.args[0]]
        if not isinstance(src, TensorInfo):
            return src
        shape = self.shape(node)
        if shape == src.shape:
            return src
        if len(shape) != 1:
            raise LoweringError(f"'{node.name}' reshapes to {shape}; only flattening is supported")
        out = self.add_tensor(TensorInfo(node.name, shape, src.bits, src.signed, src.scale))
        self.nodes.append(Node(node.name, "flatten", [src.name], out.name))
        return out

    def quantize(self, node: fx.Node, q: ActQuant) -> TensorInfo:
        src_node = node.args[0]
        src = self.values[src_node]
        s_out = q.scale
        fmt = q.fmt
        info = TensorInfo(node.name, self.shape(node), fmt.bits, fmt.signed, s_out)
        if src_node.op == "placeholder":
            info.scale = float(q.scale_param.detach().abs())  # the float32 the host divides by
            self.input = info.name
            return self.add_tensor(info)
        lo, hi = fmt.qmin, fmt.qmax
        if isinstance(src, _Acc):
            return self.finish_acc(src, info, lo, hi)
        if isinstance(src, _Pending) and src.kind == "gap":
            t_in = self.tensors[src.node.inputs[0]]
            hw = t_in.shape[1] * t_in.shape[2]
            mult, shift = self.dyadic(node, [[t_in.scale / (hw * s_out)]])
            if hw * _amax(t_in) > (1 << (self.acc_bits - 1)) - 1:
                raise LoweringError(f"global average pool '{src.node.name}' overflows its sum")
            src.node.params.update(mult=mult[0], shift=shift)
        elif isinstance(src, _Pending) and src.kind == "add-fused":
            acc, skip = src.acc, self.tensors[src.node.inputs[1]]
            ratios = [acc.scale / s_out, np.full(len(acc.scale), skip.scale / s_out)]
            acc.set_requant(*self.dyadic(node, ratios))
            return self.finish(acc.node, info, lo, hi)
        elif isinstance(src, _Pending) and src.kind == "add":
            a, b = (self.tensors[n] for n in src.node.inputs)
            mult, shift = self.dyadic(node, [[a.scale / s_out], [b.scale / s_out]])
            src.node.params.update(mult=mult[0], mult_b=mult[1], shift=shift)
        else:
            raise LoweringError(
                f"quantizer '{node.name}' requantizes an already quantized tensor; "
                "filmqnn lowers quantizers only after conv, linear, add and average pool"
            )
        return self.finish(src.node, info, lo, hi)

    def dyadic(self, node: fx.Node | Node, ratios: object) -> tuple[np.ndarray, np.ndarray]:
        try:
            return dyadic(np.asarray(ratios, dtype=np.float64))
        except RequantError as exc:
            raise LoweringError(f"at '{node.name}': {exc}") from exc

    def finish_acc(self, acc: _Acc, info: TensorInfo, lo: int, hi: int) -> TensorInfo:
        acc.set_requant(*self.dyadic(acc.node, [acc.scale / info.scale]))
        if acc.cap is not None:
            hi = min(hi, int(torch.round(torch.tensor(acc.cap / info.scale))))
        return self.finish(acc.node, info, lo, hi)

    def finish(self, n: Node, info: TensorInfo, lo: int, hi: int) -> TensorInfo:
        n.attrs.update(lo=int(lo), hi=int(hi))
        info.name = n.output
        self.nodes.append(n)
        return self.add_tensor(info)

    def weight_layer(self, node: fx.Node, layer: QConv2d | QLinear) -> _Acc:
        t_in = self.int_input(node, node.args[0])
        q_w, s_w = layer.integer_weight()
        s_w = s_w.detach().double().numpy()
        s_acc = t_in.scale * s_w
        bias_real = layer.bias.detach().double().numpy() / s_acc
        if np.abs(bias_real).max(initial=0) > (1 << 31) - 1:
            raise LoweringError(f"the bias of '{node.name}' does not fit int32 at its scale")
        bias = np.round(bias_real).astype(np.int32)
        weight = q_w.numpy().astype(np.int8)
        if isinstance(layer, QLinear):
            op, attrs = "fc", {}
            if len(t_in.shape) != 1:
                raise LoweringError(f"linear '{node.name}' needs a flattened input")
        else:
            op = "conv"
            if _pair(layer.dilation) != [1, 1] or layer.padding_mode != "zeros":
                raise UnsupportedLayerError(f"conv '{node.name}': only dilation 1, zero padding")
            attrs = {
                "kernel": _pair(layer.kernel_size),
                "stride": _pair(layer.stride),
                "padding": _pair(layer.padding),
                "groups": int(layer.groups),
            }
        bound = accumulator_bound(weight, bias, _amax(t_in))
        _check_accumulator(node.name, bound, self.acc_bits)
        attrs["acc_bound"] = int(bound.max())
        params = {
            "weight": weight,
            "bits": layer.bits.numpy().astype(np.uint8),
            "bias": bias,
        }
        node_ = Node(node.name, op, [t_in.name], node.name, attrs, params)
        return _Acc(node_, s_acc, bias_real - bias)

    def maxpool(self, node: fx.Node, mod: nn.MaxPool2d) -> TensorInfo:
        t_in = self.int_input(node, node.args[0])
        if mod.ceil_mode or _pair(mod.dilation) != [1, 1]:
            raise UnsupportedLayerError(
                f"max pool '{node.name}': ceil_mode and dilation are not supported"
            )
        attrs = {
            "kernel": _pair(mod.kernel_size),
            "stride": _pair(mod.stride if mod.stride is not None else mod.kernel_size),
            "padding": _pair(mod.padding),
        }
        out = self.add_tensor(
            TensorInfo(node.name, self.shape(node), t_in.bits, t_in.signed, t_in.scale)
        )
        self.nodes.append(Node(node.name, "maxpool", [t_in.name], out.name, attrs))
        return out

    def gap(self, node: fx.Node) -> _Pending:
        t_in = self.int_input(node, node.args[0])
        return _Pending("gap", Node(node.name, "gap", [t_in.name], node.name))

    def add(self, node: fx.Node) -> _Pending:
        a, b = (self.values.get(x) if isinstance(x, fx.Node) else x for x in node.args[:2])
        if isinstance(b, _Acc):
            a, b = b, a
        if isinstance(a, _Acc) and isinstance(b, TensorInfo):
            a.node.inputs.append(b.name)
            return _Pending("add-fused", a.node, a)
        if isinstance(a, TensorInfo) and isinstance(b, TensorInfo):
            return _Pending("add", Node(node.name, "add", [a.name, b.name], node.name))
        raise LoweringError(f"add '{node.name}' needs a conv output and a quantized tensor")

    def output(self, node: fx.Node) -> None:
        args = node.args[0]
        for arg in args if isinstance(args, (tuple, list)) else [args]:
            v = self.values[arg]
            if isinstance(v, _Acc):
                info = TensorInfo(v.node.name, self.shape(arg), 32, True, v.scale.tolist())
                self.nodes.append(v.node)
                self.add_tensor(info)
                self.outputs.append(info.name)
            elif isinstance(v, TensorInfo):
                self.outputs.append(v.name)
            else:
                raise LoweringError(f"network output '{arg}' is neither quantized nor a layer")


def lower(
    model: fx.GraphModule, input_shape: tuple[int, int, int], acc_bits: int = ACC_BITS
) -> IntGraph:
    """The integer graph of a calibrated quantized model for inputs of `input_shape` (C, H, W).

    Refuses (LoweringError) any layer whose accumulator could overflow int`acc_bits`.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _Lowerer(model, tuple(input_shape), acc_bits).run()
    finally:
        model.train(was_training)
