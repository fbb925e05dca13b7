"""Calibrate the LUT/FF cost per MAC with Yosys and write hw/data/lut_calibration.json.

Usage: .venv/bin/python scripts/calibrate_luts.py [--quick] [--out PATH]

For each family (7series -> xc7, ultrascale+ -> xcup), synthesizes generated MAC arrays at
several sizes: LUT multipliers (``-nodsp``) and packed DSPs (the best general packing
scheme of that family's DSP), fits LUTs and FFs against the number of MACs, adds the
Vivado-implied costs from the paper's Table 4, and writes the JSON atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from filmqnn.hw.devices import FAMILIES as FAMILY_DSP
from filmqnn.hw.dsp_packing import best_packing
from filmqnn.hw.lut_calibration import (
    YOSYS_FAMILY,
    fit_line,
    run_yosys,
    vivado_implied,
    yosys_script,
    yosys_version,
)
from filmqnn.hw.mac_verilog import render_dsp_array, render_lut_array

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/filmqnn/hw/data/lut_calibration.json"
ACC_WIDTH = 24
PRECISIONS = [(4, 5), (8, 5)]


def plan(quick: bool) -> list[dict]:
    """Every synthesis point: family, impl, precision, size."""
    lanes = [4, 8] if quick else [4, 8, 16, 32]
    dsps = [2, 4] if quick else [2, 4, 8, 16]
    points = []
    for family in YOSYS_FAMILY:
        for w, a in PRECISIONS:
            for n in lanes:
                points.append({"family": family, "impl": "lut", "wbits": w, "abits": a, "size": n})
        for w, a in PRECISIONS:
            for n in dsps:
                points.append({"family": family, "impl": "dsp", "wbits": w, "abits": a, "size": n})
    return points


def synth(point: dict) -> dict:
    """Render and synthesize one point; returns it with counts and the MAC count."""
    if point["impl"] == "lut":
        verilog = render_lut_array(point["size"], point["wbits"], point["abits"], False, ACC_WIDTH)
        macs = point["size"]
    else:
        scheme = best_packing(
            FAMILY_DSP[point["family"]], point["wbits"], point["abits"], general_only=True
        )
        verilog = render_dsp_array(scheme, point["size"], ACC_WIDTH)
        macs = point["size"] * scheme.products_per_dsp
        point = {**point, "scheme": scheme.name, "products_per_dsp": scheme.products_per_dsp}
    counts = run_yosys(verilog, point["family"], nodsp=point["impl"] == "lut")
    return {**point, "macs": macs, **counts}


def fits(points: list[dict]) -> dict:
    """Least-squares LUT and FF lines against MACs per (family, impl, precision)."""
    out: dict = {fam: {"lut": {}, "dsp": {}} for fam in YOSYS_FAMILY}
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        groups.setdefault((p["family"], p["impl"], f"w{p['wbits']}a{p['abits']}"), []).append(p)
    for (fam, impl, key), pts in groups.items():
        x = [p["macs"] for p in pts]
        lut_s, lut_i = fit_line(x, [p["lut"] for p in pts])
        ff_s, ff_i = fit_line(x, [p["ff"] for p in pts])
        car_s, _ = fit_line(x, [p["carry"] for p in pts])
        out[fam][impl][key] = {
            "lut_per_mac": round(lut_s, 3),
            "lut_intercept": round(lut_i, 2),
            "ff_per_mac": round(ff_s, 3),
            "ff_intercept": round(ff_i, 2),
            "carry_per_mac": round(car_s, 3) + 0.0,  # no "-0.0" in the JSON
            "points": len(pts),
        }
    return out


def ratios(yosys_fits: dict, vivado: dict) -> dict:
    """Vivado-implied / Yosys LUT-per-MAC, where both exist."""
    out: dict = {}
    for fam, impls in vivado["costs"].items():
        for impl, keys in impls.items():
            for key, v in keys.items():
                y = yosys_fits[fam][impl].get(key)
                if y and y["lut_per_mac"] > 0:
                    out.setdefault(fam, {}).setdefault(impl, {})[key] = round(
                        v["lut_per_mac"] / y["lut_per_mac"], 4
                    )
    return out


def write_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer, smaller arrays (smoke test)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    version = yosys_version()
    t0 = time.time()
    points = []
    for p in plan(args.quick):
        r = synth(p)
        points.append(r)
        print(
            f"[{time.time() - t0:6.1f}s] {r['family']:12s} {r['impl']} W{r['wbits']}A{r['abits']}"
            f" size={r['size']:3d} macs={r['macs']:3d} lut={r['lut']:5d} ff={r['ff']:5d}",
            file=sys.stderr,
        )
    yfits = fits(points)
    viv = vivado_implied()
    doc = {
        "schema": 1,
        "generated_by": "scripts/calibrate_luts.py" + (" --quick" if args.quick else ""),
        "default_source": "vivado",
        "yosys": {
            "version": version,
            "commands": {
                fam: {
                    impl: f'yosys -q -p "{yosys_script(fam, impl == "lut")}"'
                    for impl in ("lut", "dsp")
                }
                for fam in YOSYS_FAMILY
            },
            "accumulator_bits": ACC_WIDTH,
            "activations": "unsigned (post-ReLU); weights signed",
            "points": points,
            "fits": yfits,
        },
        "vivado_implied": viv,
        "ratio_vivado_over_yosys": ratios(yfits, viv),
        "runtime_s": round(time.time() - t0, 1),
    }
    write_atomic(args.out, doc)
    print(f"wrote {args.out} ({len(points)} points, {doc['runtime_s']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
