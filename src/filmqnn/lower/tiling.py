"""The accelerator tiling the artifact is laid out for: Tm filters per output tile (Tm8 of
them 8-bit), Tn input channels per step, G activations per packed word, the AXI word width."""

from dataclasses import asdict, dataclass
from typing import Any

from filmqnn.formats import ACT_BITS
from filmqnn.tile_rule import tile_high_filters

AXI_WIDTHS = (32, 64, 128, 256, 512)
DEFAULT_TM = 32
DEFAULT_TN = 8
DEFAULT_G = 8
DEFAULT_AXI_BITS = 128
_ALIASES = {"axi": "axi_bits"}


@dataclass(frozen=True)
class Tiling:
    """Tile sizes the weight reordering and the data packing follow (DESIGN.md §4)."""

    tm: int = DEFAULT_TM
    tm8: int = 2
    tn: int = DEFAULT_TN
    g: int = DEFAULT_G
    axi_bits: int = DEFAULT_AXI_BITS

    def __post_init__(self) -> None:
        if self.tm < 1 or self.tn < 1 or self.g < 1:
            raise ValueError(f"tiling {self}: tm, tn and g must be >= 1")
        if not 0 <= self.tm8 <= self.tm:
            raise ValueError(f"tiling {self}: tm8 must lie in [0, tm]")
        if self.tn % 2:
            raise ValueError(f"tiling {self}: tn must be even (two 4-bit weights per byte)")
        if self.axi_bits not in AXI_WIDTHS:
            raise ValueError(f"tiling {self}: axi_bits must be one of {AXI_WIDTHS}")
        if self.g * ACT_BITS > min(self.axi_bits, 64):
            raise ValueError(
                f"tiling {self}: a packed word of g={self.g} {ACT_BITS}-bit activations must "
                f"fit the {self.axi_bits}-bit AXI word and 64 bits"
            )

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Tiling":
        known = {"tm", "tm8", "tn", "g", "axi_bits"}
        if not isinstance(d, dict) or set(d) - known:
            raise ValueError(f"tiling must be an object with keys {sorted(known)}, got {d!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in d.values()):
            raise ValueError(f"tiling values must be integers, got {d!r}")
        return cls(**d)

    @classmethod
    def parse(cls, text: str, ratio: float = 0.05, tm: int | None = None) -> "Tiling":
        """'tm=32,tm8=2,tn=8,g=8,axi_bits=128'; omitted keys take defaults (`tm` when given),
        tm8 from the ratio's tile rule."""
        vals: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not value.strip().lstrip("-").isdigit():
                raise ValueError(f"tiling item {part!r} is not key=integer (e.g. tm=32,tn=8)")
            key = key.strip().lower()
            vals[_ALIASES.get(key, key)] = int(value)
        vals.setdefault("tm", tm or DEFAULT_TM)
        vals.setdefault("tm8", tile_high_filters(vals["tm"], ratio))
        return cls.from_dict(vals)
