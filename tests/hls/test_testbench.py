"""The generated Vitis HLS testbench, compiled as run_hls.tcl's csim step compiles it (g++,
C++14, the kernel source and the testbench, Xilinx's ap_types): bit-exact on its frame, and it
fails when the expected outputs are wrong."""

import subprocess

import pytest

from filmqnn.hls.csim import ap_types_dir
from filmqnn.hls.project import write_project
from filmqnn.hls.scripts import DEFAULT_TB_ARGS, DEFAULT_TESTBENCH
from filmqnn.hw.devices import load_board


@pytest.fixture(scope="module")
def testbench(graph_for, designs, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tb")
    board, design = designs["pynq-z2"]
    write_project(graph_for("resnet18_small", "pynq-z2"), design, load_board(board),
                  tmp / "prj")
    prj = tmp / "prj"
    exe = tmp / "tb"
    subprocess.run(["g++", "-O1", "-std=c++14", "-w", "-I", str(prj / "src"), "-I",
                    str(ap_types_dir()), str(prj / DEFAULT_TESTBENCH), str(prj / "src/engine.cpp"),
                    "-o", str(exe)], check=True)
    return prj, exe


def test_testbench_passes(testbench):
    prj, exe = testbench
    r = subprocess.run([str(exe), *(str(prj / a) for a in DEFAULT_TB_ARGS)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    assert "PASS" in r.stdout and "0 differ" in r.stdout


def test_testbench_catches_a_wrong_output(testbench, tmp_path):
    prj, exe = testbench
    want = bytearray((prj / DEFAULT_TB_ARGS[1]).read_bytes())
    want[3] ^= 0x10
    bad = tmp_path / "expected.bin"
    bad.write_bytes(bytes(want))
    r = subprocess.run([str(exe), str(prj / DEFAULT_TB_ARGS[0]), str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "FAIL" in r.stdout
