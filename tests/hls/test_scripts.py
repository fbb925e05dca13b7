"""The Vitis HLS / Vivado scripts: rendered per board, parsed and run by tclsh with every
tool command recorded instead of executed (neither tool is installed here)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from filmqnn.hls.scripts import (
    block_design_tcl,
    board_part,
    clock_period_ns,
    full_part,
    run_hls_tcl,
)
from filmqnn.hw.devices import list_boards, load_board, validate_board

# Runs a script under tclsh: `unknown` records every command tclsh does not know (the
# Vitis / Vivado ones) and returns its last word (a stand-in handle), or "" for the commands
# named in EMPTY; `exit` is recorded, not obeyed. Records go to OUT, words separated by
# \x1f, commands by \x1e. A syntax error or unbalanced brace makes `source` fail: exit 1.
_HARNESS = r"""
lassign $argv SCRIPT OUT EMPTY SCRIPT_ARGS
set ::records {}
set ::empty $EMPTY
proc unknown {args} {
    lappend ::records $args
    if {[lsearch -exact $::empty [lindex $args 0]] >= 0} { return "" }
    return [lindex $args end]
}
rename exit __real_exit
proc exit {args} { lappend ::records [linsert $args 0 exit] }
set argv $SCRIPT_ARGS
set argc [llength $argv]
set rc [catch {uplevel #0 [list source $SCRIPT]} msg]
set f [open $OUT w]
fconfigure $f -encoding utf-8 -translation lf
foreach r $::records { puts -nonewline $f "[join $r \x1f]\x1e" }
close $f
if {$rc} {
    puts stderr "ERROR: $msg"
    __real_exit 1
}
"""


def _tclsh() -> str:
    path = shutil.which("tclsh")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("tclsh is not installed (scripts/setup.sh installs the Debian package tcl)")
        pytest.skip("tclsh is not installed (apt-get install tcl)")
    return path


def run_tcl(
    script: Path, args: tuple[str, ...] = (), empty: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """Source ``script`` under the harness; (process, recorded commands as word lists)."""
    harness = script.parent / "_harness.tcl"
    harness.write_text(_HARNESS)
    out = script.parent / "_records.bin"
    tcl_list = " ".join("{" + a + "}" for a in args)  # the script's argv as a Tcl list
    proc = subprocess.run(
        [_tclsh(), str(harness), str(script), str(out), " ".join(empty), tcl_list],
        capture_output=True,
        text=True,
        timeout=60,
    )
    records = []
    if out.exists():
        records = [r.split("\x1f") for r in out.read_text(encoding="utf-8").split("\x1e") if r]
    return proc, records


def calls(records: list[list[str]], name: str) -> list[list[str]]:
    return [r for r in records if r[0] == name]


def properties(records: list[list[str]]) -> dict[str, str]:
    """Every CONFIG.* set with ``set_property -dict``, later settings winning."""
    props: dict[str, str] = {}
    for r in calls(records, "set_property"):
        if len(r) >= 3 and r[1] == "-dict":
            words = r[2].split()
            props.update(zip(words[::2], words[1::2], strict=True))
    return props


# ---- the Vitis HLS script ------------------------------------------------------------------


@pytest.mark.parametrize("board,mhz,period", [("pynq-z2", 100.0, "10"), ("zcu102", 150.0, "6.667")])
def test_run_hls_script_all_steps(tmp_path, board, mhz, period):
    b = load_board(board)
    script = tmp_path / "run_hls.tcl"
    script.write_text(run_hls_tcl(full_part(b), mhz))
    proc, rec = run_tcl(script)
    assert proc.returncode == 0, proc.stderr
    names = [r[0] for r in rec]
    assert calls(rec, "set_part") == [["set_part", full_part(b)]]
    assert calls(rec, "create_clock") == [["create_clock", "-period", period, "-name", "default"]]
    assert calls(rec, "set_top") == [["set_top", "filmqnn_engine"]]
    assert calls(rec, "open_solution") == [["open_solution", "-flow_target", "vivado", "solution1"]]
    assert calls(rec, "config_interface") == [["config_interface", "-m_axi_addr64"]]
    # kernel and testbench, both with C++14 and the src/ include path, from the script's folder
    adds = calls(rec, "add_files")
    assert [
        "add_files",
        str(tmp_path / "src/engine.cpp"),
        "-cflags",
        f"-std=c++14 -I{tmp_path / 'src'}",
    ] in adds
    assert [
        "add_files",
        "-tb",
        str(tmp_path / "tb/testbench.cpp"),
        "-cflags",
        f"-std=c++14 -I{tmp_path / 'src'}",
    ] in adds
    argv = f"{tmp_path / 'data/tb_ddr.bin'} {tmp_path / 'data/expected.bin'}"
    assert calls(rec, "csim_design") == [["csim_design", "-argv", argv]]
    assert calls(rec, "cosim_design")[0][-2:] == ["-argv", argv]
    assert calls(rec, "export_design") == [
        ["export_design", "-format", "ip_catalog", "-rtl", "verilog"]
    ]
    steps = [n for n in names if n.endswith("_design")]
    assert steps == ["csim_design", "csynth_design", "cosim_design", "export_design"]
    assert names.index("set_part") < names.index("csim_design")
    assert names[-1] == "exit"


def test_run_hls_script_picks_steps_from_tclargs(tmp_path):
    script = tmp_path / "run_hls.tcl"
    script.write_text(run_hls_tcl("xc7z020clg400-1", 100.0))
    proc, rec = run_tcl(script, ("csim", "csynth"))
    assert proc.returncode == 0, proc.stderr
    assert [r[0] for r in rec if r[0].endswith("_design")] == ["csim_design", "csynth_design"]
    # vitis_hls may leave its own "-f run_hls.tcl" in argv; order on the line does not matter
    proc, rec = run_tcl(script, ("-f", "run_hls.tcl", "export", "cosim"))
    assert proc.returncode == 0, proc.stderr
    assert [r[0] for r in rec if r[0].endswith("_design")] == ["cosim_design", "export_design"]
    proc, rec = run_tcl(script, ("synth",))
    assert proc.returncode == 1 and "unknown step 'synth'" in proc.stderr
    assert not [r for r in rec if r[0].endswith("_design")]


def test_harness_rejects_broken_tcl(tmp_path):
    """The parse check is real: an unbalanced brace or bad syntax fails."""
    good = run_hls_tcl("xc7z020clg400-1", 100.0)
    script = tmp_path / "run_hls.tcl"
    i = good.rindex("}")
    script.write_text(good[:i] + good[i + 1 :])
    proc, _ = run_tcl(script)
    assert proc.returncode == 1 and "ERROR" in proc.stderr
    script.write_text(good.replace("if {[llength $picked] > 0}", "if {[llength $picked > 0}"))
    proc, _ = run_tcl(script)
    assert proc.returncode == 1


# ---- the Vivado block design ---------------------------------------------------------------


def _bd_setup(tmp_path: Path, board, ports: int, mhz: float) -> tuple[Path, Path]:
    """Script at <tmp>/vivado/<board>_bd.tcl, a stand-in exported IP folder and stand-in run
    outputs (a .bit and a .hwh where Vivado writes them) for the copy step."""
    vdir = tmp_path / "vivado"
    vdir.mkdir()
    (tmp_path / "filmqnn_hls/solution1/impl/ip").mkdir(parents=True)
    proj = "filmqnn_" + board.name.replace("-", "_")
    run = vdir / proj / f"{proj}.runs/impl_1"
    run.mkdir(parents=True)
    (run / "filmqnn_bd_wrapper.bit").write_bytes(b"BIT")
    hwh = vdir / proj / f"{proj}.gen/sources_1/bd/filmqnn_bd/hw_handoff"
    hwh.mkdir(parents=True)
    (hwh / "filmqnn_bd.hwh").write_text("<HWH/>")
    script = vdir / f"{board.name}_bd.tcl"
    script.write_text(block_design_tcl(board, ports, mhz))
    return script, vdir


def _check_common(rec, vdir, board, ports):
    names = [r[0] for r in rec]
    top = "filmqnn_engine_0"
    part = calls(rec, "create_project")[0]
    assert part[1:] == [
        f"filmqnn_{board.name.replace('-', '_')}",
        str(vdir / f"filmqnn_{board.name.replace('-', '_')}"),
        "-part",
        full_part(board),
        "-force",
    ]
    assert [
        "set_property",
        "ip_repo_paths",
        str(vdir.parent / "filmqnn_hls/solution1/impl/ip"),
        "current_project",
    ] in rec
    intf = [r[1:] for r in calls(rec, "connect_bd_intf_net")]
    for i in range(ports):
        assert [f"{top}/m_axi_gmem{i}", f"sc_gmem{i}/S00_AXI"] in intf
    assert not [c for c in intf if f"m_axi_gmem{ports}" in c[0]]
    assert ["sc_ctrl/M00_AXI", f"{top}/s_axi_control"] in intf
    assert len(intf) == 2 * ports + 2
    nets = [r[1:] for r in calls(rec, "connect_bd_net")]
    assert [
        f"{top}/interrupt",
        "ps/IRQ_F2P" if board.family == "7series" else "ps/pl_ps_irq0",
    ] in nets
    order = [
        "create_bd_design",
        "assign_bd_address",
        "validate_bd_design",
        "make_wrapper",
        "launch_runs",
        "wait_on_run",
    ]
    assert [names.index(n) for n in order] == sorted(names.index(n) for n in order)
    assert ["launch_runs", "impl_1", "-to_step", "write_bitstream", "-jobs", "4"] in rec
    assert (vdir / "filmqnn.bit").read_bytes() == b"BIT"
    assert (vdir / "filmqnn.hwh").read_text() == "<HWH/>"


def test_block_design_pynq_z2(tmp_path):
    board = load_board("pynq-z2")
    script, vdir = _bd_setup(tmp_path, board, 2, 100.0)
    proc, rec = run_tcl(script)
    assert proc.returncode == 0, proc.stderr
    _check_common(rec, vdir, board, 2)
    assert ["set_property", "board_part", "tul.com.tw:pynq-z2:part0:1.0", "current_project"] in rec
    assert calls(rec, "create_bd_cell")[0][-2:] == ["xilinx.com:ip:processing_system7", "ps"]
    props = properties(rec)
    enabled = [k for k, v in props.items() if k.startswith("CONFIG.PCW_USE_S_AXI_HP") and v == "1"]
    assert sorted(enabled) == ["CONFIG.PCW_USE_S_AXI_HP0", "CONFIG.PCW_USE_S_AXI_HP1"]
    assert props["CONFIG.PCW_USE_S_AXI_HP2"] == props["CONFIG.PCW_USE_S_AXI_HP3"] == "0"
    assert (
        props["CONFIG.PCW_S_AXI_HP0_DATA_WIDTH"] == props["CONFIG.PCW_S_AXI_HP1_DATA_WIDTH"] == "64"
    )
    assert props["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == "100"
    assert props["CONFIG.PCW_USE_M_AXI_GP0"] == "1"
    assert props["CONFIG.PCW_IRQ_F2P_INTR"] == props["CONFIG.PCW_USE_FABRIC_INTERRUPT"] == "1"
    auto = calls(rec, "apply_bd_automation")[0]
    assert auto[1:3] == ["-rule", "xilinx.com:bd_rule:processing_system7"]
    assert "apply_board_preset 1" in auto[4]
    nets = [r[1:] for r in calls(rec, "connect_bd_net")]
    for i in range(2):
        assert ["ps/FCLK_CLK0", f"ps/S_AXI_HP{i}_ACLK"] in nets
    intf = [r[1:] for r in calls(rec, "connect_bd_intf_net")]
    assert ["sc_gmem1/M00_AXI", "ps/S_AXI_HP1"] in intf and [
        "ps/M_AXI_GP0",
        "sc_ctrl/S00_AXI",
    ] in intf


def test_block_design_zcu102(tmp_path):
    board = load_board("zcu102")
    script, vdir = _bd_setup(tmp_path, board, 6, 150.0)
    proc, rec = run_tcl(script)
    assert proc.returncode == 0, proc.stderr
    _check_common(rec, vdir, board, 6)
    assert ["set_property", "board_part", "xilinx.com:zcu102:part0:3.4", "current_project"] in rec
    assert calls(rec, "create_bd_cell")[0][-2:] == ["xilinx.com:ip:zynq_ultra_ps_e", "ps"]
    props = properties(rec)
    enabled = [
        k for k, v in props.items() if k.startswith("CONFIG.PSU__USE__S_AXI_GP") and v == "1"
    ]
    assert sorted(enabled) == [f"CONFIG.PSU__USE__S_AXI_GP{g}" for g in range(6)]
    assert props["CONFIG.PSU__USE__S_AXI_GP6"] == "0"  # the LPD port stays off
    assert {props[f"CONFIG.PSU__SAXIGP{g}__DATA_WIDTH"] for g in range(6)} == {"128"}
    assert props["CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "150"
    assert props["CONFIG.PSU__FPGA_PL0_ENABLE"] == props["CONFIG.PSU__USE__IRQ0"] == "1"
    assert props["CONFIG.PSU__USE__M_AXI_GP0"] == "1"
    assert props["CONFIG.PSU__USE__M_AXI_GP1"] == props["CONFIG.PSU__USE__M_AXI_GP2"] == "0"
    intf = [r[1:] for r in calls(rec, "connect_bd_intf_net")]
    hp = [
        "S_AXI_HP0_FPD",
        "S_AXI_HP1_FPD",
        "S_AXI_HP2_FPD",
        "S_AXI_HP3_FPD",
        "S_AXI_HPC0_FPD",
        "S_AXI_HPC1_FPD",
    ]
    for i, pin in enumerate(hp):
        assert [f"sc_gmem{i}/M00_AXI", f"ps/{pin}"] in intf
    assert ["ps/M_AXI_HPM0_FPD", "sc_ctrl/S00_AXI"] in intf
    nets = [r[1:] for r in calls(rec, "connect_bd_net")]
    for aclk in ("saxihp0_fpd_aclk", "saxihp3_fpd_aclk", "saxihpc1_fpd_aclk", "maxihpm0_fpd_aclk"):
        assert ["ps/pl_clk0", f"ps/{aclk}"] in nets


def test_block_design_zcu102_two_ports_disables_the_rest(tmp_path):
    board = load_board("zcu102")
    script, vdir = _bd_setup(tmp_path, board, 2, 150.0)
    proc, rec = run_tcl(script)
    assert proc.returncode == 0, proc.stderr
    _check_common(rec, vdir, board, 2)
    props = properties(rec)
    enabled = [
        k for k, v in props.items() if k.startswith("CONFIG.PSU__USE__S_AXI_GP") and v == "1"
    ]
    assert sorted(enabled) == [
        "CONFIG.PSU__USE__S_AXI_GP2",
        "CONFIG.PSU__USE__S_AXI_GP3",
    ]  # HP0, HP1


def test_block_design_without_board_files(tmp_path):
    """No board files installed: bare part, a warning, processing_system7's own preset (ZC706)."""
    board = load_board("zc706")
    script, vdir = _bd_setup(tmp_path, board, 4, 150.0)
    proc, rec = run_tcl(script, empty=("get_board_parts",))
    assert proc.returncode == 0, proc.stderr
    assert "no Vivado board files for zc706" in proc.stdout
    assert not [r for r in calls(rec, "set_property") if r[1] == "board_part"]
    assert "apply_board_preset 0" in calls(rec, "apply_bd_automation")[0][4]
    props = properties(rec)
    assert props["CONFIG.preset"] == "ZC706"
    assert sum(props[f"CONFIG.PCW_USE_S_AXI_HP{k}"] == "1" for k in range(4)) == 4
    assert props["CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ"] == "150"


def test_block_design_fails_clearly_without_the_ip(tmp_path):
    board = load_board("pynq-z2")
    script, vdir = _bd_setup(tmp_path, board, 1, 100.0)
    proc, rec = run_tcl(script, empty=("get_ipdefs",))  # the IP folder holds no filmqnn_engine
    assert proc.returncode == 1 and "IP filmqnn_engine not found" in proc.stderr
    assert not calls(rec, "create_bd_design")
    shutil.rmtree(tmp_path / "filmqnn_hls")
    proc, rec = run_tcl(script)
    assert proc.returncode == 1 and "no HLS IP at" in proc.stderr
    assert not calls(rec, "create_project")
    # an explicit IP folder on the command line (-tclargs)
    ip = tmp_path / "elsewhere"
    ip.mkdir()
    proc, rec = run_tcl(script, (str(ip),))
    assert proc.returncode == 0, proc.stderr
    assert ["set_property", "ip_repo_paths", str(ip), "current_project"] in rec


@pytest.mark.parametrize("name", list_boards())
def test_every_builtin_board_renders_and_parses(tmp_path, name):
    board = load_board(name)
    script, _ = _bd_setup(tmp_path, board, board.axi_ports, board.default_clock_mhz)
    proc, rec = run_tcl(script)
    assert proc.returncode == 0, proc.stderr
    props = properties(rec)
    use = (
        "CONFIG.PSU__USE__S_AXI_GP" if board.family == "ultrascale+" else "CONFIG.PCW_USE_S_AXI_HP"
    )
    assert sum(v == "1" for k, v in props.items() if k.startswith(use)) == board.axi_ports


# ---- parts, board parts, arguments (no tclsh needed) ----------------------------------------


def test_full_parts_and_board_parts():
    expected = {
        "pynq-z2": "xc7z020clg400-1",
        "zcu102": "xczu9eg-ffvb1156-2-e",
        "zc706": "xc7z045ffg900-2",
        "zcu104": "xczu7ev-ffvc1156-2-e",
        "ultra96-v2": "xczu3eg-sbva484-1-i",
        "kv260": "xck26-sfvc784-2LV-c",
    }
    assert {n: full_part(load_board(n)) for n in expected} == expected
    assert board_part(load_board("zcu102")) == "xilinx.com:zcu102:part0:3.4"
    assert board_part(load_board("pynq-z2")) == "tul.com.tw:pynq-z2:part0:1.0"
    assert board_part(load_board("zcu104")) is None


def _user_board(name: str, part: str):
    data = load_board("pynq-z2").to_dict()
    data.update(name=name, part=part)
    return validate_board(data)


def test_full_part_from_a_device_only_part():
    # a user board file naming only the device: known boards get their full number ...
    assert full_part(_user_board("pynq-z2", "xc7z020")) == "xc7z020clg400-1"
    # ... an unknown board is an error naming what to write
    with pytest.raises(ValueError, match="not a full part number"):
        full_part(_user_board("my-board", "xc7z020"))
    with pytest.raises(ValueError, match="not a full part number"):
        block_design_tcl(_user_board("my-board", "xc7z020"), 1, 100.0)
    assert full_part(_user_board("my-board", "xc7z010clg400-1")) == "xc7z010clg400-1"


def test_argument_checks():
    pynq = load_board("pynq-z2")
    with pytest.raises(ValueError, match="1..4 AXI ports"):
        block_design_tcl(pynq, 5, 100.0)
    with pytest.raises(ValueError, match="1..4 AXI ports"):
        block_design_tcl(pynq, 0, 100.0)
    with pytest.raises(ValueError, match="positive"):
        block_design_tcl(pynq, 1, 0.0)
    with pytest.raises(ValueError, match="positive"):
        run_hls_tcl("xc7z020clg400-1", -1.0)
    with pytest.raises(ValueError, match="cannot be written"):
        run_hls_tcl("xc7z020clg400-1", 100.0, sources=("src/{x}.cpp",))
    assert clock_period_ns(100) == "10" and clock_period_ns(150) == "6.667"
    assert clock_period_ns(333.333) == "3"
