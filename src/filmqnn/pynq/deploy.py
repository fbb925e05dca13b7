"""`filmqnn deploy`: the bundle a PYNQ board needs, written from an artifact and its HLS project.

Host side (imports filmqnn): it checks that the project was generated from the artifact,
collects what the board driver reads (DDR image, its layout, the input normalisation and
scale, the output order and scales, class names) into ``bundle.json`` with every file's
SHA-256, copies the board-side driver modules, and writes the directory atomically::

    bundle.json   ddr.bin   run.py   README.md
    filmqnn_pynq/         the driver package (numpy only, Python 3.8+)
    samples/              test images, their labels and the reference's int logits (optional)
    filmqnn.bit, filmqnn.hwh   when the Vivado step has built them
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from filmqnn.atomic import atomic_dir
from filmqnn.pynq.bundle import BITSTREAM, BUNDLE_FORMAT, DDR, HWH, META, Bundle, BundleError
from filmqnn.pynq.bundle import sha256_file as _sha256_file

#: Board-side modules of filmqnn.pynq copied into the bundle's ``filmqnn_pynq`` package.
BOARD_MODULES = ("host_io.py", "device.py", "bundle.py", "driver.py", "pynq_device.py",
                 "csim_device.py", "board_main.py")
PACKAGE = "filmqnn_pynq"
#: Class names of the built-in data sets (index = label).
CLASS_NAMES = {
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"],
}

RUN_PY = '''"""Classify images on the board with this bundle: python3 run.py --images DIR [--json].

