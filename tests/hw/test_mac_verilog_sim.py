"""Simulate the LUT-calibration MAC arrays (hw/templates/mac_array.v.j2) with Icarus Verilog
and compare every accumulator, every clock cycle, with ``hw.dsp_packing`` and plain integer
products.

DSP48E1 arrays run on Yosys' DSP48E1 simulation model (``xilinx/cells_sim.v``); DSP48E2
arrays on tests/hw/dsp48e2_subset_sim.v (Yosys ships no DSP48E2 model; that file models the
subset the template uses from UG579 and stops on anything else). The stimulus mixes uniform
random operands, operand corners held for a whole accumulation window (the guard-bit worst
case) and corners changing every cycle; the LUT arrays also get every (weight, activation)
pair in every lane.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from filmqnn.hw.dsp_arith import wrap_signed
from filmqnn.hw.dsp_packing import PackingScheme, get_scheme
from filmqnn.hw.mac_verilog import render_dsp_array, render_lut_array

needs_iverilog = pytest.mark.skipif(
    shutil.which("iverilog") is None or shutil.which("vvp") is None,
    reason="iverilog not installed (Debian package iverilog; scripts/setup.sh installs it)",
)

ACC = 24  # accumulator width, as the calibration (scripts/calibrate_luts.py)
RESET = 3  # cycles of rst before the first input
FLUSH = 7  # cycles after the last input (the DSP pipeline is 5 deep)
E2_MODEL = Path(__file__).with_name("dsp48e2_subset_sim.v")


def _yosys_xilinx_sim() -> Path | None:
    """Yosys' xilinx/cells_sim.v (DSP48E1 model), via yosys-config or next to the binary."""
    roots = []
    if cfg := shutil.which("yosys-config"):
        out = subprocess.run([cfg, "--datdir"], capture_output=True, text=True)
        roots.append(Path(out.stdout.strip()))
    if exe := shutil.which("yosys"):
        roots.append(Path(exe).resolve().parent.parent / "share" / "yosys")
    for root in roots:
        if (root / "xilinx" / "cells_sim.v").is_file():
            return root / "xilinx" / "cells_sim.v"
    return None


def _models(dsp: str) -> list[Path]:
    if dsp == "dsp48e2":
        return [E2_MODEL]
    sim = _yosys_xilinx_sim()
    if sim is None:
        pytest.skip("Yosys' xilinx/cells_sim.v (DSP48E1 simulation model) not found")
    return [sim]


def _pack(values: np.ndarray, bits: int) -> list[str]:
    """Rows of ints -> hex words, element k at bits [k*bits +: bits] (two's complement)."""
    words = []
    for row in values:
        word = 0
        for k, v in enumerate(row):
            word |= (int(v) & ((1 << bits) - 1)) << (k * bits)
        words.append(f"{word:x}")
    return words


