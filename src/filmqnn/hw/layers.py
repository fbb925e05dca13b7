"""Layer shapes of a CNN as the accelerator sees them (conv, depthwise, FC, pools, fused adds).

The shapes of the built-in torchvision models at 224x224 ship as a table
(``hw/data/traced_layers.json``, written by ``python -m filmqnn.hw.trace``), so the hardware
model runs without importing torch; other models and sizes are traced (``hw.trace``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

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
    # every filter 4-bit on the PE4 rows alone, the PE8 rows idle: the middle layers of the
    # paper's inter-layer designs, whose 8-bit array runs the first and last layers only
    w4_only: bool = False
    first: bool = False  # reads the network input (signed 8-bit activations)
    # writes its int32 sums (the network's logits) instead of requantized activations
    int32_out: bool = False
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
    # output-row ranges [lo, hi) of the layer's runs in the order of the band schedule
    # (``residency.band_schedule``) when band fusion interleaves it with its neighbours;
    # () when it runs whole (set for one design: ``performance.network_performance``)
    bands: tuple[tuple[int, int], ...] = ()
    # (tm, g, extra groups per tile, index stored) of the depthwise input's / the skip
    # operand's gather, measured on an artifact reordered for that tiling (``hw.gathers``);
    # None: estimated
    in_gather: tuple[int, int, float, int] | None = None
    skip_gather: tuple[int, int, float, int] | None = None

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


def mark_first_last(layers: list[LayerShape], first_last_8bit: bool,
                    inter_layer: bool = False) -> list[LayerShape]:
    """The network's first compute layer reads the signed 8-bit input; with
    ``first_last_8bit`` it and the last compute layer hold only 8-bit filters; with
    ``inter_layer`` (the paper's inter-layer quantization: first and last W8A5, the rest
    W4A5) those two are all 8-bit and every other compute layer ``w4_only``. A last compute
    layer that ends the network writes its int32 sums, the logits (``int32_out``)."""
    out = list(layers)
    compute = [i for i, ly in enumerate(out) if ly.kind in ("conv", "dwconv", "fc")]
    if not compute:
        return out
    i0, i1 = compute[0], compute[-1]
    first_last_8bit = first_last_8bit or inter_layer
    if inter_layer:
        for i in compute[1:-1]:
            out[i] = replace(out[i], w4_only=True)
    out[i0] = replace(out[i0], first=True, signed_in=True, all8=first_last_8bit or out[i0].all8)
    out[i1] = replace(out[i1], all8=first_last_8bit or out[i1].all8,
                      int32_out=out[i1].int32_out or i1 == len(out) - 1)
    return out


#: Input size of the shipped traces.
TABLE_SIZE = 224
TABLE_FILE = "traced_layers.json"


@cache
def _table() -> dict[str, list[dict[str, Any]]]:
    text = resources.files("filmqnn.hw").joinpath("data", TABLE_FILE).read_text()
    return json.loads(text)["models"]


def layers_from_dicts(rows: list[dict[str, Any]]) -> list[LayerShape]:
    """Layer shapes from their ``to_dict`` form (tuples restored)."""
    out = []
    for r in rows:
        r = dict(r)
        for k in ("raw", "pool", "in_gather", "skip_gather"):
            if r.get(k) is not None:
                r[k] = tuple(r[k])
        out.append(LayerShape(**r))
    return out


def model_layers(
    name: str, input_size: int = TABLE_SIZE, first_last_8bit: bool = True,
    inter_layer: bool = False,
) -> list[LayerShape]:
    """Engine layers of a built-in torchvision model at a square input size: the shipped
    trace at 224x224, else a fresh trace (which imports torch); ``inter_layer``: the
    paper's inter-layer quantization (``mark_first_last``)."""
    if name not in SUPPORTED_MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(SUPPORTED_MODELS)}")
    if input_size == TABLE_SIZE and name in _table():
        layers = layers_from_dicts(_table()[name])
    else:
        from filmqnn.hw.trace import trace_model

        layers = trace_model(name, input_size)
    return mark_first_last(layers, first_last_8bit, inter_layer)


def total_macs(layers: list[LayerShape]) -> int:
    """Multiply-accumulates of a whole network."""
    return sum(ly.macs for ly in layers)
