"""ONNX Runtime (CPU execution provider) sessions of the exported models, with the reference
executor's interface so the accuracy code runs on either."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from filmqnn.lower.graph import IntGraph
from filmqnn.lower.requant import quantize_input
from filmqnn.onnx_export.graph import INPUT_NAME, LOGITS, LOGITS_INT, build_int_model

PROVIDERS = ["CPUExecutionProvider"]


def make_session(model: onnx.ModelProto | str | Path, threads: int | None = None
                 ) -> ort.InferenceSession:
    """A CPU-only ONNX Runtime session of `model` (a ModelProto or a file), quiet logging."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(src, sess_options=opts, providers=PROVIDERS)


class OnnxRuntimeExecutor:
    """The integer ONNX model of an artifact on ONNX Runtime; `run_int`, `int_logits` and
    `logits` behave as `ReferenceExecutor`'s (torch in, torch out) for the accuracy code."""

    def __init__(self, graph: IntGraph, model: onnx.ModelProto | str | Path | None = None,
                 threads: int | None = None) -> None:
        self.graph = graph
        self.model = build_int_model(graph) if model is None else model
        self.session = make_session(self.model, threads)
        self.input_scale = float(graph.tensors[graph.input].scale)
        names = [o.name for o in self.session.get_outputs()]
        self._int_outputs = [n for n in names if n != LOGITS]
        if not names or names[0] != LOGITS_INT:
            raise ValueError(f"not a filmqnn integer ONNX model (outputs {names})")

    def run_int(self, x_int: np.ndarray | torch.Tensor) -> list[np.ndarray]:
        """Integer network outputs, original channel order, of int8-range inputs [N,C,H,W]."""
        x = x_int.numpy() if isinstance(x_int, torch.Tensor) else np.asarray(x_int)
        if x.min(initial=0) < -128 or x.max(initial=0) > 127:
            raise ValueError("integer inputs must lie in the int8 range -128..127")
        return self.session.run(self._int_outputs, {INPUT_NAME: x.astype(np.int8)})

    def int_logits(self, x: torch.Tensor) -> torch.Tensor:
        """int64 logits of normalised float images (quantized as the host does)."""
        return torch.from_numpy(self.run_int(quantize_input(x, self.input_scale))[0]).long()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Dequantized float64 logits (the model's `logits` output)."""
        q = quantize_input(x, self.input_scale).numpy().astype(np.int8)
        return torch.from_numpy(self.session.run([LOGITS], {INPUT_NAME: q})[0])
