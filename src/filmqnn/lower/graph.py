"""The integer graph: tensors with integer formats and scales, and the nodes that compute them."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from filmqnn.formats import IntFormat

OPS = ("conv", "fc", "maxpool", "gap", "add", "flatten")
WEIGHT_OPS = ("conv", "fc")


@dataclass
class TensorInfo:
    """One tensor per sample: shape (C, H, W) or (F,), integer format and real scale.

    `scale` is one float, or one per channel for an int32 network output (dequantized per
    class). `order[j]` is the original channel held at physical position j (None: identity).
    """

    name: str
    shape: tuple[int, ...]
    bits: int
    signed: bool
    scale: float | list[float]
    order: np.ndarray | None = None

    @property
    def fmt(self) -> IntFormat:
        return IntFormat(self.bits, self.signed)

    @property
    def channels(self) -> int:
        return self.shape[0]


@dataclass
class Node:
    """One operation: `op` in OPS, input and output tensor names, JSON attributes, int arrays.

    conv / fc params: weight (int8, [M, Cin/groups, K, K] or [M, F]), bits (uint8 [M], the
    precision of each filter position), bias (int32 [M]), mult and shift (int64 [M]) and the
    rounding offset [M] of a requantizing one; with a fused residual add also skip_mult [M]
    and, when the skip tensor is ordered differently, skip_index [M] (physical skip position
    read for output position j); a depthwise conv whose input is ordered differently has
    in_index [M]. gap and add hold mult / shift (and mult_b).
    attrs of requantizing ops hold the output clamp `lo`, `hi`; a conv or fc without them
    writes its int32 accumulator (a network output).
    """

    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def requantizes(self) -> bool:
        return "lo" in self.attrs


@dataclass
class IntGraph:
    """A lowered network: its input tensor, nodes in execution order, outputs and tiling."""

    input: str
    tensors: dict[str, TensorInfo]
    nodes: list[Node]
    outputs: list[str]
    tiling: dict[str, int] | None = None
    reordered: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]
