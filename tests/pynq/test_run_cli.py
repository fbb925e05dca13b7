"""`filmqnn run --device csim`: the accuracy command through the board driver on C-sim."""

import json

from typer.testing import CliRunner

from filmqnn.cli.main import app

runner = CliRunner()


def test_run_on_csim_equals_the_reference(deployed):
    _, art, prj, _ = deployed("resnet18_small")
    common = ["run", "--artifact", str(art), "--data", "fashion-mnist", "--limit-test", "3",
              "--json"]
    res = runner.invoke(app, [*common, "--device", "csim", "--project", str(prj)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["device"] == "csim" and out["compared"] == 3 and out["mismatches"] == 0
    assert out["images_per_s"] > 0 and out["per_frame_s"]["engine_s"] > 0
    ref = json.loads(runner.invoke(app, common).stdout)
    assert ref["accuracy"] == out["accuracy"] and ref["samples"] == 3


def test_run_device_options_are_checked(deployed):
    _, art, prj, _ = deployed("resnet18_small")
    common = ["run", "--artifact", str(art), "--data", "fashion-mnist", "--limit-test", "1"]
    res = runner.invoke(app, [*common, "--device", "csim"])
    assert res.exit_code == 2 and "needs --project" in res.output
    res = runner.invoke(app, [*common, "--project", str(prj)])
    assert res.exit_code == 2 and "--project is for --device csim" in res.output
    _, art_mv2, _, _ = deployed("mobilenet_v2_small")
    res = runner.invoke(app, ["run", "--artifact", str(art_mv2), "--data", "fashion-mnist",
                              "--limit-test", "1", "--device", "csim", "--project", str(prj)])
    assert res.exit_code == 2 and "generated from another artifact" in res.output
