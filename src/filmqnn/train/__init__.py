"""Training stage: FP32 baseline, QAT / PTQ quantization runs, checkpoints, DDP."""
