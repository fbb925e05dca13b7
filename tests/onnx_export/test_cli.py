"""`filmqnn onnx` and `filmqnn run --device onnxruntime` on a saved artifact: the written model
passes the ONNX checker, carries its metadata, runs bit-exactly from the file; a tampered
artifact is refused before anything is written."""

import json

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

import filmqnn
from filmqnn.cli.main import app
from filmqnn.lower.artifact import save_artifact
from filmqnn.lower.manifest import MANIFEST, sha256
from filmqnn.onnx_export.runtime import make_session
from filmqnn.ref.executor import ReferenceExecutor

runner = CliRunner()


@pytest.fixture(scope="module")
def artifact(graph_of, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx_cli") / "art"
    save_artifact(graph_of("user_cnn"), out)
    return out


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_onnx_command_writes_checked_models(artifact, graph_of, frames_for, tmp_path):
    out, qdq = tmp_path / "m" / "model.int.onnx", tmp_path / "model.qdq.onnx"
    res = invoke("onnx", "--artifact", artifact, "--out", out, "--qdq", qdq, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["check"] == {"frames": 7, "mismatches": 0, "max_abs_diff": 0}
    assert summary["out"]["bytes"] == out.stat().st_size and qdq.is_file()
    assert not list(out.parent.glob(".*tmp*")), "no temporary file is left behind"
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert all(n.domain == "" for n in model.graph.node), "standard operators only"
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["filmqnn.version"] == filmqnn.__version__
    assert meta["filmqnn.artifact_sha256"] == sha256((artifact / MANIFEST).read_bytes())
    g = graph_of("user_cnn")
    high = json.loads(meta["filmqnn.filters_8bit"])
    for node in g.nodes:
        if "bits" in node.params:
            pos = np.flatnonzero(node.params["bits"] == 8)
            assert high[node.name]["positions"] == pos.tolist()
            order = g.tensors[node.output].order
            assert high[node.name]["filters"] == sorted((pos if order is None else order[pos])
                                                        .tolist())
    x = frames_for(g)
    got = make_session(out, threads=1).run(["logits_int"], {"input_q": x})[0]
    want = ReferenceExecutor(g).run_int(torch.from_numpy(x).int())[0].numpy()
    assert np.array_equal(got, want)


def test_tampered_artifact_is_refused_before_writing(artifact, tmp_path):
    bad = tmp_path / "bad"
    import shutil

    shutil.copytree(artifact, bad)
    wfile = next((bad / "nodes").glob("*.w8.bin"))
    data = bytearray(wfile.read_bytes())
    data[0] ^= 1
    wfile.write_bytes(bytes(data))
    out = tmp_path / "model.onnx"
    res = invoke("onnx", "--artifact", bad, "--out", out, "--qdq", tmp_path / "q.onnx")
    assert res.exit_code == 2 and "checksum mismatch" in res.output
    assert not out.exists() and not (tmp_path / "q.onnx").exists()
    out.write_bytes(b"old model")  # an existing file is left as it was
    res = invoke("onnx", "--artifact", bad, "--out", out)
    assert res.exit_code == 2 and out.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "model.onnx"]


def test_clear_errors(artifact, tmp_path):
    res = invoke("onnx", "--artifact", tmp_path, "--out", tmp_path / "m.onnx")
    assert res.exit_code == 2 and "not an artifact directory" in res.output
    res = invoke("onnx", "--artifact", artifact, "--out", tmp_path)
    assert res.exit_code == 2 and "is a directory" in res.output
    res = invoke("onnx", "--artifact", artifact, "--out", tmp_path / "a.onnx", "--qdq",
                 tmp_path / "a.onnx")
    assert res.exit_code == 2 and "same file" in res.output


def test_run_on_onnxruntime_matches_the_reference(artifact):
    args = ["run", "--artifact", artifact, "--data", "fashion-mnist", "--limit-test", "200",
            "--json"]
    ref = invoke(*args)
    ort = invoke(*args, "--device", "onnxruntime")
    assert ref.exit_code == 0 and ort.exit_code == 0, ref.output + ort.output
    a, b = json.loads(ref.stdout), json.loads(ort.stdout)
    assert (a["device"], b["device"]) == ("reference", "onnxruntime")
    assert a["accuracy"] == b["accuracy"] and a["samples"] == b["samples"] == 200
    bad = invoke("run", "--artifact", artifact, "--data", "fashion-mnist", "--device", "fpga")
    assert bad.exit_code != 0 and "fpga" in bad.output


def test_plain_onnxruntime_snippet_of_the_docs(artifact, graph_of, fmnist_images, tmp_path):
    """docs/onnx.md's five lines (numpy quantization, plain onnxruntime) give the reference's
    integer logits."""
    import onnxruntime as ort

    out = tmp_path / "model.int.onnx"
    assert invoke("onnx", "--artifact", artifact, "--out", out, "--no-check").exit_code == 0
    x = fmnist_images.numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    scale = np.float32(float(sess.get_modelmeta().custom_metadata_map["filmqnn.input_scale"]))
    x_q = np.clip(np.round(x.astype(np.float32) / scale), -128, 127).astype(np.int8)
    logits_int, logits = sess.run(["logits_int", "logits"], {"input_q": x_q})
    ref = ReferenceExecutor(graph_of("user_cnn"))
    assert np.array_equal(logits_int, ref.int_logits(fmnist_images).numpy())
    assert np.array_equal(logits, ref.logits(fmnist_images).numpy())


def test_package_exports_resolve():
    import filmqnn.onnx_export as pkg

    for name in pkg.__all__:
        assert callable(getattr(pkg, name)), name