Needs Python 3.8+ with numpy, and the pynq package for the board (see README.md).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from filmqnn_pynq.board_main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(bundle_dir=HERE))
'''

INIT_PY = '''"""filmqnn board driver (copied by `filmqnn deploy`): numpy only, Python 3.8+."""
'''


def normalisation(data: str) -> tuple[list[float], list[float]]:
    """(mean, std) per channel with which the data set's images were normalised in training."""
    from filmqnn.data import registry

    table = {
        "fashion-mnist": (registry.FASHION_MNIST_MEAN, registry.FASHION_MNIST_STD),
        "cifar10": (registry.CIFAR10_MEAN, registry.CIFAR10_STD),
        "imagenet": (registry.IMAGENET_MEAN, registry.IMAGENET_STD),
        "synthetic": ((registry.SYNTHETIC_MEAN,), (registry.SYNTHETIC_STD,)),
    }
    if data not in table:
        raise BundleError(f"the artifact's data set {data!r} has no known normalisation; the "
                          f"driver knows {', '.join(table)}")
    mean, std = table[data]
    return [float(m) for m in mean], [float(s) for s in std]


def bundle_of(artifact: str | Path, project: str | Path) -> Bundle:
    """The bundle (metadata and DDR image, in memory) of an artifact's HLS project; the
    project must have been generated from this very artifact."""
    from filmqnn.formats import ACT_BITS, INPUT_FORMAT
    from filmqnn.hls.csim import design_id
    from filmqnn.hls.project import load_project, manifest_sha
    from filmqnn.lower.artifact import load_artifact

    meta_p = load_project(project)
    sha = manifest_sha(artifact)
    if meta_p.get("artifact_sha") != sha:
        raise BundleError(
            f"the project {project} was generated from another artifact "
            f"({meta_p.get('artifact') or 'none recorded'}), not from {artifact}: its DDR image "
            f"holds that artifact's weights; rerun `filmqnn hls --artifact {artifact} ...`")
    graph = load_artifact(artifact)
    gm = graph.meta or {}
    data = str(gm.get("data", ""))
    mean, std = normalisation(data)
    inp = graph.tensors[graph.input]
    ddr = np.fromfile(Path(project) / "data/ddr.bin", dtype=np.uint8)
    outputs = []
    for name in graph.outputs:
        t = graph.tensors[name]
        outputs.append({"name": name, "shape": list(t.shape),
                        "order": meta_p["output_order"].get(name),
                        "scale": np.broadcast_to(np.asarray(t.scale, np.float64),
                                                 (t.shape[0],)).tolist()})
    engine = meta_p["engine"]
    meta = {
        "format": BUNDLE_FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "design_id": design_id(project),
        "board": meta_p["board"],
        "engine": {k: engine[k] for k in ("Tm", "Tm8", "Tn", "Tr", "Tc", "G", "ports",
                                          "axi_bits", "clock_mhz") if k in engine},
        "layout": meta_p["layout"],
        "act_bits": ACT_BITS,
        "input": {"shape": list(inp.shape), "scale": float(inp.scale), "mean": mean,
                  "std": std, "qmin": INPUT_FORMAT.qmin, "qmax": INPUT_FORMAT.qmax},
        "outputs": outputs,
        "model": gm.get("model"), "data": data,
        "classes": CLASS_NAMES.get(data),
        "source": {"artifact": str(Path(artifact).resolve()), "artifact_sha": sha,
                   "project": str(Path(project).resolve())},
        "files": {},
    }
    return Bundle(meta, ddr)


def _samples(artifact: str | Path, bundle: Bundle, n: int, data_root: str | None
             ) -> dict[str, np.ndarray]:
    """``n`` test images (uint8), labels and the integer reference's int logits."""
    import torch

    from filmqnn.data import load_dataset
    from filmqnn.lower.artifact import load_artifact
    from filmqnn.ref.executor import ReferenceExecutor

    info = load_dataset(bundle.meta["data"], "test", root=data_root, limit=n)
    ds = info.dataset
    if not hasattr(ds, "images"):
        raise BundleError(f"data set {bundle.meta['data']} is not held in memory as uint8 "
                          "images; deploy with --samples 0")
    images = ds.images.numpy()
    if images.shape[1:] != bundle.input_shape:
        raise BundleError(f"data set {bundle.meta['data']} has images of shape "
                          f"{images.shape[1:]}, the network takes {bundle.input_shape}")
    ref = ReferenceExecutor(load_artifact(artifact))
    x, labels = ds.batch(torch.arange(len(ds)))
    logits = ref.int_logits(x).numpy().astype(np.int64)
    return {"images/test.npy": images, "labels.npy": labels.numpy().astype(np.int64),
            "expected_logits.npy": logits}


def readme(meta: dict[str, Any], has_bitstream: bool, samples: int) -> str:
    """The bundle's README: what is in it and the board steps."""
    e = meta["engine"]
    lines = [
        f"# filmqnn bundle: {meta.get('model')} on {meta['board']}",
        "",
        f"Kernel {meta['design_id'][:12]} (Tm={e.get('Tm')} Tm8={e.get('Tm8')} Tn={e.get('Tn')} "
        f"G={e.get('G')}, {e.get('ports')} AXI ports, {e.get('clock_mhz')} MHz), input "
        f"{meta['input']['shape']} from {meta['data']}; written {meta['created']} by "
        "`filmqnn deploy`.",
        "",
        "## On the board (PYNQ image, Python 3.8+, numpy, pynq)",
        "",
        "```",
        "scp -r <this directory> xilinx@<board>:/home/xilinx/filmqnn_bundle",
        "ssh xilinx@<board>",
        "cd /home/xilinx/filmqnn_bundle",
        "sudo -E python3 run.py --images samples/images --labels samples/labels.npy \\",
        "    --expected samples/expected_logits.npy --json     # self-test: bit-exact logits",
        "sudo -E python3 run.py --images /path/to/images --json",
        "```",
        "",
        "`--images DIR` reads every `.npy` file in DIR (one uint8 image [C, H, W] or [H, W], or a "
        "batch [N, C, H, W] / [N, H, W]) and every `.png` file (needs Pillow) in name order. "
        "Pixels are raw 0..255 values at the network's size; the driver normalises and "
        "quantizes them. `--json` prints one JSON object (predictions, timing); without it, one "
        "line per image. PYNQ's `pynq` package needs root (hence `sudo -E`).",
        "",
    ]
    if not has_bitstream:
        lines += [
            f"**This bundle has no bitstream.** Build `{BITSTREAM}` and `{HWH}` from the HLS "
            "project (`vitis_hls -f run_hls.tcl`, then `vivado -mode batch -source "
            f"vivado/{meta['board']}_bd.tcl` in {meta['source']['project']}) and rerun "
            "`filmqnn deploy ... --bitstream <project>/vivado/filmqnn.bit`.",
            "",
        ]
    if samples:
        lines += [f"`samples/` holds {samples} test images, their labels and the integer "
                  "reference's logits: the self-test above must print 0 mismatches.", ""]
    lines += [
        "Every file is listed in `bundle.json` with its SHA-256; the driver refuses a bundle "
        "with a missing or changed file.",
        "",
        "On a PC (no board), the same driver runs over the C-simulation library of the HLS "
        "project: `python3 run.py --images DIR --csim <library.so>` (the library of "
        "`filmqnn csim`, in ~/.cache/filmqnn/csim/).",
        "",
    ]
    return "\n".join(lines)


def write_bundle(artifact: str | Path, project: str | Path, out: str | Path,
                 bitstream: str | Path | None = None, samples: int = 16,
                 data_root: str | None = None) -> dict[str, Any]:
    """Writes the bundle directory ``out`` atomically (a temporary directory renamed into
    place); returns a summary. ``bitstream`` (its ``.hwh`` beside it) defaults to the
    project's ``vivado/filmqnn.bit`` when that exists."""
    bundle = bundle_of(artifact, project)
    meta = bundle.meta
    bit = Path(bitstream) if bitstream else Path(project) / "vivado" / BITSTREAM
    if bitstream and not bit.is_file():
        raise BundleError(f"bitstream {bit} is missing; build it with the Vivado step "
                          f"(vivado -mode batch -source vivado/{meta['board']}_bd.tcl)")
    has_bit = bit.is_file()
    if has_bit and not bit.with_suffix(".hwh").is_file():
        raise BundleError(f"{bit.with_suffix('.hwh')} is missing: PYNQ needs the .hwh beside "
                          "the .bit (the Vivado script copies both)")
    sample_arrays = _samples(artifact, bundle, samples, data_root) if samples else {}
    out = Path(out)
    with atomic_dir(out, META, BundleError, "a filmqnn bundle") as tmp:
        files = {}

        def put(rel: str, data: bytes) -> None:
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)

        put(DDR, bundle.ddr.tobytes())
        files[DDR] = None
        if has_bit:
            shutil.copyfile(bit, tmp / BITSTREAM)
            shutil.copyfile(bit.with_suffix(".hwh"), tmp / HWH)
            files[BITSTREAM] = files[HWH] = None
        src = Path(__file__).parent
        put(f"{PACKAGE}/__init__.py", INIT_PY.encode())
        files[f"{PACKAGE}/__init__.py"] = None
        for mod in BOARD_MODULES:
            put(f"{PACKAGE}/{mod}", (src / mod).read_bytes())
            files[f"{PACKAGE}/{mod}"] = None
        put("run.py", RUN_PY.encode())
        files["run.py"] = None
        for rel, arr in sample_arrays.items():
            (tmp / "samples" / rel).parent.mkdir(parents=True, exist_ok=True)
            np.save(tmp / "samples" / rel, arr)
            files[f"samples/{rel}"] = None
        put("README.md", readme(meta, has_bit, samples).encode())
        files["README.md"] = None
        meta["files"] = {rel: {"bytes": (tmp / rel).stat().st_size,
                               "sha256": _sha256_file(tmp / rel)} for rel in files}
        (tmp / META).write_text(json.dumps(meta, indent=1) + "\n")
        Bundle.load(tmp)  # read back with the board's own checks
    return {"bundle": str(out), "files": sorted(meta["files"]), "bitstream": has_bit,
            "design_id": meta["design_id"], "ddr_bytes": int(bundle.ddr.size),
            "samples": len(sample_arrays.get("labels.npy", [])),
            "missing": [] if has_bit else [BITSTREAM, HWH]}
