"""Conv and FC layers whose filters are fake-quantized to per-filter bit widths."""

import torch
import torch.nn.functional as F
from torch import nn

from filmqnn.formats import WEIGHT_BITS_HIGH, WEIGHT_BITS_LOW
from filmqnn.quant.weight_quant import (
    fake_quantize_scaled,
    fake_quantize_weight,
    qmax_of,
    quantize_weight_int,
    weight_amax,
    weight_scale,
)

CLIP_REFRESH = 32


class QuantWeightMixin:
    """Holds per-filter bit widths (`bits`, int buffer [M]) and the weight quantizer options."""

    weight: nn.Parameter
    bits: torch.Tensor

    def init_quant(self, scale_mode: str, clip_mode: str, low: int, high: int) -> None:
        self.scale_mode = scale_mode
        self.clip_mode = clip_mode
        self.low_bits = low
        self.high_bits = high
        self.quant_enabled = True
        m = self.weight.shape[0]
        self.register_buffer("bits", torch.full((m,), low, dtype=torch.uint8))
        self.register_buffer("clip_ratio", torch.ones(m))
        self.register_buffer("clip_age", torch.zeros((), dtype=torch.int32))
        self._age: int | None = None  # host copy of clip_age: no device sync per step

    @property
    def num_filters(self) -> int:
        return int(self.weight.shape[0])

    def set_high_precision(self, filters: list[int] | torch.Tensor) -> None:
        """Make exactly `filters` high-precision and every other filter low-precision."""
        self.bits.fill_(self.low_bits)
        self.clip_age.zero_()  # search the clip again for the new bit widths
        self._age = 0
        if len(filters):
            index = torch.as_tensor(filters, dtype=torch.long, device=self.bits.device)
            self.bits[index] = self.high_bits

    def high_precision_filters(self) -> list[int]:
        return torch.nonzero(self.bits == self.high_bits).flatten().tolist()

    def quantized_weight(self) -> torch.Tensor:
        """Fake-quantized weights: exact scales at inference, cached clip ratios in training."""
        if not self.quant_enabled:
            return self.weight
        if torch.is_grad_enabled():
            return fake_quantize_scaled(self.weight, *self._training_scale())
        key = (self.weight._version, self.bits._version, self.weight.data_ptr())
        if getattr(self, "_wq_key", None) != key:  # inference: reuse until W or bits change
            scale = weight_scale(self.weight, self.bits, self.scale_mode, self.clip_mode)
            self._wq = fake_quantize_weight(self.weight.detach(), self.bits, scale=scale)
            self._wq_key = key
        return self._wq

    @torch.no_grad()
    def _training_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-filter scales and top levels for a training step: the MSE clip search runs every
        CLIP_REFRESH steps (and after a re-assignment); in between its clip ratios scale the
        current max|W|. The ratios and the step count are buffers, so a resumed run repeats
        them exactly."""
        amax = weight_amax(self.weight, self.scale_mode)
        qmax = qmax_of(self.bits)
        if getattr(self, "_age", None) is None:
            self._age = int(self.clip_age)  # once after creation or loading, then kept on host
        if self.clip_mode == "mse" and self._age % CLIP_REFRESH != 0:
            scale = self.clip_ratio * amax / qmax
        else:
            scale = weight_scale(self.weight, self.bits, self.scale_mode, self.clip_mode)
            self.clip_ratio.copy_(scale * qmax / amax)
        self._age += 1
        self.clip_age.fill_(self._age)
        return scale, qmax

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)  # type: ignore[misc]
        self._age = None  # re-read clip_age from the loaded buffer

    def integer_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer weights and per-filter scales of the current float weights."""
        return quantize_weight_int(self.weight, self.bits, self.scale_mode, self.clip_mode)


class QConv2d(QuantWeightMixin, nn.Conv2d):
    """nn.Conv2d with mixed-precision fake-quantized filters (BN already folded in)."""

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        scale_mode: str = "per-filter",
        clip_mode: str = "mse",
        low: int = WEIGHT_BITS_LOW,
        high: int = WEIGHT_BITS_HIGH,
    ) -> "QConv2d":
        q = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            bias=True,
            padding_mode=conv.padding_mode,
        )
        with torch.no_grad():
            q.weight.copy_(conv.weight)
            q.bias.copy_(conv.bias if conv.bias is not None else torch.zeros(conv.out_channels))
        q.init_quant(scale_mode, clip_mode, low, high)
        return q.to(conv.weight.device)

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels == self.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.quantized_weight(), self.bias)


class QLinear(QuantWeightMixin, nn.Linear):
    """nn.Linear with mixed-precision fake-quantized rows (output neurons)."""

    @classmethod
    def from_linear(
        cls,
        fc: nn.Linear,
        scale_mode: str = "per-filter",
        clip_mode: str = "mse",
        low: int = WEIGHT_BITS_LOW,
        high: int = WEIGHT_BITS_HIGH,
    ) -> "QLinear":
        q = cls(fc.in_features, fc.out_features, bias=True)
        with torch.no_grad():
            q.weight.copy_(fc.weight)
            q.bias.copy_(fc.bias if fc.bias is not None else torch.zeros(fc.out_features))
        q.init_quant(scale_mode, clip_mode, low, high)
        return q.to(fc.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)


QUANT_LAYERS = (QConv2d, QLinear)


def layer_kind(layer: nn.Module) -> str:
    """'conv', 'depthwise' or 'fc': the kind name used by the CLI and the assignment artifact."""
    if isinstance(layer, nn.Linear):
        return "fc"
    if isinstance(layer, nn.Conv2d) and layer.groups > 1:
        return "depthwise" if layer.groups == layer.in_channels == layer.out_channels else "group"
    return "conv"
