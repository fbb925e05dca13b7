"""FPGA boards: resources, DSP kind, AXI width, DDR bandwidth and clock, one JSON file per board.

The JSON files under ``hw/boards/`` are the single source of truth for every device figure;
each figure carries a ``source`` citation. Users add a board by writing the same fields to a
JSON file and passing its path wherever a board name is accepted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

FAMILIES = {"7series": "dsp48e1", "ultrascale+": "dsp48e2"}
_INT_FIELDS = ("lut", "ff", "dsp", "bram18k", "uram", "axi_width_bits", "axi_ports")
_FLOAT_FIELDS = ("ddr_peak_gbps", "ddr_efficiency", "default_clock_mhz")
_REQUIRED = ("name", "part", "family", "dsp_kind", *_INT_FIELDS, *_FLOAT_FIELDS)


@dataclass(frozen=True)
class Board:
    """One board: its FPGA part's resources and the memory system the accelerator sees."""

    name: str
    part: str
    family: str  # "7series" | "ultrascale+"
    dsp_kind: str  # "dsp48e1" | "dsp48e2"
    lut: int
    ff: int
    dsp: int
    bram18k: int
    uram: int
    axi_width_bits: int  # width of one PS-PL high-performance port used by the engine
    axi_ports: int  # PS-PL high-performance ports to DDR; a design uses 1 .. axi_ports of them
    ddr_peak_gbps: float  # GB/s (1e9 bytes/s), bus width x transfer rate
    ddr_efficiency: float  # sustained / peak, documented modelling assumption
    default_clock_mhz: float
    source: dict[str, str] = field(default_factory=dict)

    def ddr_bytes_per_cycle(self, clock_mhz: float) -> float:
        """Sustained DDR bytes per accelerator clock cycle."""
        return self.ddr_peak_gbps * 1e9 * self.ddr_efficiency / (clock_mhz * 1e6)

    def limits(self) -> dict[str, int]:
        """Resource totals keyed like a resource estimate."""
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram18k": self.bram18k}

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def _board_dir() -> Path:
    return Path(str(resources.files("filmqnn.hw") / "boards"))


def list_boards() -> list[str]:
    """Names of the built-in boards."""
    return sorted(p.stem for p in _board_dir().glob("*.json"))


def validate_board(data: dict[str, Any], origin: str = "board") -> Board:
    """Check a board dict field by field and build a Board; raise ValueError naming the field."""
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: a board file must hold one JSON object")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{origin}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(data) - set(_REQUIRED) - {"source"})
    if unknown:
        raise ValueError(f"{origin}: unknown field(s) {', '.join(unknown)}")
    vals: dict[str, Any] = {"source": dict(data.get("source", {}))}
    for k in ("name", "part"):
        if not isinstance(data[k], str) or not data[k]:
            raise ValueError(f"{origin}: field {k} must be a non-empty string")
        vals[k] = data[k]
    if data["family"] not in FAMILIES:
        raise ValueError(f"{origin}: family must be one of {', '.join(FAMILIES)}")
    if data["dsp_kind"] != FAMILIES[data["family"]]:
        raise ValueError(
            f"{origin}: dsp_kind of family {data['family']} is {FAMILIES[data['family']]}"
        )
    vals["family"], vals["dsp_kind"] = data["family"], data["dsp_kind"]
    for k in _INT_FIELDS:
        v = data[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{origin}: field {k} must be a non-negative integer, got {v!r}")
        vals[k] = v
    for k in ("lut", "ff", "dsp", "bram18k", "axi_width_bits"):
        if vals[k] == 0:
            raise ValueError(f"{origin}: field {k} must be positive")
    if vals["axi_width_bits"] not in (32, 64, 128, 256, 512):
        raise ValueError(f"{origin}: axi_width_bits must be 32, 64, 128, 256 or 512")
    if vals["axi_ports"] < 1:
        raise ValueError(f"{origin}: field axi_ports must be at least 1 (the engine needs a port)")
    for k in _FLOAT_FIELDS:
        v = data[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ValueError(f"{origin}: field {k} must be a positive number, got {v!r}")
        vals[k] = float(v)
    if vals["ddr_efficiency"] > 1:
        raise ValueError(f"{origin}: ddr_efficiency is a fraction in (0, 1]")
    return Board(**vals)


def load_board(name_or_path: str | Path) -> Board:
    """A built-in board by name (case-insensitive) or a user board from a JSON file path."""
    key = str(name_or_path)
    path = Path(key)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise ValueError(f"board file {key} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"board file {key} is not valid JSON: {e}") from e
        return validate_board(data, origin=str(path))
    builtin = _board_dir() / f"{key.lower()}.json"
    if not builtin.is_file():
        raise ValueError(
            f"unknown board {key!r}; known boards: {', '.join(list_boards())} "
            "(or pass the path of a board JSON file)"
        )
    return validate_board(json.loads(builtin.read_text()), origin=builtin.name)
