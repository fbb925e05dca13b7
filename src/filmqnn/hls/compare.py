"""C-simulation against the integer reference: outputs bit for bit, cycles against the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from filmqnn.hls.csim import CsimEngine
from filmqnn.hls.project import ProjectError, manifest_sha
from filmqnn.lower.artifact import load_artifact
from filmqnn.ref.executor import ReferenceExecutor


def reference_of(meta: dict[str, Any]) -> ReferenceExecutor:
    """The integer reference of the artifact a project was generated from (checked)."""
    art = meta.get("artifact")
    if not art or not (Path(art) / "manifest.json").is_file():
        raise ProjectError(f"the project's artifact {art!r} is gone; regenerate the project")
    if manifest_sha(art) != meta.get("artifact_sha"):
        raise ProjectError(f"the artifact {art} changed since the project was generated; "
                           "rerun `filmqnn hls`")
    return ReferenceExecutor(load_artifact(art))


def _check_frames(eng: CsimEngine, ref: ReferenceExecutor, frames: np.ndarray
                  ) -> tuple[int, np.ndarray | None]:
    """C-sim and the reference on ``frames``: how many differ, and the last frame's counters
    (the same for every frame: the loops' trips do not depend on the data)."""
    mismatches, stats = 0, None
    for x in frames:
        x = np.asarray(x)
        got = eng.run(x)
        want = ref.run_int(torch.from_numpy(x[None]).to(torch.int32))
        mismatches += not all(np.array_equal(g, w[0].numpy().reshape(g.shape))
                              for g, w in zip(got.outputs, want, strict=True))
        stats = got.stats
    return mismatches, stats


_WORKER: tuple[CsimEngine, ReferenceExecutor] | None = None


def _worker_init(project: str) -> None:
    """A worker process's own C-sim library instance and reference, one thread each."""
    global _WORKER
    torch.set_num_threads(1)
    eng = CsimEngine(project)
    _WORKER = (eng, reference_of(eng.meta))


def _worker_frames(frames: np.ndarray) -> tuple[int, np.ndarray | None]:
    assert _WORKER is not None
    return _check_frames(*_WORKER, frames)


def compare(project: str | Path, images_int: np.ndarray, progress: bool = False, jobs: int = 1
            ) -> dict[str, Any]:
    """Runs every frame [N, C, H, W] (int8 range) through C-sim and the reference; returns
    the comparison and, per layer, the cycles the code counted beside the model's. ``jobs``
    processes share the frames (each loads its own copy of the C-sim library, whose state is
    static)."""
    eng = CsimEngine(project)  # compiled here once; the workers find it in the cache
    ref = reference_of(eng.meta)
    n = len(images_int)
    size = 1 if jobs <= 1 else max(1, min(16, n // (4 * jobs)))
    chunks = [images_int[i:i + size] for i in range(0, n, size)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="C-sim", unit="img")
    results = []
    if jobs <= 1 or n < 2:
        for c in chunks:
            results.append(_check_frames(eng, ref, c))
            if bar is not None:
                bar.update(len(c))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(jobs, len(chunks)), mp.get_context("spawn"),
                                 _worker_init, (str(project),)) as pool:
            for c, r in zip(chunks, pool.map(_worker_frames, chunks), strict=True):
                results.append(r)
                if bar is not None:
                    bar.update(len(c))
    if bar is not None:
        bar.close()
    mismatches = sum(m for m, _ in results)
    stats = results[-1][1]
    model = eng.meta.get("model_cycles", {})
    layers, worst = [], 0.0
    for name, row in zip(eng.layer_names, stats, strict=True):
        m = model.get(name)
        err = None if not m else abs(row[0] - m) / m
        if err is not None:
            worst = max(worst, err)
        layers.append({"name": name, "csim": int(row[0]), "model": m,
                       "error": None if err is None else round(err, 4),
                       "compute": int(row[1]), "load_beats": int(row[2]),
                       "write_beats": int(row[3]), "unpack": int(row[6]),
                       "as_written": int(row[7])})
    launch = int(eng.meta.get("frame_launch", 0))
    total = int(stats[:, 0].sum()) + launch
    written = int(stats[:, 7].sum()) + launch
    clock = float(eng.meta["engine"]["clock_mhz"])
    return {
        "project": str(project), "compared": len(images_int), "mismatches": mismatches,
        "cycles": {"total": total, "model_total": eng.meta.get("model_total"),
                   "as_written_total": written, "layers": layers},
        "max_layer_error": round(worst, 4),
        "fps": clock * 1e6 / total, "as_written_fps": clock * 1e6 / written,
        "clock_mhz": clock,
    }


def cycle_table(layers: list[dict[str, Any]]) -> str:
    """Markdown table of ``compare``'s per-layer cycles: C-sim count, model, difference, and
    the C-sim count as the HLS code is written (``engine_counters.h``)."""
    rows = ["| layer | C-sim | model | difference | as written |", "|---|---:|---:|---:|---:|"]
    for ly in layers:
        err = "" if ly["error"] is None else f"{100 * ly['error']:.1f} %"
        rows.append(f"| {ly['name']} | {ly['csim']} | {ly['model']} | {err} | "
                    f"{ly['as_written']} |")
    return "\n".join(rows)
