import json

import pytest

from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import InfeasibleError, explore
from filmqnn.hw.layers import model_layers


@pytest.fixture(scope="module")
def r18():
    return model_layers("resnet18")


def test_best_point_respects_limits(r18):
    b = load_board("pynq-z2")
    res = explore(r18, b, limits={"lut": 0.7, "bram18k": 0.5})
    tot = res.resources.totals()
    assert tot["lut"] <= 0.7 * b.lut and tot["bram18k"] <= 0.5 * b.bram18k
    assert tot["dsp"] <= b.dsp
    assert res.best.Tm8 == max(1, round(0.05 * res.best.Tm))
    assert res.performance["fps"] > 0 and res.feasible <= res.evaluated
    for p in res.pareto:
        assert p["lut"] <= res.limits["lut"] and p["fps"] <= res.performance["fps"] + 1e-9


def test_uniform_modes(r18):
    b = load_board("pynq-z2")
    w8 = explore(r18, b, mode="w8")
    w4 = explore(r18, b, mode="w4")
    mixed = explore(r18, b, mode="mixed")
    assert w8.best.Tm8 == w8.best.Tm and w4.best.Tm8 == 0
    assert w8.performance["fps"] < mixed.performance["fps"]
    assert w8.performance["fps"] < w4.performance["fps"]


def test_tighter_limits_never_faster(r18):
    b = load_board("zcu102")
    loose = explore(r18, b)
    tight = explore(r18, b, limits={"lut": 0.4})
    assert tight.performance["fps"] <= loose.performance["fps"]
    assert tight.resources.lut <= 0.4 * b.lut


def test_infeasible_and_bad_arguments(r18, tmp_path):
    tiny = load_board("pynq-z2").to_dict()
    tiny.update(name="tiny", lut=3000, ff=6000, dsp=4, bram18k=4)
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(tiny))
    with pytest.raises(InfeasibleError, match="no design point fits tiny"):
        explore(r18, load_board(str(p)))
    b = load_board("pynq-z2")
    with pytest.raises(ValueError, match="ratio"):
        explore(r18, b, ratio=1.5)
    with pytest.raises(ValueError, match="weights"):
        explore(r18, b, mode="w2")
    with pytest.raises(ValueError, match="unknown limit"):
        explore(r18, b, limits={"uram": 0.5})


def test_search_is_exact_and_trims_the_winner(r18):
    """The bound-ordered search returns the same best as evaluating every fitting design, the
    ceiling is above it, and the winner keeps no ports or lanes it does not need."""
    import numpy as np

    from filmqnn.hw import dse
    from filmqnn.hw.design import EngineOptions, design_arrays
    from filmqnn.hw.performance import network_cycles_vec

    b = load_board("pynq-z2")
    res = explore(r18, b)
    assert res.fps_ceiling >= res.performance["fps"]
    cyc = network_cycles_vec(r18, design_arrays(res.best, b), b, 100.0, EngineOptions())[0]
    # the search ranks by the closed form; the winner's figure walks its steps
    assert 100e6 / cyc == pytest.approx(res.performance["fps"], rel=0.02)
    everything = dse._exact_cycles
    try:  # no skipping: evaluate every fitting design
        dse._exact_cycles = lambda L, D, bd, c, o, keep: everything(L, D, bd, c, o, 10**9)
        full = explore(r18, b)
    finally:
        dse._exact_cycles = everything
    assert full.performance["fps"] == pytest.approx(res.performance["fps"])
    fewer = [np.inf]
    if res.best.ports > 1:
        from dataclasses import replace
        d = replace(res.best, ports=res.best.ports - 1)
        fewer = network_cycles_vec(r18, design_arrays(d, b), b, 100.0, EngineOptions())
    assert float(fewer[0]) > cyc


def test_trim_keeps_no_lane_the_winner_does_not_need(r18):
    """Every lane count of the grid below the winner's (with the DSPs re-split) is slower."""
    import numpy as np

    from filmqnn.hw import dse
    from filmqnn.hw.design import EngineOptions, design_arrays
    from filmqnn.hw.performance import network_cycles_vec

    b = load_board("zcu102")
    res = explore(r18, b)
    d = res.best
    cyc = network_cycles_vec(r18, design_arrays(d, b), b, 150.0, EngineOptions())[0]
    lanes = np.unique(np.maximum(d.G, np.round(np.array(dse.POST_FRACTIONS) * d.Tm)))
    costs = dse.mac_costs(b, any(ly.signed_in for ly in r18 if not ly.first))
    for lane in lanes[lanes < d.post].astype(int):
        D = design_arrays(d, b)
        D["post"] = np.array([lane])
        dse._split(D, b, dict(dse.DEFAULT_LIMITS), costs)
        assert network_cycles_vec(r18, D, b, 150.0, EngineOptions())[0] > cyc


def test_accumulators_on_lutram_where_brams_are_scarce(r18, monkeypatch):
    """KV260 has 288 BRAM18Ks for 1,248 DSPs: explore puts the accumulators on LUTRAM (the
    BRAMs go to the store) and beats the search without that choice; the resources and the
    Pareto points say so. On PYNQ-Z2, whose designs sit at the LUT limit, they stay on BRAM."""
    from filmqnn.hw import dse

    kv = load_board("kv260")
    res = explore(r18, kv)
    assert res.best.acc_lutram and res.resources.breakdown["buffers"]["lut"] > 0
    assert any(p["acc_lutram"] for p in res.pareto)
    assert not explore(r18, load_board("pynq-z2")).best.acc_lutram
    monkeypatch.setattr(dse, "ACC_LUTRAM_GRID", (False,))
    on_bram = explore(r18, kv)
    assert not on_bram.best.acc_lutram
    assert on_bram.performance["fps"] < res.performance["fps"]


def test_im2col_raw_tile_on_lutram_and_store_banks(monkeypatch):
    """KV260 ResNet-18 (every layer mixed) keeps the on-chip im2col with its raw tile banks on
    LUTRAM, and PYNQ-Z2 MobileNet-V2's band rings want two store banks per port; each beats
    every design without that choice. A winner keeps no LUTRAM that does not pay (ZCU102
    ResNet-18 keeps BRAM)."""
    from filmqnn.hw import dse
    from filmqnn.hw.design import IMPLEMENTED

    cases = (
        (model_layers("resnet18", 224, False), load_board("kv260"), "RAW_LUTRAM_GRID", (False,)),
        (model_layers("mobilenet_v2", 224, False), load_board("pynq-z2"), "STORE_BANKS_GRID",
         (1,)),
    )
    for L, b, grid, only in cases:
        res = explore(L, b, opts=IMPLEMENTED)
        if grid == "RAW_LUTRAM_GRID":
            assert res.best.raw_lutram and res.options.im2col_onchip
            assert res.resources.breakdown["im2col"]["bram18k"] == 0
        else:
            assert res.best.store_banks == 2
        monkeypatch.setattr(dse, grid, only)
        assert explore(L, b, opts=IMPLEMENTED).performance["fps"] < res.performance["fps"]
        monkeypatch.undo()
    zcu = explore(model_layers("resnet18", 224, False), load_board("zcu102"), opts=IMPLEMENTED)
    assert not zcu.best.acc_lutram and not zcu.best.raw_lutram
