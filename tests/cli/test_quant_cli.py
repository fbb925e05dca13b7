"""CLI contract of the quantization commands (JSON keys are used by scripts: keep them)."""

import json

import pytest
from typer.testing import CliRunner

from filmqnn.cli.main import app

runner = CliRunner()


def _json(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("model,tm,expect_first", [("resnet18", 32, 64), ("tiny_cnn", None, 8)])
def test_assign_json_contract(model, tm, expect_first):
    args = ["assign", "--model", model, "--ratio", "0.05", "--json"]
    if tm:
        args += ["--tm", str(tm)]
    if model == "tiny_cnn":
        args += ["--num-classes", "10", "--in-channels", "1"]
    out = _json(args)
    assert set(out) >= {"layers", "ratio_8bit"}
    assert all(set(la) == {"name", "kind", "filters", "filters_8bit"} for la in out["layers"])
    assert out["layers"][0]["filters_8bit"] == expect_first  # first conv all 8-bit
    assert 0 < out["ratio_8bit"] < 0.2
    if model == "resnet18":
        assert out["layers"][1] == {"name": "layer1.0.conv1", "kind": "conv", "filters": 64,
                                    "filters_8bit": 4}  # Tm8 = round(0.05*32) = 2 per tile


def test_assign_mobilenet_kinds():
    out = _json(["assign", "--model", "mobilenet_v2", "--ratio", "0.05", "--json"])
    kinds = {la["kind"] for la in out["layers"]}
    assert kinds == {"conv", "depthwise", "fc"}


def test_unknown_model_and_bad_ratio_are_clear_errors():
    result = runner.invoke(app, ["assign", "--model", "vgg16", "--json"])
    assert result.exit_code == 2 and "valid names" in result.output
    result = runner.invoke(app, ["assign", "--model", "tiny_cnn", "--ratio", "1.5"])
    assert result.exit_code == 2 and "[0, 1]" in result.output


def test_train_quantize_evaluate_round_trip(tmp_path):
    data = ["--data", "synthetic", "--limit-train", "96", "--limit-test", "32",
            "--batch-size", "32"]
    fp32 = _json(["train", "--model", "tiny_cnn", "--epochs", "1", "--out", str(tmp_path / "f"),
                  "--json", *data])
    assert set(fp32) >= {"checkpoint", "test", "history"}
    q = _json(["quantize", "--checkpoint", fp32["checkpoint"], "--epochs", "1", "--ratio", "0.25",
               "--out", str(tmp_path / "q"), "--json", *data])
    assert set(q) >= {"checkpoint", "assignment", "test", "ratio_8bit"}
    ev = _json(["evaluate", "--checkpoint", q["checkpoint"], "--limit-test", "32", "--json"])
    assert ev["kind"] == "quant" and ev["accuracy"] == pytest.approx(q["test"]["accuracy"])
    result = runner.invoke(app, ["quantize", "--checkpoint", str(tmp_path / "missing.pt")])
    assert result.exit_code == 2 and "filmqnn train" in result.output


def test_compare_and_study_write_tables_and_plot(tmp_path):
    data = ["--data", "synthetic", "--limit-train", "64", "--limit-test", "32"]
    out = _json(["compare", "--model", "tiny_cnn", "--epochs", "1", "--qat-epochs", "0",
                 "--out", str(tmp_path), "--json", *data])
    labels = [r["label"] for r in out["rows"]]
    assert labels == ["FP32", "W8A5", "W4A5", "mixed R=5% A5"]
    assert (tmp_path / "compare.md").is_file()
    study = _json(["study", "--checkpoint", str(tmp_path / "fp32" / "fp32.pt"), "--ratios",
                   "0,100", "--act-bits", "4,5", "--mode", "ptq", "--out",
                   str(tmp_path / "s"), "--json", *data])
    assert len(study["rows"]) == 4
    assert (tmp_path / "s" / "study.png").stat().st_size > 1000
    assert "#### PTQ, A4" in (tmp_path / "s" / "study.md").read_text()


def test_study_sweeps_low_bits_criteria_modes_and_seeds_and_resumes(tmp_path):
    data = ["--data", "synthetic", "--limit-train", "64", "--limit-test", "32",
            "--batch-size", "32"]
    fp32 = _json(["train", "--model", "tiny_cnn", "--epochs", "1", "--out", str(tmp_path / "f"),
                  "--json", *data])
    args = ["study", "--checkpoint", fp32["checkpoint"], "--ratios", "0,25,100", "--act-bits",
            "5", "--low-bits", "3,4", "--criteria", "weight-error,random", "--seeds", "2",
            "--mode", "ptq,qat", "--qat-low-bits", "3", "--qat-epochs", "1",
            "--out", str(tmp_path / "s"), "--json", *data]
    out = _json(args)
    rows = out["rows"]
    # per mode: R=0 per low bits, R=25 per low bits and criterion, one shared R=100; x 2 seeds
    ptq = 2 * (2 + 2 * 2 + 1)
    qat = 2 * (1 + 2 + 1)
    assert len(rows) == ptq + qat
    assert {r["seed"] for r in rows} == {0, 1}
    assert {r["low_bits"] for r in rows if r["mode"] == "qat"} == {3, 8}
    assert {r["criterion"] for r in rows if r["ratio"] in (0.0, 1.0)} == {"-"}
    summary = {(s["mode"], s["low_bits"], s["criterion"], s["ratio"]): s for s in out["summary"]}
    point = summary[("ptq", 3, "random", 0.25)]
    accs = [r["accuracy"] for r in rows if (r["mode"], r["low_bits"], r["criterion"],
                                            r["ratio"]) == ("ptq", 3, "random", 0.25)]
    assert point["seeds"] == 2 and point["mean"] == pytest.approx(sum(accs) / 2)
    md = (tmp_path / "s" / "study.md").read_text()
    assert "#### PTQ, A5" in md and "#### QAT, A5" in md and "| W3/W8 | random |" in md
    assert "| PTQ A5 | W4/W8 | 25% |" in md  # the paired difference of weight-error to random
    assert (tmp_path / "s" / "study.png").stat().st_size > 1000
    on_disk = json.loads((tmp_path / "s" / "study.json").read_text())
    assert on_disk["rows"] == rows
    # resume: finished cells are read back, not rerun; a missing one is rerun alone
    cells = sorted((tmp_path / "s" / "cells").iterdir())
    assert len(cells) == len(rows)
    stamps = {c.name: (c / "summary.json").stat().st_mtime_ns for c in cells}
    (cells[0] / "summary.json").unlink()
    again = _json(args)
    assert again["rows"] == rows
    changed = [c.name for c in cells if (c / "summary.json").stat().st_mtime_ns != stamps[c.name]]
    assert changed == [cells[0].name]


def test_study_refuses_unknown_criterion(tmp_path):
    result = runner.invoke(app, ["study", "--checkpoint", str(tmp_path / "x.pt"), "--criteria",
                                 "output-error,psychic"])
    assert result.exit_code == 2 and "psychic" in result.output
