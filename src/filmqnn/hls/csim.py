"""C-simulation: the generated kernel compiled with g++ against Xilinx's ap_types headers (as
the hls4ml wheel ships them), loaded with ctypes, run on the project's DDR image frame by
frame. Builds are cached by the content hash of the sources and the compiler command."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filmqnn.hls.ddr_image import DdrImage, read_tensor, write_input
from filmqnn.hls.project import KERNEL_FILES, ProjectError, load_project
from filmqnn.pynq.host_io import restore_order

CXXFLAGS = ("-O2", "-DNDEBUG", "-std=c++14", "-fPIC", "-shared", "-w")
#: The native build: PE multiplies, requantization and AXI-word fields in 64-bit integers
#: instead of ap_int (hls/pe_codegen.py, the kernel's FILMQNN_NATIVE_PE forms), the same bits,
#: compiled for this CPU so the PE columns vectorise (bench/csim_native_pe.py).
NATIVE_PE = ("-O3", "-mprefer-vector-width=512", "-march=native", "-fwrapv", "-DFILMQNN_NATIVE_PE")
STATS = ("cycles", "compute", "load_beats", "write_beats", "steps", "groups", "unpack",
         "as_written", "bank_write", "bank_store", "bank_round", "bank_skip")
#: The bank checker's columns (the most words one bank took in one trip): a layer's
#: descriptors take their maximum, the others add up.
BANK_STATS = tuple(i for i, name in enumerate(STATS) if name.startswith("bank_"))


class CsimError(RuntimeError):
    """The C-simulation library could not be built or run."""


def ap_types_dir() -> Path:
    """Xilinx's ap_types headers inside the installed hls4ml package (never imported)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise CsimError("the hls4ml package (it ships Xilinx's ap_types headers) is missing; "
                        "run `bash scripts/setup.sh`")
    path = Path(list(spec.submodule_search_locations)[0]) / "templates/vivado/ap_types"
    if not (path / "ap_int.h").is_file():
        raise CsimError(f"{path}/ap_int.h is missing; reinstall hls4ml==1.3.0")
    return path


