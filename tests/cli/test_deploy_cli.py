"""CLI contract of export / run / verify (JSON keys are used by scripts: keep them)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.lower import lower, save_artifact
from filmqnn.models import build_model
from filmqnn.quant import calibrate, convert

runner = CliRunner()
DATA = ["--data", "synthetic", "--limit-train", "64", "--limit-test", "32", "--batch-size", "32"]


def _json(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deploy_cli")
    fp32 = _json(["train", "--model", "tiny_cnn", "--epochs", "1", "--out", str(tmp / "f"),
                  "--json", *DATA])
    q = _json(["quantize", "--checkpoint", fp32["checkpoint"], "--epochs", "1", "--ratio",
               "0.25", "--tm", "8", "--out", str(tmp / "q"), "--json", *DATA])
    return q


@pytest.mark.parametrize("reorder", ["--reorder", "--no-reorder"])
def test_export_run_verify(checkpoint, tmp_path, reorder):
    out = tmp_path / "artifact"
    exp = _json(["export", "--checkpoint", checkpoint["checkpoint"], "--out", str(out),
                 "--tiling", "tn=4,g=6,axi=64", reorder, "--json"])
    assert exp["tiling"] == {"tm": 8, "tm8": 2, "tn": 4, "g": 6, "axi_bits": 64}
    assert exp["total_bytes"]["packed"] < exp["total_bytes"]["byte_aligned"]
    assert (out / "manifest.json").is_file()
    run = _json(["run", "--artifact", str(out), "--data", "synthetic", "--limit-test", "32",
                 "--json"])
    assert run["samples"] == 32 and 0.0 <= run["accuracy"] <= 1.0
    ver = _json(["verify", "--checkpoint", checkpoint["checkpoint"], "--artifact", str(out),
                 "--samples", "32", "--json"])
    assert ver["compared"] == 32 and ver["mismatches"] == 0


def test_run_accuracy_is_close_to_fake_quant(checkpoint, tmp_path):
    out = tmp_path / "a"
    _json(["export", "--checkpoint", checkpoint["checkpoint"], "--out", str(out), "--json"])
    run = _json(["run", "--artifact", str(out), "--data", "synthetic", "--limit-test", "32",
                 "--json"])
    assert run["accuracy"] == pytest.approx(checkpoint["test"]["accuracy"], abs=3 / 32)


def test_clear_errors(checkpoint, tmp_path):
    ckpt = checkpoint["checkpoint"]
    bad = runner.invoke(app, ["export", "--checkpoint", ckpt, "--out", str(tmp_path / "x"),
                              "--tiling", "tm=8,tm8=9"])
    assert bad.exit_code == 2 and "tm8 must lie in [0, tm]" in bad.output
    bad = runner.invoke(app, ["export", "--checkpoint", ckpt, "--out", str(tmp_path / "y"),
                              "--tiling", "tm=8,tm8=1"])  # fewer 8-bit slots than filters
    assert bad.exit_code == 2 and "--tm 8" in bad.output
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    bad = runner.invoke(app, ["export", "--checkpoint", ckpt, "--out", str(foreign)])
    assert bad.exit_code == 2 and "not a filmqnn artifact" in bad.output
    assert (foreign / "notes.txt").read_text() == "keep me"
    bad = runner.invoke(app, ["run", "--artifact", str(tmp_path / "none"), "--data", "synthetic"])
    assert bad.exit_code == 2 and "filmqnn export" in bad.output
    out = tmp_path / "a"
    _json(["export", "--checkpoint", ckpt, "--out", str(out), "--json"])
    victim = next((out / "nodes").glob("*.bias.bin"))
    victim.write_bytes(victim.read_bytes()[:-1])
    bad = runner.invoke(app, ["run", "--artifact", str(out), "--data", "synthetic"])
    assert bad.exit_code == 2 and "truncated" in bad.output


def test_verify_refuses_an_artifact_of_another_model(checkpoint, tmp_path):
    q = convert(build_model("resnet18_small", num_classes=10, in_channels=1, input_size=28))
    calibrate(q, [torch.randn(2, 1, 28, 28)])
    save_artifact(lower(q, (1, 28, 28)), tmp_path / "other")
    bad = runner.invoke(app, ["verify", "--checkpoint", checkpoint["checkpoint"], "--artifact",
                              str(tmp_path / "other"), "--samples", "4"])
    assert bad.exit_code == 2 and "exported from another model" in bad.output
