"""`filmqnn onnx`: read a checked artifact, build the integer (and QDQ) ONNX models, check
them against the reference executor on ONNX Runtime, then write them atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from filmqnn.lower.artifact import load_artifact
from filmqnn.lower.graph import IntGraph
from filmqnn.lower.manifest import MANIFEST, ArtifactError, sha256
from filmqnn.onnx_export.builder import OPSET
from filmqnn.onnx_export.graph import OnnxExportError, build_int_model
from filmqnn.onnx_export.qdq import build_qdq_model


def read_artifact(path: str | Path) -> tuple[IntGraph, str]:
    """(graph, SHA-256 of its manifest) of an artifact, every file's checksum verified.

    The manifest is hashed before and after the checked read, so an artifact that changes
    while it is read is refused too.
    """
    mpath = Path(path) / MANIFEST
    before = sha256(mpath.read_bytes()) if mpath.is_file() else None
    graph = load_artifact(path)  # raises ArtifactError on any tampering it can see
    if sha256(mpath.read_bytes()) != before:
        raise ArtifactError(f"{mpath} changed while it was read; run the command again")
    return graph, before or ""


def check_frames(shape: tuple[int, ...], n_random: int = 4, seed: int = 0) -> np.ndarray:
    """Random int8 frames and the extremes (all zero, all -128, all 127) [n, C, H, W]."""
    rng = np.random.default_rng(seed)
    frames = [rng.integers(-128, 128, size=(n_random, *shape))]
    frames += [np.full((1, *shape), v) for v in (0, -128, 127)]
    return np.concatenate(frames).astype(np.int8)


def compare_with_reference(graph: IntGraph, model: onnx.ModelProto, x_int: np.ndarray
                           ) -> dict[str, int]:
    """Integer outputs of ONNX Runtime against the reference executor on frames `x_int`."""
    import torch

    from filmqnn.onnx_export.runtime import OnnxRuntimeExecutor
    from filmqnn.ref.executor import ReferenceExecutor

    got = OnnxRuntimeExecutor(graph, model).run_int(x_int)
    want = [t.numpy() for t in ReferenceExecutor(graph).run_int(torch.from_numpy(x_int).int())]
    bad = np.zeros(len(x_int), dtype=bool)
    worst = 0
    for a, b in zip(got, want, strict=True):
        diff = np.abs(a.astype(np.int64) - b).reshape(len(x_int), -1)
        bad |= diff.any(axis=1)
        worst = max(worst, int(diff.max(initial=0)))
    return {"frames": len(x_int), "mismatches": int(bad.sum()), "max_abs_diff": worst}


def write_atomic(model: onnx.ModelProto, path: Path) -> int:
    """Write `model` to `path` through a temporary file in the same directory and
    os.replace, so `path` is either the old file or the complete new one. Returns bytes."""
    data = model.SerializeToString()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)


def _check_target(path: Path, flag: str) -> None:
    if path.is_dir():
        raise OnnxExportError(f"{flag} {path} is a directory; give a file name such as "
                              "model.int.onnx")


def export_onnx(artifact: str | Path, out: str | Path, qdq: str | Path | None = None,
                check: bool = True) -> dict[str, Any]:
    """Write the integer ONNX model of `artifact` to `out` (and the QDQ view to `qdq`).

    Nothing is written unless the artifact passes every checksum and, with `check`, ONNX
    Runtime reproduces the reference executor's integers on random and extreme frames.
    """
    out = Path(out)
    qdq = Path(qdq) if qdq is not None else None
    _check_target(out, "--out")
    if qdq is not None:
        _check_target(qdq, "--qdq")
        if qdq.resolve() == out.resolve():
            raise OnnxExportError("--out and --qdq name the same file; give two names")
    graph, sha = read_artifact(artifact)
    model = build_int_model(graph, sha)
    qmodel = build_qdq_model(graph, sha) if qdq is not None else None
    result: dict[str, Any] = {"artifact": str(artifact), "artifact_sha256": sha, "opset": OPSET}
    if check:
        shape = tuple(graph.tensors[graph.input].shape)
        result["check"] = compare_with_reference(graph, model, check_frames(shape))
        if result["check"]["mismatches"]:
            raise OnnxExportError(
                f"ONNX Runtime disagrees with the reference executor on "
                f"{result['check']['mismatches']} of {result['check']['frames']} frames; "
                "nothing written. This is a filmqnn bug: please report it with the artifact")
    result["out"] = {"path": str(out), "bytes": write_atomic(model, out),
                     "nodes": len(model.graph.node)}
    if qmodel is not None and qdq is not None:
        result["qdq"] = {"path": str(qdq), "bytes": write_atomic(qmodel, qdq),
                         "nodes": len(qmodel.graph.node)}
    meta = {p.key: p.value for p in model.metadata_props}
    chunks = json.loads(meta["filmqnn.float32_conv_chunks"])
    result["split_layers"] = {k: v for k, v in chunks.items() if v > 1}
    return result
