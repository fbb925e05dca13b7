"""`filmqnn hls` / `filmqnn csim`: the CLI contract, fit errors and tampered projects."""

import json

import pytest
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.hls.plan import FitError
from filmqnn.hls.project import write_project
from filmqnn.hls.rules import hls_rule_violations
from filmqnn.hw.devices import load_board
from filmqnn.lower.artifact import save_artifact

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory, graph_for, designs):
    root = tmp_path_factory.mktemp("hls_cli")
    save_artifact(graph_for("user_cnn", "zcu102"), root / "art")
    board, design = designs["zcu102"]
    (root / "design.json").write_text(json.dumps({"board": board, "design": design}))
    res = runner.invoke(app, ["hls", "--artifact", str(root / "art"), "--design",
                              str(root / "design.json"), "--out", str(root / "prj"), "--json"])
    assert res.exit_code == 0, res.output
    return root


def test_csim_json_contract(cli_project):
    res = runner.invoke(app, ["csim", "--project", str(cli_project / "prj"), "--random", "2",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["compared"] == 2 and out["mismatches"] == 0
    layers = out["cycles"]["layers"]
    assert out["cycles"]["total"] > 0 and len(layers) == 7
    assert all({"name", "csim", "model"} <= set(ly) for ly in layers)
    assert isinstance(out["max_layer_error"], float)


def test_csim_jobs_share_the_frames(cli_project):
    """`--jobs 2`: two processes share the frames, each with its own C-sim library, and give
    the comparison one process gives."""
    args = ["csim", "--project", str(cli_project / "prj"), "--random", "5", "--json"]
    one = runner.invoke(app, args)
    two = runner.invoke(app, [*args, "--jobs", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert json.loads(two.stdout) == json.loads(one.stdout)
    bad = runner.invoke(app, [*args, "--jobs", "0"])
    assert bad.exit_code != 0 and "--jobs" in bad.output


def test_hls_switches_kernel_modes_off(cli_project, tmp_path):
    """`filmqnn hls --off im2col_onchip`: the host-unrolled first conv (two 5-bit planes)
    instead of the raw input the engine unrolls on chip; unknown modes are refused."""
    args = ["hls", "--artifact", str(cli_project / "art"), "--design",
            str(cli_project / "design.json"), "--json"]
    on = json.loads((cli_project / "prj/project.json").read_text())
    assert on["engine"]["opts"]["im2col_onchip"] and on["layout"]["input_raw"] == [2, 2]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "p"), "--off", "im2col_onchip"])
    assert res.exit_code == 0, res.output
    off = json.loads((tmp_path / "p/project.json").read_text())
    assert not off["engine"]["opts"]["im2col_onchip"] and off["layout"]["input_raw"] is None
    assert len(off["layout"]["input_planes"]) == 2
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "q"), "--off", "pipe_rewind"])
    assert res.exit_code != 0 and "im2col_onchip" in res.output


def test_hls_keeps_the_modes_the_design_was_explored_without(cli_project, tmp_path):
    """A design JSON from `explore --off im2col_onchip` builds the host-unrolled first conv
    without repeating --off."""
    doc = json.loads((cli_project / "design.json").read_text())
    doc["engine"] = {"im2col_onchip": False, "fm_store": True}
    (tmp_path / "d.json").write_text(json.dumps(doc))
    res = runner.invoke(app, ["hls", "--artifact", str(cli_project / "art"), "--design",
                              str(tmp_path / "d.json"), "--out", str(tmp_path / "p"), "--json"])
    assert res.exit_code == 0, res.output
    opts = json.loads((tmp_path / "p/project.json").read_text())["engine"]["opts"]
    assert opts["im2col_onchip"] is False and opts["fm_store"] is True


def test_generated_kernel_follows_hls_rules(cli_project):
    src = (cli_project / "prj/src/engine.cpp").read_text()
    assert hls_rule_violations(src) == []
    for name in ("engine_config.h", "engine.h"):
        assert hls_rule_violations((cli_project / "prj/src" / name).read_text()) == []


