"""Layer shapes by tracing a module: one forward pass with torch.fx and shape propagation, so
residual adds can be attributed to the conv that closes each block.

``python -m filmqnn.hw.trace`` rewrites the shipped table of the built-in models
(``hw/data/traced_layers.json``) that ``layers.model_layers`` reads without torch.
"""

from __future__ import annotations

import copy
import json
import operator
import os
import tempfile
from dataclasses import fields, replace
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.fx.proxy import TraceError

from filmqnn.hw.layers import (
    SUPPORTED_MODELS,
    TABLE_FILE,
    TABLE_SIZE,
    LayerShape,
    mark_first_last,
)


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
            ly = replace(ly, signed_in=signed(src[0]), tin=producer.get(src[0].name, -1),
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
                    layers[last] = replace(layers[last], residual=True, tskip=skip)
                    producer[node.name] = last
                continue
            if node.target in (nn.functional.adaptive_avg_pool2d, nn.functional.avg_pool2d):
                _, n, h, w = shape(src[0])
                _, _, r, c = shape(node)
                if (r, c) != (1, 1):
                    raise ValueError(f"{node.name}: only global average pooling is supported")
                ly = LayerShape(node.name, "gap", n, n, h, w, 1, 1, h, 1, 0, n)
                layers.append(replace(ly, signed_in=signed(src[0]),
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
    return mark_first_last(layers, first_last_8bit)


def build_model(name: str) -> nn.Module:
    """An untrained torchvision model by name on the meta device (only shapes are needed)."""
    import torchvision

    if name not in SUPPORTED_MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(SUPPORTED_MODELS)}")
    with torch.device("meta"):
        return getattr(torchvision.models, name)(weights=None)


@cache
def _traced(name: str, input_size: int) -> tuple[LayerShape, ...]:
    return tuple(layers_from_module(build_model(name), (3, input_size, input_size), False))


def trace_model(name: str, input_size: int) -> list[LayerShape]:
    """Engine layers of a built-in torchvision model, traced (cached per process)."""
    return list(_traced(name, input_size))


def _non_default(ly: LayerShape) -> dict[str, Any]:
    defaults = {f.name: f.default for f in fields(LayerShape)}
    return {k: v for k, v in ly.to_dict().items() if v != defaults[k]}


def write_table(path: Path) -> None:
    """Write the traces of every built-in model at the table size to ``path`` (atomically)."""
    import torchvision

    head = {
        "about": "engine layer shapes traced from torchvision models; regenerate with "
        "`python -m filmqnn.hw.trace`",
        "torchvision": torchvision.__version__.split("+")[0],
        "input_size": TABLE_SIZE,
    }
    # one layer per line, so the table diffs by layer
    models = ",\n".join(
        f"  {json.dumps(m)}: [\n"
        + ",\n".join("   " + json.dumps(_non_default(ly)) for ly in trace_model(m, TABLE_SIZE))
        + "\n  ]"
        for m in SUPPORTED_MODELS
    )
    text = "".join(f" {json.dumps(k)}: {json.dumps(v)},\n" for k, v in head.items())
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(f'{{\n{text} "models": {{\n{models}\n }}\n}}\n')
    os.replace(tmp, path)


if __name__ == "__main__":
    out = Path(__file__).parent / "data" / TABLE_FILE
    write_table(out)
    print(f"wrote {out}")
