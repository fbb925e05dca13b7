"""Layer shapes of a CNN as the accelerator sees them (conv, depthwise, FC, pools, fused adds).

Shapes come from one traced forward pass (torch.fx + shape propagation) so residual adds can
be attributed to the conv that closes each block; modules that torch.fx cannot trace fall back
to forward hooks (shapes only, no residual information).
"""

from __future__ import annotations

import copy
import math
import operator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.fx.proxy import TraceError

#: Layer kinds the engine runs. "dwconv", "maxpool" and "gap" are channel-wise modes.
KINDS = ("conv", "dwconv", "fc", "maxpool", "gap")
SUPPORTED_MODELS = ("resnet18", "resnet50", "mobilenet_v2")


@dataclass(frozen=True)
class LayerShape:
    """One engine invocation: N in-channels, M out-channels, HxW input, RxC output, KxK kernel."""

    name: str
    kind: str
    N: int
    M: int
    H: int
    W: int
    R: int
    C: int
    K: int
    stride: int = 1
    pad: int = 0
    groups: int = 1
    residual: bool = False  # a residual add is fused into this layer's write-back
    all8: bool = False  # every filter is 8-bit (first conv / last FC by default)
    first: bool = False  # reads the network input (signed 8-bit activations)
    signed_in: bool = False  # input activations are signed (not straight after a ReLU)
    planes: int = 1  # input bit-planes run as separate channel passes (8-bit network input)
    # (channels, K, stride) of a raw 8-bit input that the engine unrolls on chip (im2col)
    raw: tuple[int, int, int] | None = None
    # (K, stride, pad) of a max pool fused into this layer's write-back
    pool: tuple[int, int, int] | None = None
    # tensor ids (the index of the producing layer; -1: the network input or unknown) of the
    # input, the output and the residual operand: the feature-map store's liveness graph
    tin: int = -1
    tout: int = -1
    tskip: int = -1
    # which of those tensors the engine keeps in its on-chip feature-map store
    # (``residency.place_tensors``), the rest it moves over DDR
    in_chip: bool = False
    out_chip: bool = False
    skip_chip: bool = False
    # the input is a band ring of the store: this layer runs interleaved with its producer
    in_band: bool = False

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer (0 for pools)."""
        if self.kind in ("maxpool", "gap"):
            return 0
        return self.M * (self.N // self.groups) * self.K * self.K * self.R * self.C

    @property
    def is_channelwise(self) -> bool:
        """Depthwise conv and pools: output channel m reads only input channel m."""
        return self.kind in ("dwconv", "maxpool", "gap")

    @property
    def n_weights(self) -> int:
        """Weights of the layer (0 for pools)."""
        if self.kind in ("maxpool", "gap"):
            return 0
        return self.M * (self.N // self.groups) * self.K * self.K

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready) of the shape."""
        return asdict(self)


def filters_8bit(layer: LayerShape, Tm: int, Tm8: int) -> int:
    """8-bit filters of a layer under the tile rule: Tm8 per Tm-tile, never more than M."""
    if layer.kind in ("maxpool", "gap"):
        return 0
    if layer.all8:
        return layer.M
    if Tm8 <= 0:
        return 0
    return min(layer.M, Tm8 * math.ceil(layer.M / Tm))


def tm8_for_ratio(r: float, Tm: int) -> int:
    """8-bit filter slots per output tile: Tm8 = max(1, round(r*Tm)) (DESIGN §3)."""
    return max(1, round(r * Tm))


def _mark_first_last(layers: list[LayerShape], first_last_8bit: bool) -> list[LayerShape]:
    out = list(layers)
    compute = [i for i, ly in enumerate(out) if ly.kind in ("conv", "dwconv", "fc")]
    if not compute:
        return out
    i0, i1 = compute[0], compute[-1]
    out[i0] = _replace(
        out[i0], first=True, signed_in=True, all8=first_last_8bit or out[i0].all8
    )
    out[i1] = _replace(out[i1], all8=first_last_8bit or out[i1].all8)
    return out


