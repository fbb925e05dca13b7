"""Data-parallel training under torchrun with the gloo backend on CPU, two processes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
