"""``CsimDevice``: the C-simulation library of an HLS project as a ``Device``.

Device memory is numpy byte buffers at made-up physical addresses; the control registers are
the kernel's s_axilite map (``device.register_map``). ``start`` decodes the registers the
driver wrote (each port's 64-bit base address, ``queue``, ``n_layers``), finds the buffer they
point into and runs the kernel's C code on it in a thread (ctypes releases the GIL), so the
driver's exact bytes and register values reach the kernel and the host can work meanwhile.
Numpy and ctypes only (filmqnn only in ``from_project``), Python 3.8 syntax. One kernel state
per loaded library: run one device per library at a time.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .device import (
    AP_CTRL,
    AP_DONE,
    AP_IDLE,
    AP_READY,
    AP_START,
    Device,
    DeviceError,
    kernel_args,
    register_map,
    timeout_error,
)

#: Physical address of the first allocation, and the alignment of every allocation.
BASE_ADDRESS = 0x1000_0000
PAGE = 4096


class CsimBuffer(np.ndarray):
    """A uint8 buffer with the physical address the engine sees."""

    physical_address: int


class CsimDevice(Device):
    """The C-sim library (``hls.csim.build_library``) behind the ``Device`` interface."""

    def __init__(self, library: str | Path) -> None:
        self.lib = ctypes.CDLL(str(library))
        try:
            design = self.lib.filmqnn_csim_design
        except AttributeError:
            raise DeviceError(f"{library} has no filmqnn_csim_design(): it was built from an "
                              "older project; regenerate the project with `filmqnn hls`"
                              ) from None
        design.restype = ctypes.c_char_p
        self.design_id = design().decode() or None
        self.ports = int(self.lib.filmqnn_csim_ports())
        self.beat_bytes = int(self.lib.filmqnn_csim_beat_bytes())
        self.max_layers = int(self.lib.filmqnn_csim_layers())
        self.n_stats = int(self.lib.filmqnn_csim_stats())  # doubles per layer it reports
        run = self.lib.filmqnn_csim_run_at
        run.restype = ctypes.c_int
        run.argtypes = [ctypes.POINTER(ctypes.c_uint8), ctypes.c_long,
                        ctypes.POINTER(ctypes.c_long), ctypes.c_uint, ctypes.c_uint,
                        ctypes.POINTER(ctypes.c_double)]
        self.regmap = register_map(kernel_args(self.ports))
        self.regs = {}  # type: dict[int, int]
        self.ctrl = AP_IDLE
        self.buffers = []  # type: list[CsimBuffer]
        self.next_address = BASE_ADDRESS
        self.stats = np.zeros((0, self.n_stats))
        self.seconds = 0.0  # wall time of the last run's C call
        self._thread = None  # type: threading.Thread | None
        self._error = None  # type: str | None
        self._lock = threading.Lock()

    @classmethod
    def from_project(cls, project: str | Path) -> CsimDevice:
        """Builds (or reuses) the project's C-sim library; needs filmqnn and g++ (host only)."""
        from filmqnn.hls.csim import CsimError, build_library
        from filmqnn.hls.project import load_project

        load_project(project)  # kernel files checked against project.json
        try:
            return cls(build_library(project))
        except CsimError as exc:
            raise DeviceError(str(exc)) from exc

    # ------------------------------------------------------------ memory
    def allocate(self, nbytes: int) -> CsimBuffer:
        """A zeroed buffer at the next page-aligned made-up physical address."""
        buf = np.zeros(int(nbytes), np.uint8).view(CsimBuffer)
        buf.physical_address = self.next_address
        self.next_address += -(-int(nbytes) // PAGE) * PAGE + PAGE
        self.buffers.append(buf)
        return buf

    def write(self, buf: Any, offset: int, data: np.ndarray) -> None:
        self._idle_or_fail("write device memory")
        raw = np.asarray(data, np.uint8).reshape(-1)
        buf[offset:offset + raw.size] = raw

    def read(self, buf: Any, offset: int, nbytes: int) -> np.ndarray:
        self._idle_or_fail("read device memory")
        return np.array(buf[offset:offset + nbytes])

    def _idle_or_fail(self, what: str) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise DeviceError(f"cannot {what} while the engine runs; wait() first")

    # ------------------------------------------------------------ registers
    def write_reg(self, offset: int, value: int) -> None:
        value = int(value) & 0xFFFFFFFF
        if offset == AP_CTRL:
            if value & AP_START:
                self._start()
            return
        self.regs[offset] = value

    def read_reg(self, offset: int) -> int:
        if offset != AP_CTRL:
            return self.regs.get(offset, 0)
        with self._lock:
            value = self.ctrl
            self.ctrl &= ~(AP_DONE | AP_READY)  # clear on read
        return value

    def _address(self, name: str) -> int:
        off = self.regmap[name]
        return self.regs.get(off, 0) | self.regs.get(off + 4, 0) << 32

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise DeviceError("ap_start while the engine runs")
        addrs = [self._address(f"mem{p}") for p in range(self.ports)]
        buf = next((b for b in self.buffers
                    if b.physical_address <= addrs[0] < b.physical_address + b.size), None)
        if buf is None:
            raise DeviceError(f"port mem0 points at 0x{addrs[0]:x}, outside every allocated "
                              "buffer; write the buffer's physical_address to its offset "
                              "register")
        offsets = []
        for p, a in enumerate(addrs):
            rel = a - buf.physical_address
            if not 0 <= rel < buf.size:
                raise DeviceError(f"port mem{p} points at 0x{a:x}, outside mem0's buffer (the "
                                  "C-sim models one DDR buffer for every port)")
            if rel % self.beat_bytes:
                raise DeviceError(f"port mem{p}'s address 0x{a:x} is not "
                                  f"{self.beat_bytes}-byte aligned")
            offsets.append(rel // self.beat_bytes)
        queue = self.regs.get(self.regmap["queue"], 0)
        n_layers = self.regs.get(self.regmap["n_layers"], 0)
        if n_layers > self.max_layers:
            raise DeviceError(f"n_layers = {n_layers}; the kernel holds at most "
                              f"{self.max_layers}")
        with self._lock:
            self.ctrl = AP_START
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(buf, offsets, queue, n_layers),
                                        daemon=True)
        self._thread.start()

    def _run(self, buf: CsimBuffer, offsets: list[int], queue: int, n_layers: int) -> None:
        import time

        stats = np.zeros(max(n_layers, 1) * self.n_stats, np.float64)
        ports = (ctypes.c_long * self.ports)(*offsets)
        t0 = time.perf_counter()
        rc = self.lib.filmqnn_csim_run_at(
            buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), buf.size, ports, queue,
            n_layers, stats.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        self.seconds = time.perf_counter() - t0
        if rc:
            self._error = f"the C-simulation refused the run (code {rc})"
        self.stats = stats[: n_layers * self.n_stats].reshape(n_layers, self.n_stats)
        with self._lock:
            self.ctrl = AP_DONE | AP_IDLE | AP_READY

    def wait(self, timeout: float) -> None:
        """Joins the run's thread (up to ``timeout``), then checks ap_done as the board does."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise timeout_error(timeout, self.ctrl)
            if self._error:
                raise DeviceError(self._error)
        super().wait(timeout)
