"""Tcl scripts that turn the generated HLS project into a bitstream (templates/*.tcl.j2).

Two scripts per design point:

* ``run_hls_tcl``: a Vitis HLS (2022.2+) script, ``vitis_hls -f run_hls.tcl [-tclargs STEP..]``,
  that C-simulates, synthesizes, co-simulates and exports the ``filmqnn_engine`` kernel as a
  Vivado IP (``<project>/solution1/impl/ip``).
* ``block_design_tcl``: a Vivado (2022.2+) script, ``vivado -mode batch -source <board>_bd.tcl``,
  that builds the Zynq block design around that IP (one PS high-performance port per
  ``gmem{i}`` bundle, the control port on the PS master port, the interrupt on the PS) and
  writes ``filmqnn.bit`` + ``filmqnn.hwh`` next to itself, the pair PYNQ's ``Overlay`` loads.

Neither tool runs on the development machine; the tests parse both scripts with ``tclsh`` and
check the commands they issue (tests/hls/test_scripts.py, docs/hls_vivado.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import jinja2

from filmqnn.hw.devices import Board

DEFAULT_TOP = "filmqnn_engine"
DEFAULT_HLS_PROJECT = "filmqnn_hls"
DEFAULT_SOURCES = ("src/engine.cpp",)
DEFAULT_TESTBENCH = "tb/testbench.cpp"
DEFAULT_TB_ARGS = ("data/tb_ddr.bin", "data/expected.bin")
HLS_STEPS = ("csim", "csynth", "cosim", "export")

# Full part numbers (device-package-speed[-temperature]) for boards whose JSON ``part`` holds
# only the device; the built-in board files already carry the full number.
_FULL_PARTS = {
    "pynq-z2": "xc7z020clg400-1",
    "zcu102": "xczu9eg-ffvb1156-2-e",
    "zc706": "xc7z045ffg900-2",
    "zcu104": "xczu7ev-ffvc1156-2-e",
    "ultra96-v2": "xczu3eg-sbva484-1-i",  # the V2 is the industrial (-i) grade
    "kv260": "xck26-sfvc784-2LV-c",
}
# Vivado board parts the scripts pin (the versions this project was written against).
_BOARD_PARTS = {
    "zcu102": "xilinx.com:zcu102:part0:3.4",  # ships with Vivado
    "pynq-z2": "tul.com.tw:pynq-z2:part0:1.0",  # TUL's board files, installed by the user
}
# Name fragment of each board's Vivado board files: the script falls back to the newest
# installed revision matching ``*:<key>:*`` when the pinned board part is not installed.
_BOARD_FILE_KEYS = {
    "zcu102": "zcu102",
    "pynq-z2": "pynq-z2",
    "zc706": "zc706",
    "zcu104": "zcu104",
    "ultra96-v2": "ultra96v2",
    "kv260": "kv260_som",
}
# processing_system7 has built-in presets (CONFIG.preset) for a few Xilinx boards.
_PS7_PRESETS = {"zc706": "ZC706"}
# device + package + pin count + "-" speed grade (+ "-" temperature grade): xc7z020clg400-1,
# xczu9eg-ffvb1156-2-e, xck26-sfvc784-2LV-c.
_FULL_PART_RE = re.compile(r"^xc[a-z0-9]+?-?[a-z]{2,4}\d{3,4}-\d[a-z]*(-[a-z])?$", re.IGNORECASE)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("filmqnn.hls", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["braced"] = lambda v: "{" + str(v) + "}"  # a Tcl braced word: {100}
    return env


def _num(x: float, digits: int = 3) -> str:
    """A Tcl-friendly decimal: 100.0 -> '100', 1000/150 -> '6.667'."""
    s = f"{round(float(x), digits):.{digits}f}".rstrip("0").rstrip(".")
    return s or "0"


def clock_period_ns(clock_mhz: float) -> str:
    """The clock period in ns for ``create_clock -period`` (3 decimals)."""
    if clock_mhz <= 0:
        raise ValueError(f"clock must be positive, got {clock_mhz} MHz")
    return _num(1000.0 / clock_mhz)


def full_part(board: Board) -> str:
    """The full part number Vitis HLS / Vivado want (``set_part``, ``create_project -part``)."""
    if _FULL_PART_RE.match(board.part):
        return board.part
    known = _FULL_PARTS.get(board.name.lower())
    if known is not None:
        return known
    raise ValueError(
        f"board {board.name!r}: part {board.part!r} is not a full part number "
        "(device-package-speed grade, e.g. xc7z020clg400-1) and the board is not one of "
        f"{', '.join(sorted(_FULL_PARTS))}; write the full part number in the board's JSON file"
    )


def board_part(board: Board) -> str | None:
    """The Vivado board part pinned for the board, or None where the scripts pin none."""
    return _BOARD_PARTS.get(board.name.lower())


def _tcl_word(s: str) -> str:
    """``s`` as one braced Tcl word; rejects what cannot be braced safely."""
    if any(c in s for c in "{}\\\n\r") or not s:
        raise ValueError(f"{s!r} cannot be written into a Tcl script (braces, backslash, newline)")
    return "{" + s + "}"


def run_hls_tcl(
    part: str,
    clock_mhz: float,
    top: str = DEFAULT_TOP,
    sources: Sequence[str] = DEFAULT_SOURCES,
    testbench: str = DEFAULT_TESTBENCH,
    tb_args: Sequence[str] = DEFAULT_TB_ARGS,
    project: str = DEFAULT_HLS_PROJECT,
) -> str:
    """The Vitis HLS script (run_hls.tcl) for one kernel; paths are relative to the script."""
    if not sources:
        raise ValueError("run_hls_tcl needs at least one kernel source")
    for name in (top, project):
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"{name!r} is not a valid top-function / project name")
    return (
        _env()
        .get_template("run_hls.tcl.j2")
        .render(
            part=part,
            clock_mhz=_num(clock_mhz),
            period_ns=clock_period_ns(clock_mhz),
            top=top,
            project=project,
            sources=[_tcl_word(s) for s in sources],
            testbench=_tcl_word(testbench),
            tb_args=[_tcl_word(a) for a in tb_args],
            steps=" ".join(HLS_STEPS),
        )
    )


@dataclass(frozen=True)
class HpPort:
    """One PS slave port a ``gmem{i}`` bundle reaches DDR through."""

    index: int  # i of gmem{i}
    pin: str  # interface pin on the PS cell
    aclk: str  # its clock pin on the PS cell
    use_prop: str  # CONFIG.* enabling it
    width_prop: str  # CONFIG.* setting its data width


def _ps7_ports() -> list[HpPort]:
    # Zynq-7000 (UG585 ch. 5.4): S_AXI_HP0..3, 32/64-bit, processing_system7 pins
    # S_AXI_HP<k> / S_AXI_HP<k>_ACLK, properties PCW_USE_S_AXI_HP<k> / PCW_S_AXI_HP<k>_DATA_WIDTH.
    return [
        HpPort(
            k,
            f"S_AXI_HP{k}",
            f"S_AXI_HP{k}_ACLK",
            f"CONFIG.PCW_USE_S_AXI_HP{k}",
            f"CONFIG.PCW_S_AXI_HP{k}_DATA_WIDTH",
        )
        for k in range(4)
    ]


def _psu_ports() -> list[HpPort]:
    # Zynq UltraScale+ (UG1085 table 35-2): zynq_ultra_ps_e numbers its PL->PS slave ports
    # S_AXI_GP0..6 = HPC0, HPC1, HP0, HP1, HP2, HP3, LPD. The HP ports come first here (they
    # are the DDR ports); the HPC ports, used non-coherently, serve designs with 5-6 bundles.
    order = [("HP0", 2), ("HP1", 3), ("HP2", 4), ("HP3", 5), ("HPC0", 0), ("HPC1", 1)]
    return [
        HpPort(
            i,
            f"S_AXI_{name}_FPD",
            f"saxi{name.lower()}_fpd_aclk",
            f"CONFIG.PSU__USE__S_AXI_GP{gp}",
            f"CONFIG.PSU__SAXIGP{gp}__DATA_WIDTH",
        )
        for i, (name, gp) in enumerate(order)
    ]


def block_design_tcl(
    board: Board,
    ports: int,
    clock_mhz: float,
    top: str = DEFAULT_TOP,
    hls_project: str = DEFAULT_HLS_PROJECT,
) -> str:
    """The Vivado block-design script (``<board>_bd.tcl``) for ``ports`` AXI bundles."""
    if not 1 <= ports <= board.axi_ports:
        raise ValueError(
            f"board {board.name}: a design uses 1..{board.axi_ports} AXI ports, got {ports}"
        )
    if clock_mhz <= 0:
        raise ValueError(f"clock must be positive, got {clock_mhz} MHz")
    for name in (top, hls_project):
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise ValueError(f"{name!r} is not a valid top-function / project name")
    ultrascale = board.family == "ultrascale+"
    all_ports = _psu_ports() if ultrascale else _ps7_ports()
    if ports > len(all_ports):
        raise ValueError(f"board {board.name}: the PS has only {len(all_ports)} slave ports")
    key = board.name.lower()
    slug = re.sub(r"\W+", "_", key).strip("_") or "board"
    return (
        _env()
        .get_template("block_design.tcl.j2")
        .render(
            board_name=board.name,
            slug=slug,
            ultrascale=ultrascale,
            part=full_part(board),
            board_part=board_part(board) or "",
            board_key=_BOARD_FILE_KEYS.get(key, ""),
            ps7_preset=_PS7_PRESETS.get(key, ""),
            width=board.axi_width_bits,
            used=all_ports[:ports],
            unused=all_ports[ports:],
            ports=ports,
            clock_mhz=_num(clock_mhz),
            top=top,
            hls_project=hls_project,
        )
    )
