"""Errors of the quantization stage."""


class UnsupportedLayerError(ValueError):
    """The model holds a layer or operation that filmqnn cannot quantize or map to hardware."""
