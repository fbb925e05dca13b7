"""Lowering stage (DESIGN.md §1, §2, §4): the quantized torch model as an integer graph,
reordered and packed for a tiling, saved as a checked artifact; deploy mode in torch."""

from filmqnn.lower.artifact import ArtifactError, load_artifact, save_artifact
from filmqnn.lower.deploy import DeployModel, to_deploy
from filmqnn.lower.graph import IntGraph, Node, TensorInfo
from filmqnn.lower.lowering import LoweringError, lower
from filmqnn.lower.reorder import ReorderError, mark_unreordered, reorder
from filmqnn.lower.tiling import Tiling
from filmqnn.lower.traffic import traffic_report

__all__ = [
    "ArtifactError",
    "DeployModel",
    "IntGraph",
    "LoweringError",
    "Node",
    "ReorderError",
    "TensorInfo",
    "Tiling",
    "load_artifact",
    "lower",
    "mark_unreordered",
    "reorder",
    "save_artifact",
    "to_deploy",
    "traffic_report",
]