def simulate(
    verilog: str,
    models: list[Path],
    w_words: list[str],
    a_words: list[str],
    w_width: int,
    a_width: int,
    outs: list[str],
    tmp: Path,
) -> list[list[int | str]]:
    """Run module ``mac``: ``RESET`` cycles of rst, one input per cycle, ``FLUSH`` idle cycles.
    Row ``c`` of the result holds the outputs just after clock edge ``c`` (x/z as strings)."""
    n = len(w_words)
    (tmp / "mac.v").write_text(verilog)
    (tmp / "w.hex").write_text("\n".join(w_words) + "\n")
    (tmp / "a.hex").write_text("\n".join(a_words) + "\n")
    decl = "".join(f"    wire signed [{ACC - 1}:0] {o};\n" for o in outs)
    conn = "".join(f", .{o}({o})" for o in outs)
    fmt = " ".join("%0d" for _ in outs)
    (tmp / "tb.v").write_text(
        f"""`timescale 1ns / 1ps
module tb;
    reg clk = 0, rst = 1;
    reg [{w_width - 1}:0] w_in = 0, wmem [0:{n - 1}];
    reg [{a_width - 1}:0] a_in = 0, amem [0:{n - 1}];
{decl}    mac dut (.clk(clk), .rst(rst), .w_in(w_in), .a_in(a_in){conn});
    integer c, f;
    initial begin
        $readmemh("w.hex", wmem);
        $readmemh("a.hex", amem);
        f = $fopen("out.txt", "w");
        for (c = 0; c < {RESET + n + FLUSH}; c = c + 1) begin
            rst = c < {RESET};
            w_in = (c >= {RESET} && c < {RESET + n}) ? wmem[c - {RESET}] : 0;
            a_in = (c >= {RESET} && c < {RESET + n}) ? amem[c - {RESET}] : 0;
            #5 clk = 1;
            #1 $fwrite(f, "{fmt}\\n", {", ".join(outs)});
            #4 clk = 0;
        end
        $fclose(f);
        $finish;
    end
endmodule
"""
    )
    cmd = ["iverilog", "-g2012", "-o", "sim", "-s", "tb", "tb.v", "mac.v", *map(str, models)]
    comp = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    assert comp.returncode == 0, comp.stderr
    run = subprocess.run(["vvp", "-n", "sim"], cwd=tmp, capture_output=True, text=True)
    assert run.returncode == 0 and "FATAL" not in run.stdout.upper(), run.stdout + run.stderr
    rows = (tmp / "out.txt").read_text().split("\n")[:-1]
    assert len(rows) == RESET + n + FLUSH
    return [[int(v) if v.lstrip("-").isdigit() else v for v in r.split()] for r in rows]


def _operands(rng, lo, hi, shape, depth) -> np.ndarray:
    """[windows, depth, lanes, n] operands: per (window, lane) uniform, a held corner or
    corners changing every cycle."""
    windows, lanes, n = shape
    kind = rng.integers(0, 3, size=(windows, 1, lanes, 1))
    uniform = rng.integers(lo, hi + 1, size=(windows, depth, lanes, n))
    held = np.where(rng.integers(0, 2, size=(windows, 1, lanes, n)) == 1, hi, lo)
    held = np.broadcast_to(held, uniform.shape)
    moving = np.where(rng.integers(0, 2, size=uniform.shape) == 1, hi, lo)
    return np.where(kind == 0, uniform, np.where(kind == 1, held, moving))


DSP_CASES = [
    # (dsp, wbits, scheme, signed activations); the calibration uses the first two per DSP
    ("dsp48e1", 4, "paper", False),
    ("dsp48e1", 8, "wide", False),
    ("dsp48e1", 4, "conv3x2", False),
    ("dsp48e1", 8, "paper", True),
    ("dsp48e2", 4, "wide", False),
    ("dsp48e2", 8, "wide", False),
    ("dsp48e2", 4, "conv3x2", True),
]