def _cpu_identity() -> bytes:
    """What `-march=native` compiles for (the CPU's model and flags), so that a cache shared
    between machines never hands one a library built for another."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor().encode()
    keep = [ln for ln in info.splitlines()[:40] if ln.startswith(("model name", "flags"))]
    return "\n".join(keep).encode()


def cache_dir() -> Path:
    base = os.environ.get("FILMQNN_CACHE") or Path.home() / ".cache" / "filmqnn"
    return Path(base) / "csim"


def design_id(project: str | Path) -> str:
    """The identity of a project's kernel: SHA-256 over its kernel sources (what a bitstream
    is built from). The deploy bundle records it; the C-sim library returns it."""
    root = Path(project)
    h = hashlib.sha256()
    for rel in KERNEL_FILES:
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    return h.hexdigest()


def build_library(project: str | Path, native_pe: bool = True) -> Path:
    """Compiles the project's kernel + C API into a shared library (cached by content); the
    library's ``filmqnn_csim_design()`` returns the project's ``design_id``. ``native_pe=False``
    keeps the PE multiplies in ap_int, as synthesis sees them."""
    root = Path(project)
    cxx = shutil.which("g++")
    if cxx is None:
        raise CsimError("g++ is not installed; run `bash scripts/setup.sh` (Debian package g++)")
    inc = ap_types_dir()
    flags = (*CXXFLAGS, *NATIVE_PE) if native_pe else CXXFLAGS
    h = hashlib.sha256(" ".join(flags).encode() + _cpu_identity())
    for rel in (*KERNEL_FILES, "csim/csim_api.cpp"):
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    h.update((inc / "ap_int_base.h").read_bytes())
    lib = cache_dir() / f"{h.hexdigest()[:24]}.so"
    if lib.is_file():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=lib.parent, suffix=".so.tmp")
    os.close(fd)
    cmd = [cxx, *flags, f'-DFILMQNN_DESIGN_ID="{design_id(root)}"', "-I", str(root / "src"),
           "-I", str(inc),
           str(root / "csim/csim_api.cpp"), "-o", tmp]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        os.unlink(tmp)
        raise CsimError("g++ failed on the generated kernel:\n" + res.stderr[-4000:])
    os.replace(tmp, lib)
    return lib


@dataclass
class CsimRun:
    """Outputs (physical channel order restored to the original) and per-layer counters."""

    outputs: list[np.ndarray]
    stats: np.ndarray  # [engine layers, len(STATS)]: a layer's descriptors summed


class CsimEngine:
    """A project's C-simulation: `run(x_int)` runs one frame on a fresh copy of the image."""

    def __init__(self, project: str | Path, native_pe: bool = True) -> None:
        self.root = Path(project)
        self.meta = load_project(self.root)
        self.tm = int(self.meta["engine"]["Tm"])
        try:
            self.image = DdrImage.from_layout(self.meta["layout"])
        except (KeyError, TypeError, IndexError) as exc:
            raise ProjectError(f"project.json's layout lacks {exc}; regenerate the project") \
                from exc
        self.base = np.fromfile(self.root / "data/ddr.bin", dtype=np.uint8)
        self._data = np.empty_like(self.base)  # every frame's copy of the image, one buffer
        self.lib = ctypes.CDLL(str(build_library(self.root, native_pe)))
        n_stats = getattr(self.lib, "filmqnn_csim_stats", None)  # absent in older projects
        if n_stats is None or n_stats() != len(STATS):
            raise CsimError("the C-sim library reports other per-layer counters than this "
                            "filmqnn reads; regenerate the project with `filmqnn hls`")
        self.lib.filmqnn_csim_run.restype = ctypes.c_int
        self.lib.filmqnn_csim_run.argtypes = [
            ctypes.POINTER(ctypes.c_uint8), ctypes.c_long, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_double)]

    @property
    def layer_names(self) -> list[str]:
        return [ly["name"] for ly in self.meta["layout"]["layers"]]

    def run(self, x_int: np.ndarray) -> CsimRun:
        """One frame: int8-range input [C, H, W] -> int64 outputs in the original order."""
        shape = tuple(self.meta["input_shape"])
        x = np.asarray(x_int)
        if x.shape != shape:
            raise ValueError(f"input of shape {x.shape}; the network takes {shape}")
        data = self._data  # fresh pages each frame would cost their faults and zeroing
        np.copyto(data, self.base)
        write_input(self.image, data, x)
        n = self.image.n_layers
        stats = np.zeros(n * len(STATS), dtype=np.float64)
        rc = self.lib.filmqnn_csim_run(
            data.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), len(data), self.image.queue,
            n, stats.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        if rc:
            if rc == 3:
                raise CsimError("the kernel moved a DDR-only beat (weights, tables, a tensor "
                                "the plan keeps in DDR) at a feature-map store address: the "
                                "project's plan and kernel disagree; regenerate it with "
                                "`filmqnn hls`, and report it if it persists")
            raise CsimError(f"the C-simulation refused the image (code {rc})")
        per_desc = stats.reshape(n, len(STATS))
        runs = self.image.runs
        if runs is not None:  # a band-fused layer's descriptors add up to the layer
            per_layer = np.zeros((len(self.layer_names), len(STATS)))
            at = [r[0] for r in runs]
            np.add.at(per_layer, at, per_desc)
            banks = np.zeros((len(self.layer_names), len(BANK_STATS)))
            np.maximum.at(banks, at, per_desc[:, BANK_STATS])
            per_layer[:, BANK_STATS] = banks
            per_desc = per_layer
        outs = []
        for name in self.image.outputs:
            y = read_tensor(self.image, data, name, self.tm)
            outs.append(restore_order(y, self.meta["output_order"].get(name)))
        return CsimRun(outs, per_desc)
