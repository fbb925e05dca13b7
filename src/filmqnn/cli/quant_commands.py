"""CLI commands of the quantization stage: train, assign, quantize, evaluate, study."""
