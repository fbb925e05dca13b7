"""LUT / FF cost of one MAC on LUT fabric or on a packed DSP (paper Eqs. 6-7, Fig. 3).

Numbers come from ``hw/data/lut_calibration.json``, written by ``scripts/calibrate_luts.py``:
``source="yosys"`` is the least-squares slope of Yosys ``synth_xilinx`` runs over generated
MAC arrays; ``source="vivado"`` (default) is the per-MAC cost implied by the paper's Vivado
results (Table 4), because the model's targets are Vivado results. See docs/lut_calibration.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

FAMILIES = ("7series", "ultrascale+")
IMPLS = ("lut", "dsp")
SOURCES = ("vivado", "yosys")


@dataclass(frozen=True)
class MacCost:
    """LUTs and FFs charged per MAC (multiplier + share of adder tree + accumulator)."""

    lut: float
    ff: float


@lru_cache(maxsize=1)
def calibration() -> dict[str, Any]:
    """The calibration JSON shipped as package data."""
    text = resources.files("filmqnn.hw").joinpath("data/lut_calibration.json").read_text()
    return json.loads(text)


def precision_key(wbits: int, abits: int) -> str:
    return f"w{wbits}a{abits}"


def _check(name: str, value: str, valid: tuple[str, ...] | list[str]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {list(valid)}")


def yosys_fit(family: str, impl: str, wbits: int, abits: int) -> dict[str, float]:
    """The raw Yosys fit entry (slopes and intercepts) for one configuration."""
    _check("family", family, FAMILIES)
    _check("impl", impl, IMPLS)
    fits = calibration()["yosys"]["fits"][family][impl]
    key = precision_key(wbits, abits)
    _check("precision", key, sorted(fits))
    return fits[key]


def mac_cost(family: str, impl: str, wbits: int, abits: int, source: str = "vivado") -> MacCost:
    """LUT/FF cost of one ``wbits x abits`` MAC on ``impl`` ("lut" or "dsp") in ``family``.

    ``impl="dsp"`` is the LUT/FF overhead per MAC that sits on a packed DSP. The Vivado source
    uses the Table-4-implied LUTs where the paper has that precision and otherwise scales the
    Yosys slope by the Vivado/Yosys ratio of the same weight width; FFs are always Yosys'.
    """
    _check("source", source, SOURCES)
    fit = yosys_fit(family, impl, wbits, abits)
    ff = fit["ff_per_mac"]
    if source == "yosys":
        return MacCost(fit["lut_per_mac"], ff)
    viv = calibration()["vivado_implied"]["costs"][family][impl]
    key = precision_key(wbits, abits)
    if key in viv:
        return MacCost(viv[key]["lut_per_mac"], ff)
    ratio = vivado_ratio(family, impl, wbits)
    return MacCost(fit["lut_per_mac"] * ratio, ff)


def vivado_ratio(family: str, impl: str, wbits: int) -> float:
    """Vivado-implied / Yosys LUT-per-MAC ratio for this weight width (5-bit activations)."""
    ratios = calibration()["ratio_vivado_over_yosys"][family][impl]
    key = precision_key(wbits, 5)
    if key not in ratios:
        key = min(ratios, key=lambda k: abs(int(k[1 : k.index("a")]) - wbits))
    return ratios[key]


def included_fixed_logic(family: str) -> dict[str, int]:
    """Fixed logic already inside the Vivado-implied per-MAC LUT costs of ``family``: the AXI
    ports and post-processing DSPs of the paper's Table 4 design (the resource model charges
    LUTs only for what a design has beyond them)."""
    _check("family", family, FAMILIES)
    inc = calibration()["vivado_implied"]["included_fixed_logic"][family]
    return {"axi_ports": int(inc["axi_ports"]), "post_dsps": int(inc["post_dsps"])}
