"""Quantization stage: BN folding, mixed-precision fake-quantization, precision assignment."""

from filmqnn.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "ActQuant": "act_quant",
    "Assignment": "assignment",
    "LayerAssignment": "assignment",
    "apply_assignment": "assignment",
    "assign_from_scores": "assignment",
    "calibrate": "calibration",
    "CheckpointError": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_quantized": "checkpoint",
    "quantized_model_from_fp32": "checkpoint",
    "QuantConfig": "config",
    "QuantSpec": "config",
    "activation_quantizers": "conversion",
    "convert": "conversion",
    "quant_layers": "conversion",
    "UnsupportedLayerError": "errors",
    "QConv2d": "qmodules",
    "QLinear": "qmodules",
    "CRITERIA": "sensitivity",
    "DATA_CRITERIA": "sensitivity",
    "filter_scores": "sensitivity",
    "end_to_end_errors": "sensitivity",
    "layer_output_errors": "sensitivity",
})