@needs_iverilog
@pytest.mark.parametrize(("dsp", "wbits", "name", "signed_act"), DSP_CASES)
def test_dsp_array_matches_dsp_packing(tmp_path, dsp, wbits, name, signed_act):
    scheme: PackingScheme = get_scheme(dsp, wbits, 5, name, signed_act)
    n_dsp, depth = 2, scheme.accumulate_depth
    n_w, n_a, n_f = len(scheme.weight_terms), len(scheme.act_terms), len(scheme.fields)
    windows = max(3, -(-96 // depth))
    rng = np.random.default_rng(13)
    w = _operands(rng, *scheme.weight_range, (windows, n_dsp, n_w), depth)
    a = _operands(rng, *scheme.act_range, (windows, n_dsp, n_a), depth)
    w[0], a[0] = scheme.weight_range[1], scheme.act_range[1]  # every operand at its maximum

    # Per window and DSP: the packed DSP model, extraction and the exact field sums.
    wt, at = w.transpose(0, 2, 1, 3), a.transpose(0, 2, 1, 3)  # [windows, dsp, depth, n]
    fields = scheme.run(wt, at)
    np.testing.assert_array_equal(fields, scheme.reference(wt, at))
    per_window = fields.sum(axis=1)  # [windows, n_f]: the adder trees over the DSPs

    rows = simulate(
        render_dsp_array(scheme, n_dsp, ACC),
        _models(dsp),
        _pack(w.reshape(windows * depth, -1), scheme.wbits),
        _pack(a.reshape(windows * depth, -1), scheme.abits),
        n_dsp * n_w * scheme.wbits,
        n_dsp * n_a * scheme.abits,
        [f"acc{k}" for k in range(n_f)],
        tmp_path,
    )
    # Window m's last input is sampled at edge RESET + (m+1)*depth - 1; its fields reach the
    # accumulators 5 edges later.
    done = RESET + np.arange(1, windows + 1) * depth - 1 + 5
    expect = [
        wrap_signed(per_window[done <= c].sum(axis=0, dtype=np.int64), ACC).tolist()
        if (done <= c).any()
        else [0] * n_f
        for c in range(len(rows))
    ]
    assert rows == expect
    assert any(v != 0 for v in rows[-1])


LUT_CASES = [(4, False), (8, False), (4, True)]


@needs_iverilog
@pytest.mark.parametrize(("wbits", "signed_act"), LUT_CASES)
def test_lut_array_matches_integer_products(tmp_path, wbits, signed_act):
    lanes, abits = 4, 5
    wm = (1 << (wbits - 1)) - 1
    a_lo, a_hi = (-16, 15) if signed_act else (0, 31)
    # Every (weight, activation) pair in every lane (lane l walks the list from offset l/lanes
    # of its length), then random operands over the full weight field.
    pairs = np.array([(x, y) for x in range(-wm, wm + 1) for y in range(a_lo, a_hi + 1)])
    n = len(pairs)
    idx = (np.arange(n)[:, None] + np.arange(lanes)[None, :] * (n // lanes)) % n
    rng = np.random.default_rng(13)
    w = np.concatenate([pairs[idx, 0], rng.integers(-wm - 1, wm + 1, size=(64, lanes))])
    a = np.concatenate([pairs[idx, 1], rng.integers(a_lo, a_hi + 1, size=(64, lanes))])

    rows = simulate(
        render_lut_array(lanes, wbits, abits, signed_act, ACC),
        [],
        _pack(w, wbits),
        _pack(a, abits),
        lanes * wbits,
        lanes * abits,
        ["acc"],
        tmp_path,
    )
    per_cycle = (w * a).sum(axis=1)  # input t reaches acc at edge RESET + t + 1
    done = RESET + np.arange(len(w)) + 1
    expect = [[int(wrap_signed(per_cycle[done <= c].sum(), ACC))] for c in range(len(rows))]
    assert rows == expect


CONTROL_PINS = (
    "CEA1 CEA2 CEB1 CEB2 CEC CED CEAD CEM CEP CECTRL CEINMODE CEALUMODE CECARRYIN".split(),
    "RSTA RSTB RSTC RSTD RSTM RSTP RSTCTRL RSTINMODE RSTALUMODE RSTALLCARRYIN".split(),
)


@pytest.mark.parametrize("dsp", ["dsp48e1", "dsp48e2"])
def test_dsp_instances_tie_every_control_pin(dsp):
    """Static check (runs without iverilog): every clock enable high, every reset low, B
    registered twice to meet the A+D register, OPMODE from the window control."""
    s = get_scheme(dsp, 4, 5, "paper")
    v = render_dsp_array(s, 1)
    enables, resets = CONTROL_PINS
    for pin in enables:
        assert f".{pin}(1'b1)" in v
    for pin in resets:
        assert f".{pin}(1'b0)" in v
    assert ".ADREG(1)" in v and ".BREG(2)" in v and ".OPMODE(opmode)" in v