def _replace(layer: LayerShape, **kw: Any) -> LayerShape:
    d = asdict(layer)
    d.update(kw)
    return LayerShape(**d)


def _pair(v: Any) -> int:
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ValueError(f"non-square kernel/stride {v} is not supported by the engine")
        return int(v[0])
    return int(v)


def _shape_of(module: nn.Module, name: str, x: torch.Tensor, y: torch.Tensor) -> LayerShape | None:
    if isinstance(module, nn.Conv2d):
        _, n, h, w = x.shape
        _, m, r, c = y.shape
        k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        if _pair(module.dilation) != 1:
            raise ValueError(f"layer {name}: dilated convolution is not supported")
        g = module.groups
        if g == 1:
            kind = "conv"
        elif g == n == m:
            kind = "dwconv"
        else:
            raise ValueError(f"layer {name}: grouped conv with groups={g} is not supported")
        return LayerShape(name, kind, n, m, h, w, r, c, k, s, p, g)
    if isinstance(module, nn.Linear):
        return LayerShape(name, "fc", module.in_features, module.out_features, 1, 1, 1, 1, 1)
    if isinstance(module, nn.MaxPool2d):
        _, n, h, w = x.shape
        _, _, r, c = y.shape
        k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        return LayerShape(name, "maxpool", n, n, h, w, r, c, k, s, p, n)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)):
        _, n, h, w = x.shape
        _, _, r, c = y.shape
        if (r, c) != (1, 1):
            raise ValueError(f"layer {name}: only global average pooling is supported")
        return LayerShape(name, "gap", n, n, h, w, 1, 1, h, 1, 0, n)
    return None


_PASSTHROUGH = (
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.Dropout,
    nn.Identity,
    nn.Flatten,
)
_PASS_FUNCS = {torch.flatten, torch.relu, nn.functional.relu, nn.functional.relu6}


def _trace_fx(module: nn.Module, example: torch.Tensor) -> list[LayerShape]:
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    gm = fx.symbolic_trace(module)
    ShapeProp(gm).propagate(example)
    mods = dict(gm.named_modules())
    layers: list[LayerShape] = []
    producer: dict[str, int] = {}  # fx node name -> index of the engine layer that produced it
    nonneg: set[str] = set()  # fx nodes whose values are >= 0 (after ReLU, or pools of those)

    def signed(node: Any) -> bool:
        return node.op == "placeholder" or node.name not in nonneg

    def shape(node: Any) -> torch.Size:
        return node.meta["tensor_meta"].shape

    for node in gm.graph.nodes:
        if node.op == "placeholder" or node.op == "output":
            continue
        src = [a for a in node.args if isinstance(a, fx.Node)]
        if node.op == "call_module":
            mod = mods[node.target]
            if isinstance(mod, _PASSTHROUGH):
                if src and src[0].name in producer:
                    producer[node.name] = producer[src[0].name]
                if isinstance(mod, (nn.ReLU, nn.ReLU6)) or (
                    not isinstance(mod, nn.BatchNorm2d) and src and src[0].name in nonneg
                ):
                    nonneg.add(node.name)
                continue
            x = torch.empty(shape(src[0]), device="meta")
            y = torch.empty(shape(node), device="meta")
            ly = _shape_of(mod, str(node.target), x, y)
            if ly is None:
                raise ValueError(f"layer {node.target} ({type(mod).__name__}) is not supported")
            ly = _replace(ly, signed_in=signed(src[0]), tin=producer.get(src[0].name, -1),
                          tout=len(layers))
            if ly.kind in ("maxpool", "gap") and not ly.signed_in:
                nonneg.add(node.name)
            layers.append(ly)
            producer[node.name] = len(layers) - 1
        elif node.op == "call_function":
            if node.target in (operator.add, torch.add, operator.iadd):
                idx = [producer[a.name] for a in src if a.name in producer]
                if len(src) == 2 and idx:
                    last = max(idx)
                    skip = min(idx) if len(set(idx)) == 2 else -1
                    layers[last] = _replace(layers[last], residual=True, tskip=skip)
                    producer[node.name] = last
                continue
            if node.target in (nn.functional.adaptive_avg_pool2d, nn.functional.avg_pool2d):
                _, n, h, w = shape(src[0])
                _, _, r, c = shape(node)
                if (r, c) != (1, 1):
                    raise ValueError(f"{node.name}: only global average pooling is supported")
                ly = LayerShape(node.name, "gap", n, n, h, w, 1, 1, h, 1, 0, n)
                layers.append(_replace(ly, signed_in=signed(src[0]),
                                       tin=producer.get(src[0].name, -1), tout=len(layers)))
                producer[node.name] = len(layers) - 1
                if not signed(src[0]):
                    nonneg.add(node.name)
                continue
            if node.target in _PASS_FUNCS or node.target is getattr:
                if src and src[0].name in producer:
                    producer[node.name] = producer[src[0].name]
                if node.target in (torch.relu, nn.functional.relu, nn.functional.relu6) or (
                    src and src[0].name in nonneg
                ):
                    nonneg.add(node.name)
                continue
            raise ValueError(f"operation {node.name} ({node.target}) is not supported")
        elif node.op == "call_method":
            if node.target in ("view", "flatten", "reshape", "relu", "relu_", "size"):
                if src and src[0].name in producer:
                    producer[node.name] = producer[src[0].name]
                if node.target in ("relu", "relu_") or (src and src[0].name in nonneg):
                    nonneg.add(node.name)
                continue
            raise ValueError(f"method {node.target} ({node.name}) is not supported")
        else:
            continue
    return layers


