"""Building blocks of the LUT-cost calibration (scripts/calibrate_luts.py).

Yosys side: run ``synth_xilinx`` on a generated MAC array and read LUT/FF/CARRY counts from
``stat``. Vivado side: the per-MAC LUT cost implied by the paper's Table 4 (least squares over
each board's nine design rows). Both are stored in hw/data/lut_calibration.json.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

YOSYS_FAMILY = {"7series": "xc7", "ultrascale+": "xcup"}


def yosys_script(family: str, nodsp: bool) -> str:
    """The Yosys command sequence used for every calibration point."""
    flags = f"-family {YOSYS_FAMILY[family]} -noiopad -nowidelut -top mac" + (
        " -nodsp" if nodsp else ""
    )
    return f"read_verilog mac.v; synth_xilinx {flags}; tee -q -o stat.txt stat"


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts from Yosys ``stat`` output, summarised as lut / ff / carry / dsp / muxf
    (an ``INV`` cell is a LUT1 on the device and counts as a LUT)."""
    cells = {m[1]: int(m[2]) for m in re.finditer(r"^\s+([A-Z][A-Z0-9_]*)\s+(\d+)\s*$", text, re.M)}
    total = {"lut": 0, "ff": 0, "carry": 0, "dsp": 0, "muxf": 0}
    for name, n in cells.items():
        if re.fullmatch(r"LUT[1-6]|INV", name):
            total["lut"] += n
        elif re.fullmatch(r"FD[A-Z]*", name):
            total["ff"] += n
        elif name.startswith("CARRY"):
            total["carry"] += n
        elif name.startswith("DSP48"):
            total["dsp"] += n
        elif name.startswith("MUXF"):
            total["muxf"] += n
    return total


def yosys_version() -> str:
    """``yosys -V`` output, or raise if Yosys is not installed."""
    exe = shutil.which("yosys")
    if exe is None:
        raise FileNotFoundError("yosys not found on PATH")
    return subprocess.run([exe, "-V"], capture_output=True, text=True, check=True).stdout.strip()


def run_yosys(verilog: str, family: str, nodsp: bool, timeout: float = 300.0) -> dict[str, int]:
    """Synthesize ``verilog`` (top module ``mac``) for ``family``; returns the cell summary."""
    with tempfile.TemporaryDirectory(prefix="filmqnn_yosys_") as tmp:
        Path(tmp, "mac.v").write_text(verilog)
        subprocess.run(
            ["yosys", "-q", "-p", yosys_script(family, nodsp)],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        )
        return parse_stat(Path(tmp, "stat.txt").read_text())


