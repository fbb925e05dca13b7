"""Engine layers read from an integer artifact (`filmqnn explore --artifact DIR`)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.hw import artifact_layers as al
from filmqnn.hw.artifact_layers import ArtifactLayersError, artifact_layers, artifact_tiling
from filmqnn.hw.layers import total_macs
from filmqnn.lower import artifact as lower_artifact
from filmqnn.lower.reordering import reorder

runner = CliRunner()
COMPUTE = ("conv", "dwconv", "fc")


@pytest.fixture(scope="module")
def exported(lower_models, tmp_path_factory):
    """`exported(name)`: (artifact dir, its IntGraph), exported once per model."""
    root = tmp_path_factory.mktemp("hw_artifacts")
    done = {}

    def get(name):
        if name not in done:
            with lower_models.one_thread():
                g = reorder(lower_models.build_lowered(name), lower_models.TILING)
            done[name] = (lower_artifact.save_artifact(g, root / name), g)
        return done[name]

    return get


@pytest.fixture
def art(lower_models, exported, tmp_path):
    """A fresh copy of the user CNN's artifact to tamper with."""
    return Path(shutil.copytree(exported(lower_models.USER_CNN)[0], tmp_path / "art"))


def _node_macs(g, n):
    w = n.params["weight"].shape
    out = g.tensors[n.output].shape
    pixels = out[1] * out[2] if len(out) == 3 else 1
    return w[0] * w[1] * (w[2] * w[3] if len(w) == 4 else 1) * pixels


def _shape_key(ly):
    return (ly.kind, ly.N, ly.M, ly.H, ly.W, ly.R, ly.C, ly.K, ly.stride, ly.pad, ly.groups,
            ly.all8, ly.first, ly.signed_in)


@pytest.mark.parametrize("name", ["resnet18_small", "mobilenet_v2_small"])
def test_layers_match_the_graph(exported, name):
    path, g = exported(name)
    layers = artifact_layers(path)
    weight_nodes = [n for n in g.nodes if n.op in ("conv", "fc")]
    compute = [ly for ly in layers if ly.kind in COMPUTE]
    assert len(compute) == len(weight_nodes)
    assert [ly.name for ly in layers] == [n.name for n in g.nodes if n.op != "flatten"]
    assert total_macs(layers) == sum(_node_macs(g, n) for n in weight_nodes)
    by_name = {ly.name: ly for ly in layers}
    for n in weight_nodes:
        ly = by_name[n.name]
        assert ly.residual == (len(n.inputs) == 2)
        assert ly.all8 == bool((n.params["bits"] == 8).all())
        assert ly.signed_in == g.tensors[n.inputs[0]].signed
        if n.op == "conv" and n.attrs["groups"] > 1:
            assert ly.kind == "dwconv" and ly.groups == ly.N == ly.M
    assert [ly.first for ly in layers] == [i == 0 for i in range(len(layers))]
    assert compute[0].all8 and compute[-1].all8 and not all(ly.all8 for ly in compute)
    # tensor ids: each layer writes its own index, reads what earlier layers wrote
    index = {n.output: i for i, n in enumerate(n for n in g.nodes if n.op != "flatten")}
    for i, ly in enumerate(layers):
        assert ly.tout == i and -1 <= ly.tin < i and ly.tskip < i
        assert ly.residual == (ly.tskip >= 0)
    skips = [by_name[n.name].tskip == index[n.inputs[1]] for n in weight_nodes
             if len(n.inputs) == 2]
    assert skips and all(skips)


def test_layers_match_a_trace_of_the_float_model(exported):
    from filmqnn.hw.trace import layers_from_module
    from filmqnn.models import build_model

    for name in ("mobilenet_v2_small", "resnet18_small"):
        traced = layers_from_module(build_model(name, num_classes=10, in_channels=1,
                                                input_size=28), (1, 28, 28))
        read = artifact_layers(exported(name)[0])
        if name == "mobilenet_v2_small":  # same order, same tensor graph
            assert [(*_shape_key(ly), ly.residual, ly.tin, ly.tout, ly.tskip) for ly in read] == [
                (*_shape_key(ly), ly.residual, ly.tin, ly.tout, ly.tskip) for ly in traced]
        else:  # the deployed graph runs each downsample before the conv its add fuses into
            assert sorted(map(_shape_key, read)) == sorted(map(_shape_key, traced))
            assert sum(ly.residual for ly in read) == sum(ly.residual for ly in traced) == 8


