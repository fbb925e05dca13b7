"""Devices: --device resolution, one place that moves tensors, CUDA code paths without a GPU.

No GPU here: the CUDA paths run under torch's FakeTensorMode, whose fake ``cuda`` tensors
raise torch's real "found at least two devices" error when code mixes in a CPU tensor, so a
hard-coded CPU tensor in a quantizer, criterion or fused op fails these tests.
"""

import json
import re
import types
from pathlib import Path

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.data import augment_batch
from filmqnn.models import build_model
from filmqnn.quant import (
    apply_assignment,
    assign_from_scores,
    calibrate,
    convert,
    filter_scores,
    quant_layers,
)
from filmqnn.quant.act_quant import _LsqQuantize
from filmqnn.quant.checkpoint import load_checkpoint
from filmqnn.quant.weight_quant import quantize_weight_int
from filmqnn.train.checkpoint import save_checkpoint
from filmqnn.train.device import (
    DeviceError,
    check_amp,
    resolve_device,
    to_cpu,
    to_device,
)

torch.set_num_threads(1)
SRC = Path(__file__).resolve().parents[2] / "src" / "filmqnn"
runner = CliRunner()
HAS_CUDA = torch.cuda.is_available()


def test_auto_resolves_to_what_is_there():
    assert resolve_device("auto").type == ("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="use one of auto, cpu, cuda"):
        resolve_device("tpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(DeviceError, match="use --device cpu"):
        resolve_device("cuda")
    result = runner.invoke(app, ["evaluate", "--checkpoint", "x.pt", "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA device" in result.output


def test_amp_modes():
    cpu = torch.device("cpu")
    check_amp("bf16", cpu)
    check_amp("none", cpu)
    with pytest.raises(DeviceError, match="--amp bf16"):
        check_amp("fp16", cpu)
    with pytest.raises(DeviceError, match="unknown --amp"):
        check_amp("fp8", cpu)


def test_to_device_and_checkpoints_are_device_free(tmp_path):
    nested = {"a": (torch.ones(2), [torch.zeros(1)]), "n": 3}
    moved = to_device(nested, torch.device("cpu"))
    assert torch.equal(moved["a"][0], torch.ones(2)) and moved["n"] == 3
    assert to_cpu(nested)["a"][1][0].device.type == "cpu"
    save_checkpoint(tmp_path / "c.pt", {"kind": "fp32", "w": torch.ones(3)})
    assert load_checkpoint(tmp_path / "c.pt")["w"].device.type == "cpu"


def test_no_scattered_device_moves_in_the_package():
    """Only filmqnn/train/device.py names CUDA devices or calls .cuda(); nothing pins CPU."""
    patterns = [
        r"\.cuda\(",
        r"torch\.device\(\s*[\"']cuda",
        r"\.to\(\s*[\"']cuda",
        r"device\s*=\s*[\"']cuda",
        r"set_default_device",
    ]
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).as_posix() == "train/device.py":
            continue
        text = path.read_text()
        for pat in patterns:
            offenders += [f"{path.relative_to(SRC)}: {m.group(0)}" for m in re.finditer(pat, text)]
        if re.search(r"torch\.load\((?![^)]*map_location)[^)]*\)", text):
            offenders.append(f"{path.relative_to(SRC)}: torch.load without map_location")
    assert offenders == []


def _fake_to(model: nn.Module, mode: FakeTensorMode, device: str) -> None:
    """Replace every parameter and buffer by a fake tensor on `device` (no GPU needed)."""
    for mod in model.modules():
        for name, p in list(mod._parameters.items()):
            if p is not None:
                f = mode.from_tensor(p.detach())
                with mode:
                    mod._parameters[name] = nn.Parameter(f.to(device), p.requires_grad)
        for name, b in list(mod._buffers.items()):
            if b is not None:
                f = mode.from_tensor(b)
                with mode:
                    mod._buffers[name] = f.to(device)


@pytest.mark.filterwarnings("ignore:Accessing the data pointer of FakeTensor")
@pytest.mark.parametrize("name", ["tiny_cnn", "mobilenet_v2_small"])
def test_quantized_model_and_criteria_run_on_cuda_tensors(name):
    model = convert(build_model(name, num_classes=10, in_channels=1, input_size=28))
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    calibrate(model, [x])
    layers = quant_layers(model)
    scores = filter_scores("weight-error", model, layers)
    apply_assignment(layers, assign_from_scores(layers, scores, 0.25))
    model.train()
    model(x)  # a CPU step first: the host copies of the step counters are set
    mode = FakeTensorMode()
    _fake_to(model, mode, "cuda")
    with mode:
        xc = torch.randn(4, 1, 28, 28, device="cuda")
        assert model(xc).device.type == "cuda"  # training forward: cached clip, STE
        model.eval()
        with torch.no_grad():
            assert model(xc).device.type == "cuda"  # inference: exact clip search
        for crit in ("output-error", "weight-error"):
            s = filter_scores(crit, model, layers, xc)
            assert all(v.device.type == "cuda" for v in s.values())
        q, scale = quantize_weight_int(layers[1][1].weight, layers[1][1].bits)
        assert q.device.type == scale.device.type == "cuda"
        assert augment_batch(xc).device.type == "cuda"
        layers[1][1].set_high_precision([0, 1])
        # the fused LSQ op, forward and backward by hand (autograd's engine needs a GPU)
        s = torch.tensor(0.1, device="cuda")
        ctx = types.SimpleNamespace(needs_input_grad=(True, True))
        ctx.save_for_backward = lambda *t: setattr(ctx, "saved_tensors", t)
        y = _LsqQuantize.forward(ctx, xc, s, -16, 15, 0.01, False)
        gx, gs, *_ = _LsqQuantize.backward(ctx, torch.ones_like(y))
        assert gx.device.type == gs.device.type == "cuda"


def test_train_quantize_evaluate_with_device_cpu_and_bf16(tmp_path):
    data = ["--data", "synthetic", "--limit-train", "64", "--limit-test", "32",
            "--batch-size", "32", "--device", "cpu", "--json"]
    r = runner.invoke(app, ["train", "--model", "tiny_cnn", "--epochs", "1", "--amp", "bf16",
                            "--out", str(tmp_path / "f"), *data])
    assert r.exit_code == 0, r.output
    fp32 = json.loads(r.stdout)
    assert fp32["device"] == "cpu" and fp32["history"][0]["steps"] == 2
    assert fp32["history"][0]["loss"] == pytest.approx(fp32["history"][0]["loss"])  # not NaN
    r = runner.invoke(app, ["quantize", "--checkpoint", fp32["checkpoint"], "--epochs", "1",
                            "--ratio", "0.25", "--out", str(tmp_path / "q"), *data])
    assert r.exit_code == 0, r.output
    q = json.loads(r.stdout)
    assert q["device"] == "cpu"
    r = runner.invoke(app, ["evaluate", "--checkpoint", q["checkpoint"], "--device", "cpu",
                            "--limit-test", "32", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(q["test"]["accuracy"])
    r = runner.invoke(app, ["train", "--model", "tiny_cnn", "--amp", "fp16",
                            "--out", str(tmp_path / "g"), *data])
    assert r.exit_code == 2 and "--amp fp16 needs --device cuda" in r.output
