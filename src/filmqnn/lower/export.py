"""Export a quantized checkpoint as an integer artifact: lower, reorder for a tiling, save."""

from pathlib import Path
from typing import Any

from filmqnn.lower.artifact import save_artifact
from filmqnn.lower.graph import IntGraph
from filmqnn.lower.lowering import lower
from filmqnn.lower.reordering import mark_unreordered, reorder
from filmqnn.lower.tiling import Tiling
from filmqnn.lower.traffic import traffic_report
from filmqnn.quant.checkpoint import load_quantized
from filmqnn.quant.config import QuantSpec


def input_shape_of(state: dict[str, Any]) -> tuple[int, int, int]:
    """(C, H, W) of the images a quantized checkpoint was trained on."""
    data = state["fp32"]["data"]
    return (data["in_channels"], data["image_size"], data["image_size"])


def lower_checkpoint(checkpoint: str | Path) -> tuple[IntGraph, dict[str, Any]]:
    """The unreordered integer graph of a quantized checkpoint, with its provenance in meta."""
    model, state = load_quantized(checkpoint)
    graph = lower(model, input_shape_of(state))
    graph.meta = {
        "model": state["spec"]["model"],
        "data": state["spec"]["data"],
        "num_classes": state["fp32"]["data"]["num_classes"],
        "input_shape": list(input_shape_of(state)),
        "checkpoint": str(checkpoint),
        "quant_spec": state["quant_spec"],
    }
    return graph, state


def default_tiling(state: dict[str, Any], text: str | None) -> Tiling:
    """The tiling of `--tiling`, with Tm from the assignment's tile rule when it had one."""
    qspec = QuantSpec.from_dict(state["quant_spec"])
    return Tiling.parse(text or "", ratio=qspec.ratio, tm=qspec.tm)


def export_checkpoint(
    checkpoint: str | Path, out: str | Path, tiling: str | None = None, reordered: bool = True
) -> dict[str, Any]:
    """Write the artifact of `checkpoint` to `out`; returns a summary with the traffic report."""
    graph, state = lower_checkpoint(checkpoint)
    t = default_tiling(state, tiling)
    graph = reorder(graph, t) if reordered else mark_unreordered(graph, t)
    save_artifact(graph, out)
    return {
        "artifact": str(out),
        "nodes": len(graph.nodes),
        "reordered": reordered,
        **traffic_report(graph),
    }
