"""`filmqnn hls`: a self-contained Vitis HLS project for one design point and one artifact.

Layout of the project directory::

    project.json          design, board, files and their SHA-256, the DDR image's map
    design.json           the design point (as `filmqnn explore --json` printed it)
    src/engine.cpp        the kernel (top function filmqnn_engine)
    src/engine.h, src/engine_config.h, src/engine_counters.h (C-sim only)
    csim/csim_api.cpp     the C-simulation library's C API (includes src/engine.cpp)
    data/ddr.bin          the DDR image without a frame (descriptors, tables, weights)
    tb/testbench.cpp      the Vitis HLS testbench: one frame through the kernel vs the reference
    data/tb_ddr.bin       the DDR image with that frame written (the testbench's input)
    data/expected.bin     the reference's outputs for it, as the kernel writes them
    run_hls.tcl, vivado/<board>_bd.tcl, README.md
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from filmqnn.atomic import atomic_dir
from filmqnn.formats import ACT_BITS
from filmqnn.hls import scripts
from filmqnn.hls.ddr_image import DdrImage, build_image, pack_tensor, write_input
from filmqnn.hls.layout import DESC_FIELDS, DESC_WORDS, FLAGS, OPS, STORE_BIT, TABLE_WORDS
from filmqnn.hls.pe_codegen import pe_functions
from filmqnn.hls.plan import EngineDesign, EngineLayer, buffer_bounds, plan_network
from filmqnn.hw.artifact_layers import artifact_layers
from filmqnn.hw.buffers import INDEX_BITS, input_phases
from filmqnn.hw.design import (
    IMPLEMENTED,
    KERNEL_MODES,
    PIXELS,
    WEIGHT_RELOAD,
    DesignPoint,
    EngineOptions,
)
from filmqnn.hw.devices import Board, load_board
from filmqnn.hw.performance import (
    ACC_RMW,
    AXI_LATENCY,
    PIPE_DEPTH,
    QUEUE_LAUNCH,
    LayerPerf,
    ddr_bits_per_cycle,
    frame_launch,
    network_performance,
)
from filmqnn.lower.graph import IntGraph
from filmqnn.lower.manifest import MANIFEST, sha256

PROJECT_FORMAT = "filmqnn.hls-project/1"
TOP = "filmqnn_engine"
FRAME = frame_launch(IMPLEMENTED)  # the host's start of a frame (cycles)
KERNEL_FILES = ("src/engine.cpp", "src/engine.h", "src/engine_config.h", "src/engine_counters.h")


class ProjectError(ValueError):
    """A project directory is missing, foreign or inconsistent."""


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("filmqnn.hls", "templates"),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )


def design_point(design: dict[str, Any]) -> DesignPoint:
    """The design point of `explore --json`'s "design" object (derived keys ignored)."""
    keys = {f.name for f in fields(DesignPoint)}
    try:
        return DesignPoint(**{k: v for k, v in design.items() if k in keys})
    except TypeError as exc:
        raise ProjectError(f"the design is incomplete ({exc}); pass the JSON of `filmqnn "
                           "explore --json` (or its 'design' object)") from exc


def engine_design(design: dict[str, Any], board: Board, opts: EngineOptions = IMPLEMENTED
                  ) -> EngineDesign:
    """The kernel's parameters: the design point on ``board`` with the engine modes ``opts``
    (the kernel's modes only; the rest must be off)."""
    extra = [k for k, on in opts.to_dict().items() if on and k not in KERNEL_MODES]
    if extra:
        raise ProjectError(f"engine modes {', '.join(extra)} are modelled only; the generated "
                           f"kernel has {', '.join(sorted(KERNEL_MODES))}")
    d = design_point(design)
    return EngineDesign(**{**asdict(d), "ports": d.axi_ports(board)},
                        axi_bits=board.axi_width_bits, dsp=board.dsp_kind,
                        ddr_bits_per_cycle=ddr_bits_per_cycle(board, d.clock_mhz),
                        board=board.name, opts=opts)


