import json
import subprocess
import sys
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.hw import dse
from filmqnn.hw.design import IMPLEMENTED
from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore
from filmqnn.hw.layers import model_layers
from filmqnn.hw.performance import host_input_bits

runner = CliRunner()


def test_explore_json_contract(tmp_path):
    out = tmp_path / "rep"
    r = runner.invoke(app, ["explore", "--model", "mobilenet_v2", "--board", "pynq-z2",
                            "--modes", "all", "--json", "--out", str(out)])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    keys = {"lut", "ff", "dsp", "bram18k"}
    assert s["fps"] > 0 and s["clock_mhz"] == 100.0
    assert set(s["resources"]) == keys and set(s["limits"]) == keys
    assert all(s["resources"][k] <= s["limits"][k] for k in keys)
    assert {"Tm", "Tm8", "Tn", "Tr", "Tc", "G", "ports", "buf", "store"} <= set(s["design"])
    assert s["fps_ceiling"] >= s["fps"]
    assert all({"name", "cycles", "bound"} <= set(ly) for ly in s["layers"])
    # the design's feature-map store keeps some tensors on chip (PYNQ-Z2 MobileNet-V2)
    assert s["design"]["store"] > 0
    assert any("output" in ly["on_chip"] for ly in s["layers"])
    assert any(ly["fused"] for ly in s["layers"])  # band rings between some layers
    report = (out / "report.md").read_text()
    assert "| on chip (ring" in report and "input ring" in report
    for f in ("report.md", "roofline.png", "pareto.png", "utilisation.png"):
        assert (out / f).stat().st_size > 0


def test_explore_options_and_table():
    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "pynq-z2",
                            "--weights", "w8", "--clock-mhz", "120", "--json"])
    s = json.loads(r.stdout)
    assert s["clock_mhz"] == 120.0 and s["design"]["Tm8"] == s["design"]["Tm"]
    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "pynq-z2"])
    assert r.exit_code == 0 and "FPS modelled" in r.stdout


def test_explore_engine_mode_flags():
    args = ["explore", "--model", "mobilenet_v2", "--board", "pynq-z2", "--modes", "all", "--json"]
    new = json.loads(runner.invoke(app, args).stdout)
    modes = ("dw_taps", "axi_outstanding", "im2col_onchip", "pipe_rewind", "fuse_stem_pool",
             "multi_chunk", "input_reuse", "fm_store", "band_fusion")
    # every field of EngineOptions is a switch: repeated or comma-separated
    old = json.loads(runner.invoke(app, [*args, "--off", "dw_taps,axi_outstanding",
                                         *[f"--off={m}" for m in modes[2:]]]).stdout)
    assert all(new["engine"][m] for m in modes)
    assert not any(old["engine"][m] for m in modes)
    assert old["design"]["store"] == 0 and not any(ly["on_chip"] for ly in old["layers"])
    assert not any(ly["fused"] for ly in old["layers"])
    assert old["fps"] < new["fps"]


def test_explore_chooses_the_im2col_placement(monkeypatch):
    """ZCU104 ResNet-18 (every layer mixed): the host-unrolled first conv makes the engine
    faster (the on-chip unit's BRAMs go to the store), but the host writes 14.5 times the
    input bits to DDR for it; explore weighs that write and keeps the on-chip unit. Without
    the write it picks the host placement, within 1 % of a search that has only that one,
    and says so in the JSON."""
    b = load_board("zcu104")
    L = model_layers("resnet18", 224, False)
    chip = explore(L, b, opts=IMPLEMENTED, choose_im2col=False)
    host = explore(L, b, opts=replace(IMPLEMENTED, im2col_onchip=False))
    assert chip.performance["fps"] < host.performance["fps"]
    assert host_input_bits(L, IMPLEMENTED) == 3 * 230 * 230 * 8  # the padded raw map
    assert host_input_bits(L, host.options) == 2 * 147 * 112 * 112 * 5  # two 5-bit planes
    kept = explore(L, b, opts=IMPLEMENTED)
    assert kept.options.im2col_onchip and kept.performance["fps"] == chip.performance["fps"]
    monkeypatch.setattr(dse, "host_input_bits", lambda layers, opts: 0)
    picked = explore(L, b, opts=IMPLEMENTED)
    assert not picked.options.im2col_onchip
    assert picked.performance["fps"] == pytest.approx(host.performance["fps"], rel=0.01)
    assert any(not p["im2col_onchip"] for p in picked.pareto)
    assert any("unrolled by the host" in n for n in picked.notes)
    args = ["explore", "--model", "resnet18", "--board", "zcu104", "--no-first-last-8bit",
            "--json"]
    out = json.loads(runner.invoke(app, args).stdout)
    assert out["engine"]["im2col_onchip"] is False and not out["modes"]["im2col_onchip"]["on"]


