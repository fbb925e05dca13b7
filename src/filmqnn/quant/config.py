"""Quantization options shared by conversion, assignment, training and the saved artifacts."""

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from filmqnn.formats import ACT_BITS, WEIGHT_BITS_HIGH, WEIGHT_BITS_LOW


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


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize: formats, 8-bit ratio and tile, ranking criterion, phases (saved as a
    quantized checkpoint's ``quant_spec``)."""

    config: QuantConfig = field(default_factory=QuantConfig)
    ratio: float = 0.05
    tm: int | None = None
    criterion: str = "output-error"
    mode: str = "qat"
    assign_epochs: int = 1
    calib_batches: int = 4
    assignment_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "QuantSpec":
        return cls(**{**d, "config": QuantConfig.from_dict(d["config"])})