def layers_from_module(
    module: nn.Module, input_shape: tuple[int, ...], first_last_8bit: bool = True
) -> list[LayerShape]:
    """Engine layers of a user module for an input of shape (C, H, W) or (1, C, H, W)."""
    shp = tuple(input_shape)
    if len(shp) == 3:
        shp = (1, *shp)
    module = module.eval()
    try:
        # meta tensors: shapes without arithmetic, so even ResNet-50 traces in ~0.1 s
        layers = _trace_fx(copy.deepcopy(module).to("meta"), torch.zeros(shp, device="meta"))
    except Exception as exc:  # fx raises TraceError and others on data-dependent code
        if isinstance(exc, ValueError) and not isinstance(exc, TraceError):
            raise  # an unsupported layer, named by _trace_fx
        raise ValueError(
            f"{type(module).__name__} cannot be traced by torch.fx ({exc}); write its forward "
            "without data-dependent Python control flow"
        ) from exc
    if not any(ly.kind in ("conv", "dwconv", "fc") for ly in layers):
        raise ValueError("the module has no Conv2d or Linear layer the engine could run")
    return _mark_first_last(layers, first_last_8bit)


def build_model(name: str) -> nn.Module:
    """An untrained torchvision model by name (weights=None: only shapes are needed)."""
    import torchvision

    if name not in SUPPORTED_MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(SUPPORTED_MODELS)}")
    return getattr(torchvision.models, name)(weights=None)


_CACHE: dict[tuple[str, int, bool], list[LayerShape]] = {}


def model_layers(
    name: str, input_size: int = 224, first_last_8bit: bool = True
) -> list[LayerShape]:
    """Engine layers of a torchvision model at a square input size (cached per process)."""
    key = (name, input_size, first_last_8bit)
    if key not in _CACHE:
        with torch.device("meta"):
            model = build_model(name)
        _CACHE[key] = layers_from_module(model, (3, input_size, input_size), first_last_8bit)
    return list(_CACHE[key])


def total_macs(layers: list[LayerShape]) -> int:
    """Multiply-accumulates of a whole network."""
    return sum(ly.macs for ly in layers)
