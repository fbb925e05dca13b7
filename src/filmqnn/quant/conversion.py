"""Turn a float CNN into a fake-quantized one: trace, check layers, fold BN, insert quantizers."""

import copy
import operator
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import fx, nn

from filmqnn.formats import INPUT_FORMAT, activation_format
from filmqnn.quant.act_quant import ActQuant
from filmqnn.quant.bn_fold import fold_bn_into_conv
from filmqnn.quant.config import QuantConfig
from filmqnn.quant.errors import UnsupportedLayerError
from filmqnn.quant.qmodules import QUANT_LAYERS, QConv2d, QLinear

RELU_MODULES = (nn.ReLU, nn.ReLU6)
PASS_MODULES = (nn.MaxPool2d, nn.Dropout, nn.Identity, nn.Flatten)
SUPPORTED_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.AdaptiveAvgPool2d, ActQuant)
SUPPORTED_MODULES += RELU_MODULES + PASS_MODULES
ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)
PASS_FUNCTIONS = (torch.flatten, F.dropout, operator.getitem)
SUPPORTED_FUNCTIONS = ADD_FUNCTIONS + PASS_FUNCTIONS + (F.relu, F.adaptive_avg_pool2d)
PASS_METHODS = ("flatten", "view", "reshape", "size", "contiguous")
SUPPORTED_METHODS = PASS_METHODS + ("add", "add_", "relu", "relu_")


