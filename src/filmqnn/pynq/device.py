"""The device interface the driver talks to, and the engine's control register map.

Two implementations: ``PynqDevice`` (the board, through the ``pynq`` package) and
``CsimDevice`` (the C-simulation library over a byte buffer standing in for DDR). Both expose
the kernel's ``s_axilite`` control interface as Vitis HLS generates it, so the driver writes
the same registers on either. Numpy only, Python 3.8 syntax: copied into the deploy bundle.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

# ---------------------------------------------------------------- s_axilite control map
#: Block-level control register (ap_ctrl_hs) and its bits; ap_done and ap_ready clear on read.
AP_CTRL = 0x00
AP_START, AP_DONE, AP_IDLE, AP_READY = 0x1, 0x2, 0x4, 0x8
#: Global interrupt enable, IP interrupt enable, IP interrupt status.
GIE, IER, ISR = 0x04, 0x08, 0x0C
#: The first argument register; every argument then takes its data words plus one reserved word.
ARGS_BASE = 0x10
#: Address width of the kernel's m_axi offset registers (run_hls.tcl: config_interface
#: -m_axi_addr64).
POINTER_BITS = 64


def kernel_args(ports: int) -> list[tuple[str, int]]:
    """The engine's top-function arguments as (name, register bits), in declaration order:
    ``filmqnn_engine(mem0, ..., mem{P-1}, ap_uint<32> queue, ap_uint<32> n_layers)``."""
    return [(f"mem{p}", POINTER_BITS) for p in range(ports)] + [("queue", 32),
                                                                   ("n_layers", 32)]


def register_map(args: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Byte offset of each argument's first data register, as Vitis HLS assigns them on an
    s_axilite bundle: from 0x10 in declaration order, each argument ``ceil(bits/32)`` data
    words (low word first) followed by one reserved word (a 32-bit scalar takes 8 bytes, a
    64-bit pointer 12: in1 0x10, in2 0x1c, out 0x28, size 0x34 for vadd's four arguments)."""
    offsets = {}
    off = ARGS_BASE
    for name, bits in args:
        offsets[name] = off
        off += 4 * (-(-bits // 32)) + 4
    return offsets


def check_hwh_registers(expected: dict[str, int], registers: dict[str, Any]
                        ) -> tuple[list[str], list[str]]:
    """(offset mismatches, names not found) between the map the driver uses and the registers
    PYNQ read from the ``.hwh`` (``ip_dict[...]["registers"]``: name -> {"address_offset":
    ...}); a 64-bit argument may appear as ``name`` or as ``name_1`` / ``name_2`` (low, high
    word). The naming is Vitis HLS's as documented, not checked against a real .hwh here."""
    problems, missing = [], []
    for name, off in expected.items():
        found = [registers[k] for k in (name, name + "_1") if k in registers]
        if not found:
            missing.append(name)
            continue
        got = int(found[0].get("address_offset", -1))
        if got != off:
            problems.append(f"register {name} is at 0x{got:x} in the .hwh, the driver "
                            f"expects 0x{off:x}")
    return problems, missing


class DeviceError(RuntimeError):
    """The device refused a request or failed."""


class DeviceTimeout(DeviceError):
    """The engine did not finish within the timeout."""


def timeout_error(timeout: float, ctrl: int) -> DeviceTimeout:
    """The error of a run that did not finish in ``timeout`` seconds."""
    return DeviceTimeout(
        f"the engine did not finish within {timeout:.3g} s (ap_ctrl = 0x{ctrl:x}); check that "
        "the bitstream was built from the bundle's project, or raise --timeout for a large "
        "network")


class Device:
    """What the driver needs from an accelerator: device memory, the control registers, and
    start / wait of one engine run. Subclasses implement the six primitives."""

    #: Identity of the kernel the device runs (``hls.csim.design_id``), or None if unknown.
    design_id: str | None = None

    def allocate(self, nbytes: int) -> Any:
        """A physically contiguous buffer of ``nbytes`` with a ``physical_address``."""
        raise NotImplementedError

    def write(self, buf: Any, offset: int, data: np.ndarray) -> None:
        """Copy uint8 ``data`` to ``buf`` at byte ``offset``, visible to the engine."""
        raise NotImplementedError

    def read(self, buf: Any, offset: int, nbytes: int) -> np.ndarray:
        """``nbytes`` uint8 of ``buf`` from byte ``offset``, as the engine left them."""
        raise NotImplementedError

    def write_reg(self, offset: int, value: int) -> None:
        """Write a 32-bit control register."""
        raise NotImplementedError

    def read_reg(self, offset: int) -> int:
        """Read a 32-bit control register."""
        raise NotImplementedError

    def start(self) -> None:
        """Start one engine run (ap_start)."""
        self.write_reg(AP_CTRL, AP_START)

    def wait(self, timeout: float) -> None:
        """Return when the run has finished (ap_done); raise ``DeviceTimeout`` after
        ``timeout`` seconds. Polls the control register (no interrupt controller needed)."""
        deadline = time.monotonic() + timeout
        delay = 1e-5
        while True:
            if self.read_reg(AP_CTRL) & AP_DONE:
                return
            if time.monotonic() > deadline:
                raise timeout_error(timeout, self.read_reg(AP_CTRL))
            time.sleep(delay)
            delay = min(delay * 2, 1e-3)

    def close(self) -> None:
        """Release the device's resources."""
