"""Lowering stage (DESIGN.md §1, §2, §4): the quantized torch model as an integer graph,
reordered and packed for a tiling, saved as a checked artifact; deploy mode in torch."""

from filmqnn.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "ArtifactError": "artifact",
    "load_artifact": "artifact",
    "save_artifact": "artifact",
    "DeployModel": "deploy",
    "to_deploy": "deploy",
    "IntGraph": "graph",
    "Node": "graph",
    "TensorInfo": "graph",
    "LoweringError": "lowering",
    "lower": "lowering",
    "ReorderError": "reordering",
    "mark_unreordered": "reordering",
    "reorder": "reordering",
    "Tiling": "tiling",
    "traffic_report": "traffic",
})
