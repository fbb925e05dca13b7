"""`filmqnn run --device csim`: the board driver over the C-simulation, as an executor.

Host side (torch, filmqnn): the artifact's HLS project becomes an in-memory bundle, the
``Accelerator`` runs it on a ``CsimDevice``, and every batch is also run on the integer
reference so the run reports mismatching frames beside the accuracy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from filmqnn.lower.graph import IntGraph
from filmqnn.lower.requant import dequantize, quantize_input
from filmqnn.pynq.csim_device import CsimDevice
from filmqnn.pynq.deploy import bundle_of
from filmqnn.pynq.driver import Accelerator
from filmqnn.ref.executor import ReferenceExecutor


class CsimExecutor:
    """ReferenceExecutor's interface (``graph``, ``logits``) over the driver on C-sim."""

    def __init__(self, graph: IntGraph, artifact: str | Path, project: str | Path,
                 check: bool = True) -> None:
        self.graph = graph
        self.acc = Accelerator(bundle_of(artifact, project), CsimDevice.from_project(project))
        self.ref = ReferenceExecutor(graph) if check else None
        self.scale = float(graph.tensors[graph.input].scale)
        self.frames = self.compared = self.mismatches = 0
        self.totals = {"host_s": 0.0, "transfer_s": 0.0, "engine_s": 0.0}
        self.seconds = 0.0

    def int_logits(self, x: torch.Tensor) -> torch.Tensor:
        """int64 logits of normalised float images: the host quantizes (as the reference
        does), the driver packs, runs and reads each frame."""
        frames = quantize_input(x, self.scale)
        t0 = time.perf_counter()
        got = self.acc.infer_frames(frames.numpy())
        self.seconds += time.perf_counter() - t0
        self.frames += len(got)
        for t in self.acc.timings:
            for k in self.totals:
                self.totals[k] += t[k]
        if self.ref is not None:
            want = self.ref.run_int(frames)[0].numpy()
            self.mismatches += int(np.any(got != want, axis=1).sum())
            self.compared += len(got)
        return torch.from_numpy(got)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Dequantized float64 logits (int logits times each class's scale)."""
        out = self.graph.tensors[self.graph.outputs[0]]
        return dequantize(self.int_logits(x), out.scale)

    def report(self) -> dict[str, Any]:
        """Mismatches against the reference and the C-sim throughput of the frames so far
        (the driver's per-frame means of host, transfer and engine seconds)."""
        n = max(self.frames, 1)
        return {
            "compared": self.compared, "mismatches": self.mismatches,
            "images_per_s": self.frames / self.seconds if self.seconds else 0.0,
            "per_frame_s": {k: v / n for k, v in self.totals.items()},
            "ddr_load_s": self.acc.load_seconds,
        }
