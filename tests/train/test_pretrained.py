"""`--pretrained PATH` on train, quantize and compare: matching, mismatched and corrupt files."""

import json

import pytest
import torch
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.models import ModelError, build_model
from filmqnn.models.registry import load_state_dict_file
from filmqnn.quant.checkpoint import load_checkpoint

torch.set_num_threads(1)
runner = CliRunner()
DATA = ["--data", "synthetic", "--limit-train", "64", "--limit-test", "32", "--batch-size", "32",
        "--device", "cpu", "--json"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A matching tiny_cnn state dict, one for 5 classes, one of another model, a corrupt one."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(1)
    good = build_model("tiny_cnn", num_classes=10, in_channels=1, input_size=28)
    torch.save(good.state_dict(), d / "good.pth")
    torch.save(build_model("tiny_cnn", 5, 1, 28).state_dict(), d / "classes5.pth")
    torch.save(build_model("resnet18_small", 10, 1, 28).state_dict(), d / "resnet.pth")
    (d / "corrupt.pth").write_bytes((d / "good.pth").read_bytes()[:300])  # truncated download
    return d, good.state_dict()


def _run(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_matching_file_starts_train_quantize_and_compare(weights, tmp_path):
    d, state = weights
    f = _run(["train", "--model", "tiny_cnn", "--epochs", "1", "--lr", "0", "--weight-decay", "0",
              "--pretrained", str(d / "good.pth"), "--out", str(tmp_path / "f"), *DATA])
    trained = load_checkpoint(f["checkpoint"], kind="fp32")["model_state"]
    key = "features.0.0.weight"
    assert torch.equal(trained[key], state[key])  # lr 0: still the file's weights
    q = _run(["quantize", "--pretrained", str(d / "good.pth"), "--model", "tiny_cnn", "--mode",
              "ptq", "--out", str(tmp_path / "q"), *DATA])
    imported = load_checkpoint(tmp_path / "q" / "fp32_pretrained.pt", kind="fp32")
    assert all(torch.equal(imported["model_state"][k], v) for k, v in state.items())
    assert q["epochs"] == 0 and 0 <= q["test"]["accuracy"] <= 1
    c = _run(["compare", "--model", "tiny_cnn", "--pretrained", str(d / "good.pth"), "--epochs",
              "0", "--qat-epochs", "0", "--out", str(tmp_path / "c"), *DATA])
    assert [r["label"] for r in c["rows"]][0] == "FP32"
    ev = _run(["evaluate", "--checkpoint", str(tmp_path / "c" / "fp32" / "pretrained.pt"),
               "--limit-test", "32", "--device", "cpu", "--json"])
    assert c["rows"][0]["accuracy"] == ev["accuracy"]  # the FP32 row is the file as it is


@pytest.mark.parametrize(
    "file,expect",
    [
        ("classes5.pth", "shape mismatches: fc.weight (5, 32) vs model (10, 32)"),
        ("resnet.pth", "missing keys: features.0.0.weight"),
        ("corrupt.pth", "corrupt, truncated or not a torch file"),
        ("absent.pth", "weights file not found"),
    ],
)
def test_bad_files_are_clear_errors(weights, tmp_path, file, expect):
    d, _ = weights
    for args in (
        ["train", "--model", "tiny_cnn", "--epochs", "1", "--out", str(tmp_path / "t")],
        ["quantize", "--model", "tiny_cnn", "--out", str(tmp_path / "q")],
        ["compare", "--model", "tiny_cnn", "--epochs", "0", "--out", str(tmp_path / "c")],
    ):
        r = runner.invoke(app, [*args, "--pretrained", str(d / file), *DATA])
        assert r.exit_code == 2, r.output
        assert expect in r.output and str(d / file) in r.output


def test_nested_and_ddp_prefixed_state_dicts_load(weights, tmp_path):
    _, state = weights
    path = tmp_path / "nested.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    model = build_model("tiny_cnn", 10, 1, 28)
    load_state_dict_file(model, str(path))
    assert torch.equal(model.fc.weight, state["fc.weight"])
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ModelError, match="expected a state dict"):
        load_state_dict_file(model, str(tmp_path / "list.pt"))


def test_quantize_needs_one_source(tmp_path):
    r = runner.invoke(app, ["quantize", "--out", str(tmp_path), *DATA])
    assert r.exit_code == 2 and "--checkpoint" in r.output and "--pretrained" in r.output
    r = runner.invoke(app, ["quantize", "--pretrained", "x.pth", "--out", str(tmp_path), *DATA])
    assert r.exit_code == 2 and "--pretrained needs --model" in r.output
