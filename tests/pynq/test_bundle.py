"""`filmqnn deploy` and the bundle as the board reads it: contents, checksums, atomic writes,
and run.py running with neither filmqnn nor torch importable."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from filmqnn.cli.main import app
from filmqnn.hls.csim import build_library
from filmqnn.pynq.bundle import Bundle, BundleError
from filmqnn.pynq.deploy import BOARD_MODULES, write_bundle

runner = CliRunner()

#: Runs a bundle's run.py in a fresh interpreter where importing filmqnn or torch fails.
BLOCKED = ("import runpy, sys; sys.modules['filmqnn'] = None; sys.modules['torch'] = None; "
           "sys.argv = ['run.py'] + sys.argv[1:]; runpy.run_path('run.py', run_name='__main__')")


def _run_py(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, *args], cwd=bundle,
                          capture_output=True, text=True, timeout=300)


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(bundle, dst)
    return dst


def test_bundle_contents(deployed):
    _, art, prj, bundle = deployed("resnet18_small", samples=3)
    meta = json.loads((bundle / "bundle.json").read_text())
    want = {"ddr.bin", "run.py", "README.md", "filmqnn_pynq/__init__.py",
            "samples/images/test.npy", "samples/labels.npy", "samples/expected_logits.npy",
            *(f"filmqnn_pynq/{m}" for m in BOARD_MODULES)}
    assert set(meta["files"]) == want
    assert (bundle / "ddr.bin").read_bytes() == (prj / "data/ddr.bin").read_bytes()
    assert meta["classes"][9] == "Ankle boot" and meta["input"]["shape"] == [1, 28, 28]
    assert "no bitstream" in (bundle / "README.md").read_text()
    assert not [p for p in bundle.parent.iterdir() if ".tmp-" in p.name]


def test_run_py_on_csim_without_filmqnn_or_torch(deployed):
    """The bundle's own entry point, its board-side imports only, on the C-sim library: the
    sample images' logits equal the reference's that deploy stored."""
    _, _, prj, bundle = deployed("resnet18_small", samples=3)
    res = _run_py(bundle, "--images", "samples/images", "--labels", "samples/labels.npy",
                  "--expected", "samples/expected_logits.npy", "--json",
                  "--csim", str(build_library(prj)))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["images"] == 3 and out["mismatches"] == 0 and "accuracy" in out
    assert [p["image"] for p in out["predictions"]] == [f"test.npy[{i}]" for i in range(3)]
    assert out["timing"]["engine_s"] > 0


@pytest.mark.parametrize("damage, match", [
    (lambda b: (b / "ddr.bin").unlink(), "ddr.bin is missing"),
    (lambda b: (b / "filmqnn_pynq/driver.py").unlink(), "driver.py is missing"),
    (lambda b: (b / "ddr.bin").write_bytes(b"\1" + (b / "ddr.bin").read_bytes()[1:]),
     "ddr.bin differs from bundle.json's checksum"),
    (lambda b: (b / "bundle.json").write_text("{"), "not valid JSON"),
    (lambda b: (b / "bundle.json").unlink(), "not a filmqnn bundle"),
])
def test_damaged_bundle_is_refused(deployed, tmp_path, damage, match):
    _, _, _, bundle = deployed("resnet18_small")
    copy = _copy(bundle, tmp_path)
    damage(copy)
    with pytest.raises(BundleError, match=match):
        Bundle.load(copy)


def test_run_py_reports_a_damaged_bundle_and_prints_nothing(deployed, tmp_path):
    _, _, prj, bundle = deployed("resnet18_small", samples=3)
    copy = _copy(bundle, tmp_path)
    data = bytearray((copy / "ddr.bin").read_bytes())
    data[-1] ^= 0xFF
    (copy / "ddr.bin").write_bytes(bytes(data))
    res = _run_py(copy, "--images", "samples/images", "--json", "--csim", "unused.so")
    assert res.returncode == 2 and res.stdout == ""
    assert "ddr.bin differs from bundle.json's checksum" in res.stderr


def test_run_py_on_the_board_needs_the_bitstream(deployed):
    _, _, _, bundle = deployed("resnet18_small", samples=3)
    res = _run_py(bundle, "--images", "samples/images")
    assert res.returncode == 2 and res.stdout == ""
    assert "has no filmqnn.bit" in res.stderr and "vivado" in res.stderr


def test_deploy_cli_and_missing_bitstream_message(deployed, tmp_path):
    _, art, prj, _ = deployed("resnet18_small")
    out = tmp_path / "b"
    res = runner.invoke(app, ["deploy", "--artifact", str(art), "--project", str(prj),
                              "--out", str(out), "--samples", "0", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["missing"] == ["filmqnn.bit", "filmqnn.hwh"] and summary["samples"] == 0
    res = runner.invoke(app, ["deploy", "--artifact", str(art), "--project", str(prj),
                              "--out", str(out), "--samples", "0"])
    assert res.exit_code == 0 and "vivado -mode batch" in res.output
    res = runner.invoke(app, ["deploy", "--artifact", str(art), "--project", str(prj),
                              "--out", str(out), "--samples", "0", "--bitstream",
                              str(tmp_path / "nope.bit")])
    assert res.exit_code == 2 and "vivado -mode batch" in res.output


def test_deploy_copies_the_bitstream(deployed, tmp_path):
    _, art, prj, _ = deployed("resnet18_small")
    (tmp_path / "filmqnn.bit").write_bytes(b"\0bit")
    (tmp_path / "filmqnn.hwh").write_text("<hwh/>")
    write_bundle(art, prj, tmp_path / "b", tmp_path / "filmqnn.bit", samples=0)
    b = Bundle.load(tmp_path / "b")
    assert b.bitstream().read_bytes() == b"\0bit"
    assert {"filmqnn.bit", "filmqnn.hwh"} <= set(b.meta["files"])
    assert "no bitstream" not in (tmp_path / "b/README.md").read_text()
    (tmp_path / "filmqnn.hwh").unlink()
    with pytest.raises(BundleError, match="filmqnn.hwh is missing"):
        write_bundle(art, prj, tmp_path / "b2", tmp_path / "filmqnn.bit", samples=0)
    assert not (tmp_path / "b2").exists()


def test_artifact_of_another_project_is_refused_and_nothing_is_written(deployed, tmp_path):
    _, art18, prj18, bundle18 = deployed("resnet18_small")
    _, art_mv2, _, _ = deployed("mobilenet_v2_small")
    out = _copy(bundle18, tmp_path)  # an existing bundle stays as it was
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = runner.invoke(app, ["deploy", "--artifact", str(art_mv2), "--project", str(prj18),
                              "--out", str(out), "--samples", "0"])
    assert res.exit_code == 2
    assert "generated from another artifact" in res.output and "filmqnn hls" in res.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
    res = runner.invoke(app, ["deploy", "--artifact", str(art_mv2), "--project", str(prj18),
                              "--out", str(tmp_path / "new"), "--samples", "0"])
    assert res.exit_code == 2 and not (tmp_path / "new").exists()


def test_deploy_refuses_to_overwrite_a_foreign_directory(deployed, tmp_path):
    _, art, prj, _ = deployed("resnet18_small")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep")
    with pytest.raises(BundleError, match="not a filmqnn bundle"):
        write_bundle(art, prj, tmp_path / "mine", samples=0)
    assert (tmp_path / "mine/notes.txt").read_text() == "keep"


def test_numpy_images_of_a_folder(tmp_path):
    from filmqnn.pynq.board_main import ImageError, load_images

    np.save(tmp_path / "a.npy", np.zeros((28, 28), np.uint8))
    np.save(tmp_path / "b.npy", np.ones((2, 1, 28, 28), np.uint8))
    x, names = load_images(tmp_path, (1, 28, 28))
    assert x.shape == (3, 1, 28, 28) and names == ["a.npy", "b.npy[0]", "b.npy[1]"]
    np.save(tmp_path / "c.npy", np.ones((28, 28), np.float32))
    with pytest.raises(ImageError, match="c.npy: dtype float32"):
        load_images(tmp_path, (1, 28, 28))


def test_png_images_of_a_folder(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    from filmqnn.pynq.board_main import load_images

    img = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    pil.fromarray(img).save(tmp_path / "x.png")
    x, names = load_images(tmp_path, (1, 28, 28))
    assert names == ["x.png"] and np.array_equal(x[0, 0], img)
    rgb = np.stack([img, img // 2, img // 3], -1)
    pil.fromarray(rgb).save(tmp_path / "x.png")
    x, _ = load_images(tmp_path, (3, 28, 28))
    assert np.array_equal(x[0], rgb.transpose(2, 0, 1))