def test_user_cnn_mapping(lower_models, exported):
    layers = artifact_layers(exported(lower_models.USER_CNN)[0])
    by = {ly.name: ly for ly in layers}
    assert [ly.name for ly in layers] == ["stem", "dw", "pw", "pool", "fc1", "fc2"]  # no add
    assert by["stem"].first and by["stem"].all8 and (by["stem"].K, by["stem"].stride) == (5, 2)
    assert by["dw"].kind == "dwconv" and not by["dw"].residual
    assert by["pw"].residual and by["pw"].tin == -1  # reads the unmodelled add
    pool = by["pool"]
    assert (pool.kind, pool.N, pool.K, pool.stride, pool.pad, pool.R) == ("maxpool", 24, 3, 2, 1, 7)
    assert pool.signed_in  # the conv + add output has no ReLU
    fc1 = by["fc1"]  # an fc over a 7x7 map runs as a conv whose kernel covers the map
    assert (fc1.kind, fc1.N, fc1.M, fc1.H, fc1.W, fc1.R, fc1.C, fc1.K) == (
        "conv", 24, 40, 7, 7, 1, 1, 7)
    assert fc1.macs == 40 * 24 * 7 * 7 and fc1.tin == layers.index(pool)
    fc2 = by["fc2"]
    assert (fc2.kind, fc2.N, fc2.M, fc2.K) == ("fc", 40, 10, 1) and fc2.all8


def test_tiling_and_format(lower_models, exported):
    assert artifact_tiling(exported(lower_models.USER_CNN)[0]) == lower_models.TILING.to_dict()
    assert (al.FORMAT, al.VERSION, al.MANIFEST) == (
        lower_artifact.FORMAT, lower_artifact.VERSION, lower_artifact.MANIFEST)


def _manifest(root):
    return json.loads((root / "manifest.json").read_text())


def test_tampered_bits_are_refused(art):
    name = _manifest(art)["nodes"][1]["params"]["bits"]["file"]
    f = art / name
    f.write_bytes(bytes([4]) + f.read_bytes()[1:])
    with pytest.raises(ArtifactLayersError, match=f"checksum mismatch in {name}.*re-export"):
        artifact_layers(art)
    f.unlink()
    with pytest.raises(ArtifactLayersError, match="missing; re-export"):
        artifact_layers(art)


def test_bad_manifests_are_refused(art, tmp_path):
    with pytest.raises(ArtifactLayersError, match="no manifest.json.*filmqnn export"):
        artifact_layers(tmp_path / "none")
    m = _manifest(art)
    m["nodes"][0]["attrs"]["kernel"] = [5, 3]
    (art / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactLayersError, match="layer stem: non-square kernel"):
        artifact_layers(art)
    del m["tensors"]
    (art / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactLayersError, match="lacks or misstates.*re-export"):
        artifact_layers(art)
    (art / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactLayersError, match="not valid JSON.*re-export"):
        artifact_layers(art)
    with pytest.raises(ArtifactLayersError, match="not valid JSON"):
        artifact_tiling(art)


def test_explore_artifact_cli(exported):
    path = exported("resnet18_small")[0]
    r = runner.invoke(app, ["explore", "--artifact", str(path), "--board", "pynq-z2", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["fps"] > 0 and s["model"] == "resnet18_small" and s["artifact"] == str(path)
    assert [ly["name"] for ly in s["layers"]][:2] == ["conv1", "layer1_0_conv1"]


def test_explore_artifact_cli_errors(lower_models, exported):
    path = str(exported(lower_models.USER_CNN)[0])
    both = ["explore", "--model", "resnet18", "--artifact", path, "--board", "pynq-z2"]
    for args in (both, ["explore", "--board", "pynq-z2"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and "exactly one of --model" in r.output
    r = runner.invoke(app, ["explore", "--artifact", path, "--board", "pynq-z2", "--weights",
                            "w8"])
    assert r.exit_code == 2 and "--weights does not apply with --artifact" in r.output
    r = runner.invoke(app, ["explore", "--artifact", path + "x", "--board", "pynq-z2"])
    assert r.exit_code == 2 and "filmqnn export" in r.output


def test_explore_artifact_runs_without_torch(lower_models, exported):
    art = str(exported(lower_models.USER_CNN)[0])
    args = ["explore", "--artifact", art, "--board", "pynq-z2", "--json"]
    code = (
        "import sys; from filmqnn.cli.main import load_app; "
        f"load_app({args!r})({args!r}, standalone_mode=False); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["fps"] > 0