def read_design(path: str | Path) -> tuple[dict[str, Any], Board, set[str]]:
    """The design point, its board and the kernel modes it was explored without (`explore
    --off`) from `filmqnn explore --json` output."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ProjectError(f"cannot read the design {p}: {exc}; write it with `filmqnn "
                           "explore --model M --board B --json > design.json`") from exc
    design = doc.get("design", doc)
    board = doc.get("board") or design.get("board")
    if not isinstance(board, str):
        raise ProjectError(f"{p} names no board; use the JSON `filmqnn explore --json` prints")
    engine = doc.get("engine", {})
    off = {m for m in KERNEL_MODES - {"layer_queue"} if engine.get(m) is False}
    return design, load_board(board), off


def manifest_sha(artifact: str | Path) -> str:
    """SHA-256 of an artifact's manifest (it holds every file's checksum)."""
    return sha256((Path(artifact) / MANIFEST).read_bytes())


def model_perf(artifact: str | Path, design: dict[str, Any], board: Board,
               opts: EngineOptions = IMPLEMENTED) -> list[LayerPerf]:
    """``hw.performance``'s layers for the artifact's layers on this design, with the
    kernel's engine modes ``opts``: the cycles the C-sim is checked against and the per-layer
    choices the descriptors carry (chunks per step, tile rows, store offsets)."""
    return network_performance(artifact_layers(artifact), design_point(design), board,
                               opts)["layers"]


def render_sources(d: EngineDesign, layers: list[EngineLayer], image: DdrImage
                   ) -> dict[str, str]:
    """The kernel, its headers and the C-sim API, as text by relative path."""
    env = _env()
    buf = buffer_bounds(layers, d)
    k_dw = max((ly.shape["kh"] for ly in layers if ly.op == "dwconv" and d.opts.dw_taps),
               default=0)
    ib_rp, ib_cp = input_phases(k_dw, max((ly.shape["sw"] for ly in layers), default=1))
    ctx = {
        "d": d, "buf": buf, "ports": d.ports, "split_k": d.split_k, "act_bits": ACT_BITS,
        "pixels": PIXELS, "ib_rp": ib_rp, "ib_cp": ib_cp,
        "wpb": d.geo.wpb, "store_beats": d.store_beats, "store_bit": STORE_BIT,
        "desc_fields": DESC_FIELDS, "desc_words": DESC_WORDS, "ops": OPS, "flags": FLAGS,
        "table_words": TABLE_WORDS, "index_bits": INDEX_BITS,
        "ddr_beats": int(len(image.data) // d.geo.beat_bytes),
        "max_layers": max(256, image.n_layers),
        "timing": {"pipe_depth": PIPE_DEPTH, "weight_reload": WEIGHT_RELOAD,
                   "axi_latency": AXI_LATENCY, "queue_launch": QUEUE_LAUNCH,
                   "acc_rmw": ACC_RMW},
    }
    ctx["pe_functions"] = pe_functions(d.dsp)
    return {
        "src/engine_config.h": env.get_template("engine_config.h.j2").render(ctx),
        "src/engine.h": env.get_template("engine.h.j2").render(ctx),
        "src/engine.cpp": env.get_template("engine.cpp.j2").render(ctx),
        "src/engine_counters.h": env.get_template("engine_counters.h.j2").render(ctx),
        "csim/csim_api.cpp": env.get_template("csim_api.cpp.j2").render(ctx),
    }


def write_project(graph: IntGraph, design: dict[str, Any], board: Board, out: str | Path,
                  artifact: str | Path = "", opts: EngineOptions = IMPLEMENTED) -> dict[str, Any]:
    """Plans the network on the design, writes the project directory atomically; summary.
    With ``artifact`` (the directory ``graph`` was read from) the project records it and the
    model's cycles per layer, which `filmqnn csim` checks the C-sim against. ``opts``: the
    engine modes the kernel runs with (default: every mode it has)."""
    d = engine_design(design, board, opts)
    perf = model_perf(artifact, design, board, opts) if artifact else []
    layers = plan_network(graph, d, {lp.name: (lp.chunks, lp.rows, lp.store_at, lp.ring)
                                     for lp in perf})
    image = build_image(graph, layers, d)
    files = render_sources(d, layers, image)
    files.update(_scripts(d, board))
    tb_ddr, expected = testbench_data(graph, image, d)
    files["tb/testbench.cpp"] = _env().get_template("testbench.cpp.j2").render(
        outputs=_tb_outputs(graph, image), ports=d.ports, queue=image.queue,
        n_layers=image.n_layers)
    cycles = {lp.name: int(lp.cycles) for lp in perf}
    out = Path(out)
    with atomic_dir(out, "project.json", ProjectError, "a filmqnn HLS project") as tmp:
        hashes = {}
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            hashes[rel] = sha256(text.encode())
        (tmp / "data").mkdir(exist_ok=True)
        for rel, blob in (("data/ddr.bin", image.data.tobytes()), ("data/tb_ddr.bin", tb_ddr),
                          ("data/expected.bin", expected)):
            (tmp / rel).write_bytes(blob)
            hashes[rel] = sha256(blob)
        (tmp / "design.json").write_text(json.dumps({"board": board.name, "design": design},
                                                    indent=1) + "\n")
        meta = {
            "format": PROJECT_FORMAT, "top": TOP, "board": board.name,
            "engine": d.to_dict(), "design": design,
            "artifact": str(Path(artifact).resolve()) if artifact else "",
            "artifact_sha": manifest_sha(artifact) if artifact else "",
            "model_cycles": cycles, "model_total": sum(cycles.values()) + FRAME if cycles else None,
            "frame_launch": FRAME,
            "graph_meta": graph.meta,
            "layout": image.layout(), "files": hashes,
            "output_order": {o: (None if graph.tensors[o].order is None
                                 else graph.tensors[o].order.tolist()) for o in graph.outputs},
            "input_scale": float(graph.tensors[graph.input].scale),
            "input_shape": list(graph.tensors[graph.input].shape),
        }
        (tmp / "project.json").write_text(json.dumps(meta, indent=1) + "\n")
    return {"project": str(out), "layers": len(layers), "ddr_bytes": int(len(image.data)),
            "board": board.name, "engine": d.to_dict()}


#: Seed of the testbench's frame (random signed 8-bit input).
TB_SEED = 0


def testbench_data(graph: IntGraph, image: DdrImage, d: EngineDesign) -> tuple[bytes, bytes]:
    """The testbench's DDR image (``image`` with one random frame written) and the integer
    reference's outputs for that frame as the kernel lays them out: int32 logits in
    physical channel order, 5-bit maps as their packed region."""
    import torch

    from filmqnn.ref.executor import ReferenceExecutor

    shape = tuple(graph.tensors[graph.input].shape)
    x = np.random.default_rng(TB_SEED).integers(-128, 128, size=shape)
    data = image.data.copy()
    write_input(image, data, x)
    outs = ReferenceExecutor(graph).run_int(torch.from_numpy(x[None]).to(torch.int32))
    expected = b""
    for name, y in zip(graph.outputs, outs, strict=True):
        t = graph.tensors[name]
        y = y[0].numpy().astype(np.int64).reshape(t.shape)
        phys = y if t.order is None else y[np.asarray(t.order)]
        reg = image.tensors[name]
        if reg.kind == "int32":
            expected += phys.reshape(-1).astype("<i4").tobytes()
        else:
            expected += pack_tensor(phys, bool(reg.signed), d.geo)
    return data.tobytes(), expected


def _tb_outputs(graph: IntGraph, image: DdrImage) -> list[dict[str, Any]]:
    out = []
    for name in graph.outputs:
        reg = image.tensors[name]
        out.append({"name": name, "addr": reg.addr, "beats": reg.beats,
                    "int32": reg.kind == "int32", "count": int(np.prod(reg.shape))})
    return out


def _scripts(d: EngineDesign, board: Board) -> dict[str, str]:
    """run_hls.tcl and the board's Vivado block design."""
    return {
        "run_hls.tcl": scripts.run_hls_tcl(scripts.full_part(board), d.clock_mhz, TOP),
        f"vivado/{board.name}_bd.tcl": scripts.block_design_tcl(board, d.ports, d.clock_mhz, TOP),
    }


def load_project(path: str | Path) -> dict[str, Any]:
    """project.json of a project directory, with its kernel files checked against it."""
    root = Path(path)
    mpath = root / "project.json"
    if not mpath.is_file():
        raise ProjectError(f"{root} is not an HLS project (no project.json); create one with "
                           "`filmqnn hls --artifact DIR --design FILE --out DIR`")
    meta = json.loads(mpath.read_text())
    if meta.get("format") != PROJECT_FORMAT:
        raise ProjectError(f"{mpath} is not a {PROJECT_FORMAT} project; regenerate it")
    for rel in (*KERNEL_FILES, "csim/csim_api.cpp", "data/ddr.bin"):
        f = root / rel
        if not f.is_file():
            raise ProjectError(f"{f} is missing; regenerate the project with `filmqnn hls`")
        if sha256(f.read_bytes()) != meta["files"].get(rel):
            raise ProjectError(f"{f} differs from the generated file (edited or corrupted); "
                               "regenerate the project with `filmqnn hls`")
    return meta
