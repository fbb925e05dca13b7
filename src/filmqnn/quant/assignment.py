"""Intra-layer precision assignment: how many filters get 8 bits (tile rule) and which ones."""

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from filmqnn.quant.qmodules import QConv2d, QLinear, layer_kind
from filmqnn.tile_rule import high_filter_count

ASSIGNMENT_FORMAT = "filmqnn.assignment/1"


@dataclass
class LayerAssignment:
    """The high-precision filters of one layer."""

    name: str
    kind: str
    filters: int
    high_filters: list[int]
    fixed: bool = False  # first conv / last FC: all filters high, not ranked


@dataclass
class Assignment:
    """Per layer, the list of 8-bit filters: the artifact QAT, lowering and hardware all share."""

    ratio: float
    tm: int | None
    criterion: str
    low_bits: int
    high_bits: int
    layers: list[LayerAssignment] = field(default_factory=list)

    @property
    def ratio_high(self) -> float:
        """Fraction of high-precision filters in the ranked layers (first/last excluded)."""
        ranked = [la for la in self.layers if not la.fixed] or self.layers
        return sum(len(la.high_filters) for la in ranked) / max(sum(la.filters for la in ranked), 1)

    @property
    def ratio_high_all(self) -> float:
        """Fraction of high-precision filters over every layer, first conv and last FC included."""
        total = sum(la.filters for la in self.layers)
        return sum(len(la.high_filters) for la in self.layers) / max(total, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ASSIGNMENT_FORMAT,
            "ratio": self.ratio,
            "tm": self.tm,
            "criterion": self.criterion,
            "low_bits": self.low_bits,
            "high_bits": self.high_bits,
            "ratio_8bit": self.ratio_high,
            "ratio_8bit_all_layers": self.ratio_high_all,
            "layers": [
                {
                    "name": la.name,
                    "kind": la.kind,
                    "filters": la.filters,
                    "filters_8bit": len(la.high_filters),
                    "high_filters": la.high_filters,
                    "fixed": la.fixed,
                }
                for la in self.layers
            ],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Assignment":
        if d.get("format") != ASSIGNMENT_FORMAT:
            raise ValueError(
                f"not a filmqnn assignment (format {d.get('format')!r}, expected "
                f"{ASSIGNMENT_FORMAT!r})"
            )
        layers = [
            LayerAssignment(
                la["name"],
                la["kind"],
                la["filters"],
                list(la["high_filters"]),
                la.get("fixed", False),
            )
            for la in d["layers"]
        ]
        return cls(d["ratio"], d["tm"], d["criterion"], d["low_bits"], d["high_bits"], layers)

    def save(self, path: str | Path) -> None:
        """Write the assignment as JSON atomically (temp file, then rename)."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Assignment":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"assignment file {path} not found; create it with "
                "`filmqnn quantize` or `filmqnn assign --out FILE`"
            )
        return cls.from_dict(json.loads(path.read_text()))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON to `path` through a temp file in the same directory and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def assign_from_scores(
    layers: list[tuple[str, QConv2d | QLinear]],
    scores: dict[str, torch.Tensor],
    ratio: float,
    tm: int | None = None,
    criterion: str = "output-error",
    fixed_high: set[str] | None = None,
) -> Assignment:
    """Give the top-scoring filters of every layer high precision; `fixed_high` layers get all."""
    fixed_high = fixed_high or set()
    first = layers[0][1]
    out = Assignment(ratio, tm, criterion, first.low_bits, first.high_bits)
    for name, layer in layers:
        m = layer.num_filters
        if name in fixed_high:
            out.layers.append(LayerAssignment(name, layer_kind(layer), m, list(range(m)), True))
            continue
        k = high_filter_count(m, ratio, tm)
        top = torch.topk(scores[name].float(), k).indices.sort().values.tolist() if k else []
        out.layers.append(LayerAssignment(name, layer_kind(layer), m, top))
    return out


def apply_assignment(layers: list[tuple[str, nn.Module]], assignment: Assignment) -> None:
    """Set every layer's per-filter bit widths from the assignment; names and sizes must match."""
    by_name = {la.name: la for la in assignment.layers}
    names = [n for n, _ in layers]
    if set(by_name) != set(names):
        missing, extra = set(names) - set(by_name), set(by_name) - set(names)
        raise ValueError(
            f"assignment does not match the model: layers missing {sorted(missing)}, "
            f"unknown {sorted(extra)}; was it made for another model?"
        )
    for name, layer in layers:
        la = by_name[name]
        if la.filters != layer.num_filters:
            raise ValueError(
                f"layer {name}: assignment has {la.filters} filters, model has {layer.num_filters}"
            )
        layer.set_high_precision(la.high_filters)
