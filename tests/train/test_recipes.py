"""`--recipe film-qnn` sets what the paper's §4.1 says; `default` keeps the old settings."""

import json

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.models import build_model
from filmqnn.quant.checkpoint import load_checkpoint
from filmqnn.train.loop import cosine_lr
from filmqnn.train.recipes import effective_lr, recipe, warmup_steps
from filmqnn.train.spec import TrainSpec, finetune_spec, loss_fn, make_optimizer, spec_from_recipe

torch.set_num_threads(1)
runner = CliRunner()


def test_film_qnn_recipe_values():
    for phase in ("fp32", "qat"):
        r = recipe("film-qnn", phase)
        assert (r.momentum, r.nesterov, r.weight_decay) == (0.875, False, 1 / 32768)
        assert (r.lr, r.lr_batch, r.warmup_epochs, r.label_smoothing) == (0.256, 256, 8.0, 0.1)
    # lr scales with the global batch (batch per process x processes): the paper's values
    assert effective_lr(0.256, 256, 64, 8) == pytest.approx(0.512)  # ResNet-18, MobileNet-V2
    assert effective_lr(0.256, 256, 128, 8) == pytest.approx(1.024)  # ResNet-50
    assert effective_lr(0.05, None, 64, 8) == 0.05  # default recipe: not scaled
    assert warmup_steps(0, 8.0, 2502) == 8 * 2502  # 8 epochs of ImageNet at batch 512
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe("nvidia")


def test_film_qnn_optimizer_schedule_and_loss():
    spec = spec_from_recipe("film-qnn", "qat", model="tiny_cnn", batch_size=64)
    assert spec.recipe == "film-qnn" and spec.label_smoothing == 0.1
    opt = make_optimizer(build_model("tiny_cnn", 10, 1, 28), spec)
    decay, no_decay = opt.param_groups
    assert decay["momentum"] == 0.875 and decay["nesterov"] is False
    assert decay["weight_decay"] == 1 / 32768 and no_decay["weight_decay"] == 0.0
    peak, steps = effective_lr(spec.lr, spec.lr_batch, 64, 8), 100
    warm = warmup_steps(spec.warmup_steps, spec.warmup_epochs, steps)
    total = 150 * steps
    assert cosine_lr(peak, 0, total, warm) == pytest.approx(peak / warm)  # linear warm-up
    assert cosine_lr(peak, warm - 1, total, warm) == pytest.approx(peak)
    mid = warm + (total - warm) // 2
    assert cosine_lr(peak, mid, total, warm) == pytest.approx(peak / 2, rel=1e-3)  # cosine
    out, y = torch.randn(4, 10), torch.tensor([0, 1, 2, 3])
    assert loss_fn(spec)(out, y) == F.cross_entropy(out, y, label_smoothing=0.1)
    # explicit options win over the recipe
    assert spec_from_recipe("film-qnn", lr=0.1, momentum=0.9).momentum == 0.9


def test_default_recipe_is_the_old_default():
    assert spec_from_recipe("default", "fp32") == TrainSpec()
    assert spec_from_recipe("default", "qat") == finetune_spec()


def test_cli_recipe_reaches_the_run(tmp_path):
    args = ["train", "--model", "tiny_cnn", "--data", "synthetic", "--limit-train", "64",
            "--limit-test", "32", "--batch-size", "32", "--epochs", "1", "--recipe", "film-qnn",
            "--device", "cpu", "--out", str(tmp_path), "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["lr_peak"] == pytest.approx(0.256 * 32 / 256)  # one process, batch 32
    assert result["warmup_steps"] == 8 * 2  # 8 epochs of 2 steps
    assert result["history"][0]["lr"] == pytest.approx(0.032 * 2 / 16)  # step 2 of warm-up
    spec = load_checkpoint(tmp_path / "fp32.pt", kind="fp32")["spec"]
    assert spec["recipe"] == "film-qnn" and spec["momentum"] == 0.875
    assert spec["weight_decay"] == 1 / 32768 and spec["label_smoothing"] == 0.1
    r = runner.invoke(app, [*args[:-3], "--recipe", "paper", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "unknown recipe 'paper'" in r.output