def _describe(node: fx.Node, gm: fx.GraphModule) -> str:
    if node.op == "call_module":
        return f"{type(gm.get_submodule(node.target)).__name__} at '{node.target}'"
    return f"{getattr(node.target, '__name__', node.target)} ({node.op} '{node.name}')"


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace `model`; a model fx cannot trace gets an error that says so."""
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for data-dependent control flow
        raise UnsupportedLayerError(
            f"model {type(model).__name__} cannot be traced by torch.fx ({exc}); write its "
            "forward without data-dependent Python control flow"
        ) from exc


def check_supported(gm: fx.GraphModule) -> None:
    """Raise UnsupportedLayerError naming the first layer or operation filmqnn cannot handle."""
    for node in gm.graph.nodes:
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            if not isinstance(mod, SUPPORTED_MODULES):
                raise UnsupportedLayerError(
                    f"unsupported layer {_describe(node, gm)}; supported layers: "
                    + ", ".join(sorted({t.__name__ for t in SUPPORTED_MODULES}))
                )
            if isinstance(mod, nn.Conv2d) and mod.groups not in (1, mod.in_channels):
                raise UnsupportedLayerError(
                    f"unsupported grouped convolution {_describe(node, gm)} (groups={mod.groups}); "
                    "only standard (groups=1) and depthwise convolutions are supported"
                )
            if (
                isinstance(mod, nn.Conv2d)
                and mod.groups > 1
                and mod.out_channels != mod.in_channels
            ):
                raise UnsupportedLayerError(
                    f"unsupported depthwise multiplier in {_describe(node, gm)}; "
                    "depthwise convolutions need out_channels == in_channels"
                )
            if isinstance(mod, nn.AdaptiveAvgPool2d) and mod.output_size not in (1, (1, 1)):
                raise UnsupportedLayerError(
                    f"unsupported {_describe(node, gm)} with output size {mod.output_size}; "
                    "only global average pooling (output size 1) is supported"
                )
        elif node.op == "call_function" and node.target not in SUPPORTED_FUNCTIONS:
            raise UnsupportedLayerError(f"unsupported operation {_describe(node, gm)}")
        elif node.op == "call_method" and node.target not in SUPPORTED_METHODS:
            raise UnsupportedLayerError(f"unsupported tensor method {_describe(node, gm)}")


def _set_module(gm: fx.GraphModule, target: str, new: nn.Module) -> None:
    parent, _, name = target.rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, name, new)


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _is_relu(gm: fx.GraphModule, node: fx.Node) -> bool:
    return (
        isinstance(_module(gm, node), RELU_MODULES)
        or (node.op == "call_function" and node.target is F.relu)
        or (node.op == "call_method" and node.target in ("relu", "relu_"))
    )


def is_add(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in ADD_FUNCTIONS) or (
        node.op == "call_method" and node.target in ("add", "add_")
    )


def is_gap(gm: fx.GraphModule, node: fx.Node) -> bool:
    return isinstance(_module(gm, node), nn.AdaptiveAvgPool2d) or (
        node.op == "call_function" and node.target is F.adaptive_avg_pool2d
    )


def is_pass(gm: fx.GraphModule, node: fx.Node) -> bool:
    return (
        isinstance(_module(gm, node), PASS_MODULES)
        or (node.op == "call_function" and node.target in PASS_FUNCTIONS)
        or (node.op == "call_method" and node.target in PASS_METHODS)
    )


def _is_qlayer(gm: fx.GraphModule, node: fx.Node) -> bool:
    return isinstance(_module(gm, node), QUANT_LAYERS)


def _fold_batchnorms(gm: fx.GraphModule) -> None:
    for node in list(gm.graph.nodes):
        bn = _module(gm, node)
        if not isinstance(bn, nn.BatchNorm2d):
            continue
        src = node.args[0]
        conv = _module(gm, src) if isinstance(src, fx.Node) else None
        if not isinstance(conv, nn.Conv2d) or len(src.users) != 1:
            raise UnsupportedLayerError(
                f"BatchNorm2d at '{node.target}' does not directly follow a convolution; "
                "filmqnn folds every BatchNorm into the conv before it"
            )
        _set_module(gm, src.target, fold_bn_into_conv(conv, bn))
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)


def _replace_layers(gm: fx.GraphModule, cfg: QuantConfig) -> None:
    opts = dict(
        scale_mode=cfg.weight_scale, clip_mode=cfg.weight_clip, low=cfg.low_bits, high=cfg.high_bits
    )
    for node in gm.graph.nodes:
        mod = _module(gm, node)
        if isinstance(mod, nn.Conv2d) and not isinstance(mod, QConv2d):
            _set_module(gm, node.target, QConv2d.from_conv(mod, **opts))
        elif isinstance(mod, nn.Linear) and not isinstance(mod, QLinear):
            _set_module(gm, node.target, QLinear.from_linear(mod, **opts))
        elif isinstance(mod, RELU_MODULES):
            mod.inplace = False


def _insert_quant(gm: fx.GraphModule, node: fx.Node, quant: ActQuant) -> None:
    name = f"aq_{node.name}"
    gm.add_submodule(name, quant)
    with gm.graph.inserting_after(node):
        q = gm.graph.call_module(name, (node,))
    node.replace_all_uses_with(q, delete_user_cb=lambda user: user is not q)


def _source_quant(gm: fx.GraphModule, node: fx.Node) -> ActQuant | None:
    """The quantizer whose integers reach `node` through shape-only operations, if any."""
    while isinstance(node, fx.Node):
        mod = _module(gm, node)
        if isinstance(mod, ActQuant):
            return mod
        if not is_pass(gm, node):
            return None
        node = node.args[0]
    return None


def _fused_operand(gm: fx.GraphModule, add: fx.Node) -> fx.Node | None:
    """The conv output an add fuses into its write-back (DESIGN §2), or None."""
    for arg in add.args[:2]:
        if isinstance(arg, fx.Node) and _is_qlayer(gm, arg) and len(arg.users) == 1:
            return arg
    return None


def _insert_activation_quantizers(gm: fx.GraphModule, cfg: QuantConfig) -> None:
    unsigned = activation_format(cfg.act_bits, signed=False)
    signed = activation_format(cfg.act_bits, signed=True)
    nodes = list(gm.graph.nodes)
    fused = {_fused_operand(gm, n) for n in nodes if is_add(n)} - {None}
    for node in nodes:
        users = list(node.users)
        single_relu = len(users) == 1 and _is_relu(gm, users[0])
        if node.op == "placeholder":
            _insert_quant(gm, node, ActQuant(INPUT_FORMAT, mode="fixed", half_even=True))
        elif _is_relu(gm, node):
            _insert_quant(gm, node, ActQuant(unsigned, cfg.act_mode))
            if not isinstance(_module(gm, node), nn.ReLU6):  # the clamp at 0 is the ReLU
                node.replace_all_uses_with(node.args[0])
                gm.graph.erase_node(node)
        elif is_gap(gm, node):
            src = _source_quant(gm, node.args[0])
            fmt = signed if src is None or src.fmt.signed else unsigned
            _insert_quant(gm, node, ActQuant(fmt, cfg.act_mode))
        elif _is_qlayer(gm, node):
            to_output = all(u.op == "output" for u in users)
            if not (single_relu or node in fused or to_output):
                _insert_quant(gm, node, ActQuant(signed, cfg.act_mode))
        elif is_add(node) and not single_relu:
            _insert_quant(gm, node, ActQuant(signed, cfg.act_mode))


def _check_integer_inputs(gm: fx.GraphModule) -> None:
    for node in gm.graph.nodes:
        if _is_qlayer(gm, node) and _source_quant(gm, node.args[0]) is None:
            raise UnsupportedLayerError(
                f"the input of {_describe(node, gm)} is not a quantized tensor; filmqnn needs "
                "conv/FC inputs to come from ReLU, pooling, add or another quantized layer"
            )
        if is_add(node):
            fused = _fused_operand(gm, node)
            skip = [a for a in node.args[:2] if a is not fused]
            if any(_source_quant(gm, a) is None for a in skip):
                raise UnsupportedLayerError(
                    f"residual add '{node.name}' joins two unquantized tensors; "
                    "one operand must be a quantized activation"
                )


def quant_layers(model: nn.Module) -> list[tuple[str, QConv2d | QLinear]]:
    """The quantized conv/FC layers of a converted model, in execution order."""
    if isinstance(model, fx.GraphModule):
        found = []
        for node in model.graph.nodes:
            mod = _module(model, node)
            if isinstance(mod, QUANT_LAYERS):
                found.append((node.target, mod))
        return found
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QUANT_LAYERS)]


def activation_quantizers(model: nn.Module) -> Iterable[ActQuant]:
    """Every activation quantizer of a converted model."""
    return (m for m in model.modules() if isinstance(m, ActQuant))


def convert(model: nn.Module, cfg: QuantConfig | None = None) -> fx.GraphModule:
    """A fake-quantized copy of `model`: BN folded, mixed-precision layers, 5-bit activations.

    Every filter starts at the low bit width (first conv and last FC at the high one when
    `cfg.first_last_high`); call an assignment to choose the high-precision filters, and
    `calibrate` to set the activation scales before use.
    """
    cfg = cfg or QuantConfig()
    model = copy.deepcopy(model).eval()
    gm = trace(model)
    check_supported(gm)
    _fold_batchnorms(gm)
    _replace_layers(gm, cfg)
    _insert_activation_quantizers(gm, cfg)
    _check_integer_inputs(gm)
    gm.graph.lint()
    gm.delete_all_unused_submodules()  # the folded BatchNorms
    gm.recompile()
    layers = quant_layers(gm)
    if not layers:
        raise UnsupportedLayerError("model has no Conv2d or Linear layer to quantize")
    if cfg.first_last_high:
        for _, layer in (layers[0], layers[-1]):
            layer.set_high_precision(list(range(layer.num_filters)))
    gm.quant_config = cfg
    return gm