def test_explore_first_last_precision():
    args = ["explore", "--model", "resnet18", "--board", "pynq-z2", "--modes", "all", "--json"]
    eight = json.loads(runner.invoke(app, args).stdout)
    mixed = json.loads(runner.invoke(app, [*args, "--no-first-last-8bit"]).stdout)
    # the first conv's 8-bit filters cost PE4 two rows each: mixed filters run faster
    assert mixed["layers"][0]["cycles"] < eight["layers"][0]["cycles"]
    assert mixed["fps"] > eight["fps"]


def test_explore_errors():
    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "nope", "--json"])
    assert r.exit_code != 0 and "known boards" in r.output and "zcu102" in r.output
    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "zcu102",
                            "--ratio", "1.2"])
    assert r.exit_code != 0 and "(0, 1)" in r.output
    r = runner.invoke(app, ["explore", "--model", "vgg", "--board", "zcu102"])
    assert r.exit_code != 0 and "unknown model" in r.output
    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "pynq-z2",
                            "--lut-limit", "0.02"])
    assert r.exit_code != 0 and "cannot fit" in r.output


def test_explore_implemented_option_set():
    """The default option set holds exactly the kernel's modes (on PYNQ-Z2 the on-chip
    im2col beats the host's), and its design is one the kernel takes; the --no-* switches
    belong to --modes all."""
    from filmqnn.hw.design import KERNEL_MODES, kernel_takes

    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "pynq-z2", "--json"])
    s = json.loads(r.stdout)
    assert s["option_set"] == "implemented"
    assert {k for k, v in s["modes"].items() if v["on"]} == set(KERNEL_MODES)
    assert all(v["implemented"] == (k in KERNEL_MODES) for k, v in s["modes"].items())
    d = s["design"]
    assert kernel_takes(d["Tm"], d["Tm8"], d["Tc"], d["G"], 64)
    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "zcu102",
                            "--off", "im2col_onchip", "--json"])
    s = json.loads(r.stdout)  # a kernel mode switched off: still the implemented set
    assert s["option_set"] == "implemented" and s["engine"]["im2col_onchip"] is False
    assert {k for k, v in s["modes"].items() if v["on"]} == set(KERNEL_MODES) - {
        "im2col_onchip"}
    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "zcu102",
                            "--off", "layer_queue"])
    assert r.exit_code != 0 and "--modes all" in r.output
    r = runner.invoke(app, ["explore", "--model", "resnet18", "--board", "zcu102",
                            "--modes", "all", "--off", "help"])
    assert r.exit_code != 0 and "split8" in r.output and "band_fusion" in r.output


def test_boards_command():
    r = runner.invoke(app, ["boards", "--json"])
    names = {b["name"] for b in json.loads(r.stdout)["boards"]}
    assert {"pynq-z2", "zcu102", "kv260"} <= names
    r = runner.invoke(app, ["boards"])
    assert r.exit_code == 0 and "zcu102" in r.stdout


def test_explore_runs_without_torch():
    """`filmqnn explore` (built-in model, shipped layer table) never imports torch, so it
    starts fast; any command that is not a hardware one loads every module."""
    args = ["explore", "--model", "resnet18", "--board", "pynq-z2", "--json"]
    code = (
        "import sys; from filmqnn.cli.main import load_app; "
        f"load_app({args!r})({args!r}, standalone_mode=False); "
        "assert 'torch' not in sys.modules, 'torch was imported'; "
        "load_app(['train']); assert 'torch' in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["fps"] > 0
