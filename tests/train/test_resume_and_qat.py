"""Training runs: exact resume after an interruption, QAT/PTQ artifacts, the assignment phase."""

import json

import pytest
import torch

from filmqnn.quant import QuantConfig
from filmqnn.quant.checkpoint import CheckpointError, load_checkpoint, load_quantized
from filmqnn.quant.config import QuantSpec
from filmqnn.train.fp32 import train_fp32
from filmqnn.train.qat import quantize_fp32
from filmqnn.train.spec import TrainSpec

SPEC = TrainSpec(model="tiny_cnn", data="synthetic", epochs=2, batch_size=32, lr=0.05,
                 limit_train=128, limit_test=64, warmup_steps=2)
QSPEC = QuantSpec(ratio=0.25, tm=8, assign_epochs=1, calib_batches=2)


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def fp32_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fp32")
    return train_fp32(SPEC, out, progress=False), out


def test_fp32_resume_reaches_the_same_state(fp32_run, tmp_path):
    _, straight = fp32_run
    first = train_fp32(SPEC, tmp_path, stop_after=1, progress=False)
    assert first["epochs_done"] == 1 and "test" not in first
    train_fp32(SPEC, tmp_path, resume=True, progress=False)
    a = load_checkpoint(straight / "fp32.pt", kind="fp32")
    b = load_checkpoint(tmp_path / "fp32.pt", kind="fp32")
    assert a["epoch"] == b["epoch"] == 2
    assert _same_state(a["model_state"], b["model_state"])


def test_resume_with_other_settings_is_refused(fp32_run):
    _, out = fp32_run
    with pytest.raises(ValueError, match="other settings"):
        train_fp32(TrainSpec(**{**SPEC.to_dict(), "lr": 0.5}), out, resume=True, progress=False)


def test_qat_resume_reaches_the_same_state(fp32_run, tmp_path):
    _, fp32_dir = fp32_run
    qspec_train = TrainSpec(**{**SPEC.to_dict(), "lr": 0.01})
    ckpt = fp32_dir / "fp32.pt"
    full = quantize_fp32(ckpt, qspec_train, QSPEC, tmp_path / "a", progress=False)
    quantize_fp32(ckpt, qspec_train, QSPEC, tmp_path / "b", stop_after=1, progress=False)
    quantize_fp32(ckpt, qspec_train, QSPEC, tmp_path / "b", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "a" / "quant.pt", kind="quant")
    b = load_checkpoint(tmp_path / "b" / "quant.pt", kind="quant")
    assert _same_state(a["model_state"], b["model_state"])
    assert a["assignment"] == b["assignment"]
    assert [h["phase"] for h in full["history"]] == ["assign", "finetune"]
    saved = json.loads((tmp_path / "a" / "assignment.json").read_text())
    for la in saved["layers"]:  # tile rule: Tm8 = max(1, round(0.25*8)) = 2 per tile of 8
        expect = la["filters"] if la["fixed"] else min(la["filters"], 2 * -(-la["filters"] // 8))
        assert la["filters_8bit"] == expect
    model, state = load_quantized(tmp_path / "a" / "quant.pt")
    for layer_dict in saved["layers"]:
        layer = model.get_submodule(layer_dict["name"])
        assert sorted(torch.nonzero(layer.bits == 8).flatten().tolist()) == \
            layer_dict["high_filters"]


def test_ptq_and_reused_assignment(fp32_run, tmp_path):
    _, fp32_dir = fp32_run
    ckpt = fp32_dir / "fp32.pt"
    ptq = quantize_fp32(ckpt, SPEC, QuantSpec(mode="ptq", calib_batches=2), tmp_path / "p",
                        progress=False)
    assert ptq["epochs"] == 0 and 0 <= ptq["test"]["accuracy"] <= 1
    reuse = QuantSpec(mode="ptq", assignment_file=str(tmp_path / "p" / "assignment.json"))
    again = quantize_fp32(ckpt, SPEC, reuse, tmp_path / "r", progress=False)
    a = json.loads((tmp_path / "p" / "assignment.json").read_text())
    b = json.loads((tmp_path / "r" / "assignment.json").read_text())
    assert a["layers"] == b["layers"] and again["ratio_8bit"] == ptq["ratio_8bit"]


def test_uniform_8bit_config_has_only_8bit_filters(fp32_run, tmp_path):
    _, fp32_dir = fp32_run
    w8 = QuantSpec(mode="ptq", ratio=0.0, config=QuantConfig(low_bits=8), calib_batches=1)
    quantize_fp32(fp32_dir / "fp32.pt", SPEC, w8, tmp_path, progress=False)
    model, _ = load_quantized(tmp_path / "quant.pt")
    from filmqnn.quant import quant_layers

    assert all(bool((layer.bits == 8).all()) for _, layer in quant_layers(model))


def test_missing_or_wrong_checkpoints_have_clear_errors(fp32_run, tmp_path):
    _, fp32_dir = fp32_run
    with pytest.raises(CheckpointError, match="filmqnn train"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="expected 'quant'"):
        load_checkpoint(fp32_dir / "fp32.pt", kind="quant")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(bad)