def test_tampered_kernel_is_refused(cli_project, tmp_path):
    import shutil

    prj = tmp_path / "prj"
    shutil.copytree(cli_project / "prj", prj)
    with open(prj / "src/engine.cpp", "a") as f:
        f.write("// edited\n")
    res = runner.invoke(app, ["csim", "--project", str(prj), "--random", "1"])
    assert res.exit_code != 0 and "regenerate" in res.output


def test_design_the_kernel_cannot_take(graph_for, designs, tmp_path):
    board, design = designs["zcu102"]
    with pytest.raises(FitError, match="multiple of G"):
        write_project(graph_for("user_cnn", "zcu102"), {**design, "G": 6}, load_board(board),
                      tmp_path / "p")


def test_artifact_of_another_tiling(graph_for, designs, tmp_path):
    board, design = designs["pynq-z2"]
    with pytest.raises(FitError, match="re-export"):
        write_project(graph_for("user_cnn", "zcu102"), design, load_board(board), tmp_path / "p")


def test_network_that_does_not_fit_the_engine(graph_for, designs, tmp_path):
    """An 8-bit filter in a 4-bit slot (a tiling with fewer 8-bit slots) is named."""
    from filmqnn.lower.reordering import reorder
    from filmqnn.lower.tiling import Tiling

    board, design = designs["zcu102"]
    g = reorder(graph_for("user_cnn", "zcu102"), Tiling(tm=16, tm8=4, tn=4, g=8, axi_bits=128))
    with pytest.raises(FitError, match="tiling"):
        write_project(g, design, load_board(board), tmp_path / "p")


@pytest.mark.parametrize("acc, raw", [(False, False), (True, False), (False, True)])
def test_buffers_bound_to_the_memory_the_design_counts(graph_for, designs, tmp_path, acc, raw):
    board, design = designs["pynq-z2"]
    write_project(graph_for("user_cnn", "pynq-z2"),
                  {**design, "acc_lutram": acc, "raw_lutram": raw}, load_board(board),
                  tmp_path / "p")
    src = (tmp_path / "p/src/engine.cpp").read_text()
    for name, on in (("acc_pp", acc), ("rbuf_pp", raw)):
        impl = "lutram" if on else "bram"
        assert f"#pragma HLS bind_storage variable={name} type=ram_s2p impl={impl}\n" in src
    assert hls_rule_violations(src) == []


def test_tables_sized_as_the_resources_count_them(cli_project):
    """The kernel's requantization table and gather arrays are as deep as the resource model
    counts them (the widest layer of the network), on BRAM, in the bits it counts."""
    import re

    from filmqnn.hw.artifact_layers import artifact_layers
    from filmqnn.hw.buffers import (
        GATHER_ARRAYS,
        INDEX_BITS,
        REQUANT_TABLE_BYTES,
        bram18k_count,
        table_brams,
    )
    from filmqnn.hw.design import IMPLEMENTED

    src = (cli_project / "prj/src/engine.cpp").read_text()
    cfg = (cli_project / "prj/src/engine_config.h").read_text()
    mmax = int(re.search(r"#define MMAX (\d+)", cfg).group(1))
    assert int(re.search(r"#define INDEX_BITS (\d+)", cfg).group(1)) == INDEX_BITS
    assert int(re.search(r"#define TABLE_WORDS (\d+)", cfg).group(1)) * 4 == REQUANT_TABLE_BYTES
    gathers = re.findall(r"^static index_t (\w+)\[MMAX\];", src, re.M)
    assert len(gathers) == GATHER_ARRAYS
    for name in ["table", *gathers]:
        assert f"#pragma HLS bind_storage variable={name} type=ram_2p impl=bram\n" in src
    want = bram18k_count(8 * REQUANT_TABLE_BYTES, mmax) + GATHER_ARRAYS * bram18k_count(
        INDEX_BITS, mmax)
    assert table_brams(artifact_layers(cli_project / "art"), IMPLEMENTED) == want
