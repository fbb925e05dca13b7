"""Quantization options shared by conversion, assignment, training and the saved artifacts."""

from dataclasses import asdict, dataclass, fields
from typing import Any

from filmqnn.quant.formats import ACT_BITS, WEIGHT_BITS_HIGH, WEIGHT_BITS_LOW


@dataclass(frozen=True)
class QuantConfig:
    """How a float model is quantized: bit widths, scale and clip modes, first/last layer rule."""

    act_bits: int = ACT_BITS
    low_bits: int = WEIGHT_BITS_LOW
    high_bits: int = WEIGHT_BITS_HIGH
    weight_scale: str = "per-filter"
    weight_clip: str = "mse"
    act_mode: str = "lsq"
    first_last_high: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "QuantConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"unknown quantization options {sorted(unknown)}; known: {sorted(known)}"
            )
        return cls(**d)
