"""LUT-cost lookups and errors, calibration JSON reproducibility, one tiny Yosys run."""

import json
import shutil

import numpy as np
import pytest

from filmqnn.hw import lut_calibration as lc
from filmqnn.hw.dsp_packing import best_packing
from filmqnn.hw.lut_costs import MacCost, calibration, mac_cost
from filmqnn.hw.mac_verilog import render_dsp_array, render_lut_array

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")


@pytest.mark.parametrize("family", ["7series", "ultrascale+"])
@pytest.mark.parametrize("impl", ["lut", "dsp"])
@pytest.mark.parametrize("wbits", [4, 8])
def test_lookups_positive(family, impl, wbits):
    for source in ("vivado", "yosys"):
        c = mac_cost(family, impl, wbits, 5, source=source)
        assert isinstance(c, MacCost) and c.lut > 0 and c.ff > 0


def test_default_is_vivado_and_matches_table4_fit():
    c = mac_cost("ultrascale+", "lut", 4, 5)
    assert c == mac_cost("ultrascale+", "lut", 4, 5, source="vivado")
    assert 38 < c.lut < 46  # ~42 LUTs per 4x5 MAC on ZCU102 (Table 4)
    assert 58 < mac_cost("ultrascale+", "lut", 8, 5).lut < 68
    assert calibration()["default_source"] == "vivado"


def test_errors_name_valid_choices():
    with pytest.raises(ValueError, match="ultrascale"):
        mac_cost("virtex2", "lut", 4, 5)
    with pytest.raises(ValueError, match="dsp"):
        mac_cost("7series", "bram", 4, 5)
    with pytest.raises(ValueError, match="w4a5"):
        mac_cost("7series", "lut", 3, 3)
    with pytest.raises(ValueError, match="yosys"):
        mac_cost("7series", "lut", 4, 5, source="quartus")


def test_yosys_fits_reproduce_from_raw_points():
    cal = calibration()["yosys"]
    for fam, impls in cal["fits"].items():
        for impl, keys in impls.items():
            for key, fit in keys.items():
                pts = [
                    p
                    for p in cal["points"]
                    if (p["family"], p["impl"], f"w{p['wbits']}a{p['abits']}") == (fam, impl, key)
                ]
                assert len(pts) == fit["points"] >= 2
                slope, icpt = np.polyfit([p["macs"] for p in pts], [p["lut"] for p in pts], 1)
                assert slope == pytest.approx(fit["lut_per_mac"], abs=1e-3)
                assert icpt == pytest.approx(fit["lut_intercept"], abs=1e-2)
                ff = np.polyfit([p["macs"] for p in pts], [p["ff"] for p in pts], 1)[0]
                assert ff == pytest.approx(fit["ff_per_mac"], abs=1e-3)


def test_vivado_section_reproduces():
    assert calibration()["vivado_implied"] == json.loads(json.dumps(lc.vivado_implied()))
    rows = lc.vivado_implied()["rows"]["ZCU102"]
    assert rows[0]["luts_used"] == round(0.78 * 274080)


def test_parse_stat():
    text = (
        "   Number of cells: 9\n     CARRY4    2\n     FDRE     10\n     LUT2   3\n     LUT6  4\n"
    )
    text += "     DSP48E1  1\n     MUXF7   1\n     INV   2\n"
    assert lc.parse_stat(text) == {"lut": 9, "ff": 10, "carry": 2, "dsp": 1, "muxf": 1}


def test_templates_take_offsets_from_scheme():
    s = best_packing("dsp48e2", 4, 5)
    v = render_dsp_array(s, 1)
    for t in s.weight_terms[1:]:
        assert f"<<< {t.offset})" in v
    for f, r in zip(s.fields, s.read_widths, strict=True):
        assert f"p0[{f.lsb + r - 1}:{f.lsb}]" in v
    assert "DSP48E2" in v and "module mac" in render_lut_array(2, 4, 5)


@needs_yosys
def test_tiny_yosys_run():
    counts = lc.run_yosys(render_lut_array(2, 4, 5), "7series", nodsp=True)
    assert counts["lut"] > 0 and counts["ff"] >= 2 * (4 + 5) and counts["dsp"] == 0
