"""``PynqDevice``: the engine on a PYNQ board, through the ``pynq`` package.

``pynq.Overlay`` loads the bitstream (with its ``.hwh`` beside it), ``pynq.allocate`` gives
physically contiguous buffers, and the kernel's IP (``filmqnn_engine_0``) gives register
access. ``pynq`` is imported when a ``PynqDevice`` is made, so this module loads anywhere.
Not run here: no board or ``pynq`` package on the development machine (docs/deployment_board.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from .device import Device, DeviceError, check_hwh_registers, kernel_args, register_map

#: Instance name of the kernel in the generated block design (vivado/<board>_bd.tcl).
IP_NAME = "filmqnn_engine_0"


class PynqDevice(Device):
    """Bitstream + ``.hwh`` loaded with ``pynq.Overlay``; registers via the kernel's IP."""

    def __init__(self, bitstream: str | Path, ports: int, ip_name: str = IP_NAME,
                 download: bool = True) -> None:
        try:
            import pynq
        except ImportError as exc:
            raise DeviceError("the pynq package is not importable: PynqDevice runs on a PYNQ "
                              "board image (use CsimDevice elsewhere)") from exc
        path = Path(bitstream)
        if not path.with_suffix(".hwh").is_file():
            raise DeviceError(f"{path.with_suffix('.hwh')} is missing: pynq.Overlay needs the "
                              ".hwh beside the .bit (the Vivado step copies both)")
        self._pynq = pynq
        self.overlay = pynq.Overlay(str(path), download=download)
        if ip_name not in self.overlay.ip_dict:
            raise DeviceError(f"the overlay has no IP {ip_name!r} (it has "
                              f"{', '.join(sorted(self.overlay.ip_dict))}); was the bitstream "
                              "built from filmqnn's block design?")
        self.ip = getattr(self.overlay, ip_name)
        self.ports = ports
        regs = self.overlay.ip_dict[ip_name].get("registers") or {}
        problems, missing = check_hwh_registers(register_map(kernel_args(ports)), regs)
        if problems:
            raise DeviceError("the bitstream's register map differs from the bundle's kernel "
                              "(was it built from another project?): " + "; ".join(problems))
        if missing:
            print(f"warning: the .hwh lists no register for {', '.join(missing)}; using the "
                  "offsets Vitis HLS assigns (docs/deployment_board.md)", file=sys.stderr)
        self.buffers = []  # type: list[Any]

    def allocate(self, nbytes: int) -> Any:
        buf = self._pynq.allocate(shape=(int(nbytes),), dtype=np.uint8)
        self.buffers.append(buf)
        return buf

    def write(self, buf: Any, offset: int, data: np.ndarray) -> None:
        raw = np.asarray(data, np.uint8).reshape(-1)
        buf[offset:offset + raw.size] = raw
        buf.flush()

    def read(self, buf: Any, offset: int, nbytes: int) -> np.ndarray:
        buf.invalidate()
        return np.array(buf[offset:offset + nbytes])

    def write_reg(self, offset: int, value: int) -> None:
        self.ip.write(offset, int(value) & 0xFFFFFFFF)

    def read_reg(self, offset: int) -> int:
        return int(self.ip.read(offset))

    def close(self) -> None:
        for buf in self.buffers:
            buf.freebuffer()
        self.buffers = []