def fit_line(x: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares ``y = slope * x + intercept``; returns (slope, intercept)."""
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(slope), float(intercept)


# --------------------------------------------------------------------------- Vivado (Table 4)

BOARDS = {
    # Device totals: Xilinx DS891 (Zynq UltraScale+ XCZU9EG) and DS190 (Zynq-7000 XC7Z020);
    # the paper quotes 274.1k LUTs / 2520 DSPs and 53.2k LUTs / 220 DSPs (Sec. 4.1).
    "ZCU102": {"family": "ultrascale+", "part": "XCZU9EG", "luts": 274080, "dsps": 2520},
    "PYNQ-Z2": {"family": "7series", "part": "XC7Z020", "luts": 53200, "dsps": 220},
}

# FILM-QNN Table 4: (precision, resource, LUT util, DSP util, W4 ops on LUT, W4 ops on DSP,
# W8 ops on LUT, W8 ops on DSP). Ops per cycle; one MAC = 2 ops.
TABLE4 = {
    "ZCU102": [
        ("100% W4", "LUT", 0.78, 0.01, 10240, 0, 0, 0),
        ("100% W4", "DSP", 0.51, 0.82, 0, 16384, 0, 0),
        ("100% W4", "LUT+DSP", 0.68, 0.78, 2048, 15360, 0, 0),
        ("100% W8", "LUT", 0.76, 0.01, 0, 0, 6656, 0),
        ("100% W8", "DSP", 0.23, 0.82, 0, 0, 0, 8192),
        ("100% W8", "LUT+DSP", 0.65, 0.83, 0, 0, 3072, 8192),
        ("95% W4 + 5% W8", "LUT", 0.76, 0.02, 8192, 0, 1024, 0),
        ("95% W4 + 5% W8", "DSP", 0.54, 0.83, 0, 14336, 0, 1024),
        ("95% W4 + 5% W8", "LUT+DSP", 0.66, 0.83, 0, 16384, 1024, 0),
    ],
    "PYNQ-Z2": [
        ("100% W4", "LUT", 0.81, 0.13, 1728, 0, 0, 0),
        ("100% W4", "DSP", 0.56, 0.95, 0, 1440, 0, 0),
        ("100% W4", "LUT+DSP", 0.77, 0.95, 576, 1440, 0, 0),
        ("100% W8", "LUT", 0.75, 0.13, 0, 0, 1152, 0),
        ("100% W8", "DSP", 0.31, 0.95, 0, 0, 0, 720),
        ("100% W8", "LUT+DSP", 0.75, 0.95, 0, 0, 576, 720),
        ("95% W4 + 5% W8", "LUT", 0.81, 0.13, 1584, 0, 144, 0),
        ("95% W4 + 5% W8", "DSP", 0.49, 0.95, 0, 1152, 0, 144),
        ("95% W4 + 5% W8", "LUT+DSP", 0.78, 0.95, 720, 1152, 0, 144),
    ],
}
# Fixed logic inside Table 4's utilisation, which the zero-intercept fit folds into the per-MAC
# costs (so the resource model must not charge it again): the mixed LUT+DSP row is the design
# of Tables 5 / 6 (same LUT share); its DSPs beyond the MAC arrays (paper packing: 4 W4A5 or 2
# W8A5 MACs per DSP) are post-processing, and Eq. 15 loads inputs and weights over their own
# ports (p_in, p_wgt >= 1 each), so at least 2 AXI ports.
TABLE56_DSPS = {"ZCU102": 2092, "PYNQ-Z2": 208}
TABLE4_AXI_PORTS = 2
# Order of the unknowns in the Vivado fit: (impl, precision key).
VIVADO_UNKNOWNS = (("lut", "w4a5"), ("dsp", "w4a5"), ("lut", "w8a5"), ("dsp", "w8a5"))


def vivado_implied() -> dict[str, object]:
    """Per-MAC LUT costs implied by Table 4, per board: least squares over its nine rows.

    LUTs_used = util * device_LUTs = sum_k MACs_k * cost_k (no intercept: an intercept fit
    comes out negative on ZCU102, so the fixed overhead is folded into the per-MAC costs).
    """
    out: dict[str, object] = {
        "source": "FILM-QNN (FPGA'22) Table 4, Vivado implementations; one MAC = 2 ops",
        "model": "util_LUT * device_LUTs = sum over (impl, precision) of MACs * LUT_per_MAC",
        "boards": BOARDS,
        "rows": {},
        "costs": {fam: {"lut": {}, "dsp": {}} for fam in YOSYS_FAMILY},
        "gross_single_resource": {},
        "included_fixed_logic": {},
    }
    for board, rows in TABLE4.items():
        dev = BOARDS[board]
        a = np.array([[r[4] / 2, r[5] / 2, r[6] / 2, r[7] / 2] for r in rows])
        b = np.array([r[2] * dev["luts"] for r in rows])
        cost, *_ = np.linalg.lstsq(a, b, rcond=None)
        pred = a @ cost
        out["rows"][board] = [
            {
                "precision": r[0],
                "resource": r[1],
                "lut_util": r[2],
                "dsp_util": r[3],
                "macs": {
                    "lut_w4a5": r[4] // 2,
                    "dsp_w4a5": r[5] // 2,
                    "lut_w8a5": r[6] // 2,
                    "dsp_w8a5": r[7] // 2,
                },
                "luts_used": round(float(bb)),
                "arithmetic": f"{r[2]} * {dev['luts']} = {bb:.0f} LUTs",
                "fit_predicted_util": round(float(p) / dev["luts"], 4),
            }
            for r, bb, p in zip(rows, b, pred, strict=True)
        ]
        fam = dev["family"]
        for (impl, key), c in zip(VIVADO_UNKNOWNS, cost, strict=True):
            out["costs"][fam][impl][key] = {
                "lut_per_mac": round(float(c), 3),
                "board": board,
                "arithmetic": "least squares over the 9 rows of Table 4 for " + board,
            }
        gross = {}
        for r in rows:
            if r[1] == "LUT+DSP" or r[0].startswith("95%"):
                continue
            macs = sum(r[4:8]) / 2
            impl = "lut" if r[1] == "LUT" else "dsp"
            key = "w4a5" if "W4" in r[0] else "w8a5"
            gross[f"{impl}_{key}"] = {
                "lut_per_mac": round(r[2] * dev["luts"] / macs, 3),
                "arithmetic": f"{r[2]} * {dev['luts']} / ({int(2 * macs)} / 2) "
                f"= {r[2] * dev['luts'] / macs:.2f} (fixed overhead included)",
            }
        out["gross_single_resource"][board] = gross
        mixed = next(r for r in rows if r[0].startswith("95%") and r[1] == "LUT+DSP")
        mac_dsps = mixed[5] // 2 // 4 + mixed[7] // 2 // 2
        out["included_fixed_logic"][fam] = {
            "board": board,
            "axi_ports": TABLE4_AXI_PORTS,
            "post_dsps": TABLE56_DSPS[board] - mac_dsps,
            "arithmetic": f"Tables 5/6: {TABLE56_DSPS[board]} DSPs - ({mixed[5]}/2/4 + "
            f"{mixed[7]}/2/2 = {mac_dsps} MAC DSPs) of the mixed LUT+DSP row; AXI ports: "
            "p_in + p_wgt of Eq. 15",
        }
    return out
