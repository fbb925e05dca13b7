"""Data-parallel training under torchrun with the gloo backend on CPU, two processes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed beside python")
def test_torchrun_two_processes_train_and_quantize(tmp_path):
    filmqnn = shutil.which("filmqnn", path=str(Path(sys.executable).parent))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = ["--nproc_per_node=2", "--standalone", filmqnn]
    data = ["--data", "synthetic", "--limit-train", "256", "--limit-test", "64",
            "--batch-size", "32", "--json"]
    out = subprocess.run([str(TORCHRUN), *common, "train", "--model", "tiny_cnn", "--epochs",
                          "1", "--out", str(tmp_path / "f"), *data],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["world_size"] == 2
    assert result["history"][0]["steps"] == 256 // 2 // 32
    out = subprocess.run([str(TORCHRUN), *common, "quantize", "--checkpoint",
                          str(tmp_path / "f" / "fp32.pt"), "--epochs", "1", "--out",
                          str(tmp_path / "q"), *data],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "q" / "assignment.json").is_file()


WORKER = Path(__file__).with_name("ddp_worker.py")
DATA = "fashion-mnist" if Path("/usr/share/datasets/fashion-mnist").is_dir() else "synthetic"


def _torchrun(args: list[str], timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(TORCHRUN), "--nproc_per_node=2", "--standalone", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed beside python")
def test_two_ranks_with_different_shards_pick_the_same_8bit_filters(tmp_path):
    out = _torchrun([str(WORKER), "assign", str(tmp_path), DATA])
    assert out.returncode == 0, out.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["reduced"] == r1["reduced"]  # the same 8-bit filters on every rank ...
    assert r0["applied"] == r1["applied"]  # ... and in every rank's model
    assert r0["local"] != r1["local"]  # though each shard alone would choose others
    # the reduction is the sum of the ranks' scores
    from filmqnn.models import build_model
    from filmqnn.quant import assign_from_scores, convert, quant_layers

    layers = quant_layers(convert(build_model("tiny_cnn", num_classes=10, in_channels=1,
                                              input_size=28)))
    summed = {k: torch.tensor(r0["scores"][k]) + torch.tensor(r1["scores"][k])
              for k in r0["scores"]}
    expect = assign_from_scores(layers, summed, 0.25, None, "output-error",
                                {layers[0][0], layers[-1][0]})
    assert expect.to_dict()["layers"] == r0["reduced"]


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed beside python")
def test_killed_ddp_run_resumes_on_another_world_size(tmp_path):
    args = ["train", "--model", "tiny_cnn", "--data", DATA, "--limit-train", "256",
            "--limit-test", "64", "--batch-size", "32", "--epochs", "3", "--device", "cpu",
            "--out", str(tmp_path), "--json"]
    killed = _torchrun([str(WORKER), "kill", "1", "--", *args])
    assert killed.returncode != 0  # rank 1 was killed in the second epoch
    from filmqnn.quant.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "fp32.pt", kind="fp32")
    assert state["epoch"] == 1 and state["history"][0]["world_size"] == 2
    filmqnn = shutil.which("filmqnn", path=str(Path(sys.executable).parent))
    resumed = subprocess.run([filmqnn, *args, "--resume"], capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout)
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    assert [h["world_size"] for h in result["history"]] == [2, 1, 1]
    assert [h["steps"] for h in result["history"]] == [256 // 2 // 32, 256 // 32, 256 // 32]
    assert result["world_size"] == 1 and 0 <= result["test"]["accuracy"] <= 1
