"""Quantization stage: BN folding, mixed-precision fake-quantization, precision assignment."""

from filmqnn.quant.act_quant import ActQuant
from filmqnn.quant.assignment import (
    Assignment,
    LayerAssignment,
    apply_assignment,
    assign_from_scores,
    high_filter_count,
    tile_high_filters,
)
from filmqnn.quant.calibration import calibrate
from filmqnn.quant.config import QuantConfig
from filmqnn.quant.convert import activation_quantizers, convert, quant_layers
from filmqnn.quant.errors import UnsupportedLayerError
from filmqnn.quant.qmodules import QConv2d, QLinear
from filmqnn.quant.sensitivity import CRITERIA, filter_scores

__all__ = [
    "CRITERIA",
    "ActQuant",
    "Assignment",
    "LayerAssignment",
    "QConv2d",
    "QLinear",
    "QuantConfig",
    "UnsupportedLayerError",
    "activation_quantizers",
    "apply_assignment",
    "assign_from_scores",
    "calibrate",
    "convert",
    "filter_scores",
    "high_filter_count",
    "quant_layers",
    "tile_high_filters",
]
