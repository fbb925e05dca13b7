"""Shared fixtures of the lowering tests: calibrated quantized models, cached per session.

`quantized(name, size, channels, seed)` builds a model (a registry name or "user_cnn"),
randomises its BatchNorm statistics so the network is not degenerate, converts it, makes a
random set of filters 8-bit in every layer but the first and last (at most the tile-rule
count for Tm = 16), and calibrates it. `lowered(...)` is its integer graph. Both are cached;
tests must not modify what they return (reorder / mark_unreordered copy the graph).
"""

import contextlib
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from filmqnn.lower.graph import IntGraph
from filmqnn.lower.lowering import lower
from filmqnn.lower.tiling import Tiling
from filmqnn.models import build_model
from filmqnn.quant import calibrate, convert, quant_layers
from filmqnn.tile_rule import tile_high_filters

TM = 16
TILING = Tiling(tm=TM, tm8=2, tn=4, g=8, axi_bits=128)
RATIO = TILING.tm8 / TM  # tile_high_filters(16, 0.125) == 2 == tm8
USER_CNN = "user_cnn"


class UserCNN(nn.Module):
    """A hand-written CNN with the layer mix a user might bring (no global average pool).

    5x5 stride-2 conv + BN + ReLU, depthwise 3x3 + BN + ReLU6, a plain add of two quantized
    tensors followed by ReLU, a 1x1 conv + BN (no ReLU) with a fused residual add, a 3x3
    stride-2 max pool with padding on a signed tensor, flatten of the [C, H, W] map, two FCs.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28,
                 width: int = 24, hidden: int = 40) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 5, stride=2, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.dw = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu6 = nn.ReLU6()
        self.pw = nn.Conv2d(width, width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        side = (input_size + 1) // 2  # after the stride-2 stem
        side = (side + 1) // 2  # after the pool
        self.fc1 = nn.Linear(width * side * side, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.bn1(self.stem(x)))
        b = self.relu6(self.bn2(self.dw(a)))
        y = F.relu(a + b)
        z = self.bn3(self.pw(y)) + y
        p = self.pool(z)
        h = F.relu(self.fc1(torch.flatten(p, 1)))
        return self.fc2(h)


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread: on a busy 2-core machine calibration is ~50x faster so."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            mod.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.bias.data.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)


def tile_rule_count(num_filters: int, tm: int = TM, ratio: float = RATIO) -> int:
    return min(num_filters, tile_high_filters(tm, ratio) * math.ceil(num_filters / tm))


def assign_random(q: fx.GraphModule, gen: torch.Generator) -> None:
    """A random set of 8-bit filters in every inner layer, 1..tile-rule count of them."""
    for _, layer in quant_layers(q)[1:-1]:
        m = layer.num_filters
        n8 = int(torch.randint(1, tile_rule_count(m) + 1, (1,), generator=gen))
        layer.set_high_precision(torch.randperm(m, generator=gen)[:n8].tolist())


@functools.cache
def build_quantized(name: str, size: int = 28, channels: int = 1, seed: int = 0) -> fx.GraphModule:
    gen = torch.Generator().manual_seed(seed)
    with one_thread(), torch.random.fork_rng():
        torch.manual_seed(seed)
        if name == USER_CNN:
            model = UserCNN(10, channels, size)
        else:
            model = build_model(name, num_classes=10, in_channels=channels, input_size=size)
        with torch.no_grad():
            randomise_bn(model, gen)
        q = convert(model)
        assign_random(q, gen)
        calibrate(q, [torch.randn(4, channels, size, size, generator=gen)])
    return q


@functools.cache
def build_lowered(name: str, size: int = 28, channels: int = 1, seed: int = 0) -> IntGraph:
    with one_thread():
        return lower(build_quantized(name, size, channels, seed), (channels, size, size))


@pytest.fixture(scope="session")
def quantized():
    """`quantized(name, size=28, channels=1, seed=0)`: a calibrated fake-quant model (cached)."""
    return build_quantized


@pytest.fixture(scope="session")
def lowered():
    """`lowered(name, size=28, channels=1, seed=0)`: its IntGraph from `lower` (cached)."""
    return build_lowered


@pytest.fixture(scope="session")
def tiling() -> Tiling:
    return TILING
