"""filmqnn: intra-layer mixed-precision quantization (FILM-QNN) and FPGA accelerator generation."""

__version__ = "0.1.0"
