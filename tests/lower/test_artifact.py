"""The artifact directory: exact round trip, atomic (re)writes, and clear refusals of missing,
foreign, corrupt, truncated, tampered or escaping content."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import filmqnn.lower.artifact as artifact_mod
from filmqnn.lower.artifact import (
    DTYPES,
    MANIFEST,
    VERSION,
    ArtifactError,
    load_artifact,
    save_artifact,
)
from filmqnn.lower.reordering import mark_unreordered, reorder
from filmqnn.lower.requant import OPERAND_MULT_BITS, REQUANT_MANTISSA_BITS

PICKLE_PROTOCOLS = {bytes([0x80, p]) for p in range(2, 6)}


@pytest.fixture(scope="module")
def graph(lowered, tiling):
    return reorder(lowered("user_cnn"), tiling)


@pytest.fixture(scope="module")
def saved(graph, tmp_path_factory) -> Path:
    return save_artifact(graph, tmp_path_factory.mktemp("artifact") / "art")


@pytest.fixture
def art(saved, tmp_path) -> Path:
    """A fresh copy of the saved artifact to tamper with."""
    dst = tmp_path / "art"
    shutil.copytree(saved, dst)
    return dst


def read_manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST).read_text())


def write_manifest(root: Path, m: dict) -> None:
    (root / MANIFEST).write_text(json.dumps(m, indent=1))


def rewrite(root: Path, name: str, data: bytes) -> None:
    """Replace file `name` and update its checksum and size, as a careful tamperer would."""
    (root / name).write_bytes(data)
    m = read_manifest(root)
    m["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    write_manifest(root, m)


def param_file(root: Path, node: str, key: str) -> str:
    m = read_manifest(root)
    entry = next(n for n in m["nodes"] if n["name"] == node)
    ref = entry["params"][key]
    return ref["streams"]["8"]["file"] if key == "weight" else ref["file"]


def assert_graphs_equal(a, b) -> None:
    assert (a.input, a.outputs, a.reordered, a.tiling, a.meta) == (
        b.input, b.outputs, b.reordered, b.tiling, b.meta)
    assert a.tensors.keys() == b.tensors.keys()
    for name, t in a.tensors.items():
        u = b.tensors[name]
        assert (t.name, t.shape, t.bits, t.signed) == (u.name, u.shape, u.bits, u.signed)
        assert type(t.scale) is type(u.scale) and t.scale == u.scale  # bit-exact floats
        assert (t.order is None) == (u.order is None)
        if t.order is not None:
            assert np.array_equal(t.order, u.order)
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes]
    for n, k in zip(a.nodes, b.nodes, strict=True):
        assert (n.op, n.inputs, n.output, n.attrs) == (k.op, k.inputs, k.output, k.attrs)
        assert n.params.keys() == k.params.keys()
        for key, v in n.params.items():
            assert v.shape == k.params[key].shape, (n.name, key)
            assert np.array_equal(v, k.params[key]), (n.name, key)


@pytest.mark.parametrize("which", ["reordered", "unreordered", "lowered"])
def test_round_trip_is_exact(which, lowered, tiling, tmp_path):
    g = lowered("user_cnn")
    g = {"reordered": reorder(g, tiling), "unreordered": mark_unreordered(g, tiling),
         "lowered": g}[which]
    out = save_artifact(g, tmp_path / "a")
    back = load_artifact(out)
    if which == "lowered":  # no tiling: the artifact records the default one
        assert back.tiling is not None
        back.tiling = None
    assert_graphs_equal(g, back)
    assert back.nodes[0].params["weight"].dtype == np.int8
    assert back.nodes[0].params["bits"].dtype == np.uint8


def test_round_trip_of_a_registry_model(lowered, tiling, tmp_path):
    g = reorder(lowered("mobilenet_v2_small"), tiling)
    assert_graphs_equal(g, load_artifact(save_artifact(g, tmp_path / "m")))


def test_files_are_raw_arrays_not_pickles(saved):
    m = read_manifest(saved)
    on_disk = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()}
    assert on_disk == set(m["files"]) | {MANIFEST}
    assert m["format"] == "filmqnn.artifact" and m["version"] == VERSION
    for name in on_disk:
        data = (saved / name).read_bytes()
        assert data[:2] not in PICKLE_PROTOCOLS, name
        assert not data.startswith(b"PK\x03\x04"), name  # no torch.save zip either
    # every plain array file holds exactly prod(shape) items of its dtype, nothing else
    refs = [r for n in m["nodes"] for k, r in n["params"].items() if k != "weight"]
    refs += [t["order"] for t in m["tensors"].values() if t["order"] is not None]
    for ref in refs:
        size = (saved / ref["file"]).stat().st_size
        assert size == np.dtype(DTYPES[ref["dtype"]]).itemsize * int(np.prod(ref["shape"]))


def test_missing_manifest(art):
    (art / MANIFEST).unlink()
    with pytest.raises(ArtifactError, match=r"not an artifact directory \(no manifest.json\)"):
        load_artifact(art)
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_artifact(art.parent / "does-not-exist")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_wrong_version(art, version):
    m = read_manifest(art)
    m["version"] = version
    write_manifest(art, m)
    with pytest.raises(ArtifactError, match=rf"artifact version {version!r} is not supported"):
        load_artifact(art)


def test_wrong_format_name(art):
    m = read_manifest(art)
    m["format"] = "something.else"
    write_manifest(art, m)
    with pytest.raises(ArtifactError, match="not a filmqnn artifact manifest"):
        load_artifact(art)


@pytest.mark.parametrize("text", ["{not json", "", "\xff\xfe", "[1, 2]"])
def test_manifest_not_json(art, text):
    (art / MANIFEST).write_bytes(text.encode("latin-1"))
    with pytest.raises(ArtifactError, match="not valid JSON|not a filmqnn artifact manifest"):
        load_artifact(art)


def test_truncated_binary(art):
    name = param_file(art, "fc1", "weight")
    path = art / name
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ArtifactError, match=rf"file {name} is truncated or padded"):
        load_artifact(art)


def test_padded_binary(art):
    name = param_file(art, "stem", "bias")
    with open(art / name, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match=rf"file {name} is truncated or padded"):
        load_artifact(art)


@pytest.mark.parametrize("node,key", [("fc1", "weight"), ("pw", "mult"), ("dw", "in_index")])
def test_flipped_byte_fails_the_checksum(art, node, key):
    name = param_file(art, node, key)
    data = bytearray((art / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (art / name).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=rf"checksum mismatch in {name}"):
        load_artifact(art)


def test_weight_out_of_range_with_valid_checksum(art):
    name = param_file(art, "stem", "weight")
    data = bytearray((art / name).read_bytes())
    data[0] = 0x80  # -128: outside the narrow 8-bit range -127..127
    rewrite(art, name, bytes(data))
    with pytest.raises(ArtifactError, match=r"inconsistent: 'stem': a weight lies outside"):
        load_artifact(art)


def test_4bit_weight_out_of_range_with_valid_checksum(art):
    m = read_manifest(art)
    name = next(n for n in m["nodes"] if n["name"] == "pw")["params"]["weight"]["streams"]["4"]
    name = name["file"]
    data = bytearray((art / name).read_bytes())
    data[0] = (data[0] & 0xF0) | 0x8  # -8: outside the narrow 4-bit range -7..7
    rewrite(art, name, bytes(data))
    with pytest.raises(ArtifactError, match=r"'pw': a weight lies outside"):
        load_artifact(art)


def test_zero_shift_with_valid_checksum(art):
    name = param_file(art, "dw", "shift")
    data = bytearray((art / name).read_bytes())
    data[3] = 0
    rewrite(art, name, bytes(data))
    with pytest.raises(ArtifactError, match=r"'dw': shift must hold 24 values in \[1, 62\]"):
        load_artifact(art)


@pytest.mark.parametrize(
    "field, bits", [("skip_mult", OPERAND_MULT_BITS), ("mult", REQUANT_MANTISSA_BITS)]
)
def test_multiplier_too_wide_with_valid_checksum(art, field, bits):
    name = param_file(art, "pw", field)
    a = np.frombuffer((art / name).read_bytes(), "<i8").copy()
    a[0] = 1 << bits
    rewrite(art, name, a.tobytes())
    with pytest.raises(ArtifactError, match=rf"'pw': {field} must hold 24 values"):
        load_artifact(art)


def test_index_not_a_permutation_with_valid_checksum(art):
    name = param_file(art, "pw", "skip_index")
    a = np.frombuffer((art / name).read_bytes(), "<i4").copy()
    a[1] = a[0]
    rewrite(art, name, a.tobytes())
    with pytest.raises(ArtifactError, match=r"'pw': skip_index is not a permutation"):
        load_artifact(art)


def test_tampered_manifest_values_are_caught_by_validation(art):
    m = read_manifest(art)
    m["tensors"]["stem"]["scale"] = -1.0
    write_manifest(art, m)
    with pytest.raises(ArtifactError, match=r"'stem': scales must be finite positive"):
        load_artifact(art)
    m["tensors"]["stem"]["scale"] = 0.1
    next(n for n in m["nodes"] if n["name"] == "dw")["attrs"]["hi"] = 99
    write_manifest(art, m)
    with pytest.raises(ArtifactError, match=r"'dw': clamp \[0, 99\] lies outside"):
        load_artifact(art)


def test_bad_array_reference(art):
    m = read_manifest(art)
    next(n for n in m["nodes"] if n["name"] == "stem")["params"]["bias"]["dtype"] = "float64"
    write_manifest(art, m)
    with pytest.raises(ArtifactError, match="bad array reference"):
        load_artifact(art)


def test_missing_manifest_entry(art):
    m = read_manifest(art)
    del m["tensors"]
    write_manifest(art, m)
    with pytest.raises(ArtifactError, match="lacks or misstates an entry"):
        load_artifact(art)


@pytest.mark.parametrize("escape", ["../x.bin", "nodes/../../x.bin", "/tmp/x.bin"])
def test_file_path_escaping_the_directory(art, escape):
    name = param_file(art, "stem", "bias")
    data = (art / name).read_bytes()
    outside = (art / escape).resolve() if not escape.startswith("/") else Path(escape)
    if not escape.startswith("/"):
        outside.write_bytes(data)  # a valid copy outside, so only the path check can refuse
    m = read_manifest(art)
    next(n for n in m["nodes"] if n["name"] == "stem")["params"]["bias"]["file"] = escape
    m["files"][escape] = m["files"][name]
    write_manifest(art, m)
    with pytest.raises(ArtifactError, match="lies outside the artifact directory"):
        load_artifact(art)


def test_symlink_out_of_the_directory(art, tmp_path):
    name = param_file(art, "stem", "bias")
    target = tmp_path / "elsewhere.bin"
    target.write_bytes((art / name).read_bytes())
    (art / name).unlink()
    os.symlink(target, art / name)
    with pytest.raises(ArtifactError, match="lies outside the artifact directory"):
        load_artifact(art)


def test_file_not_in_the_file_list(art):
    m = read_manifest(art)
    name = param_file(art, "stem", "bias")
    del m["files"][name]
    write_manifest(art, m)
    with pytest.raises(ArtifactError, match=rf"refers to '{name}', which its file list lacks"):
        load_artifact(art)


def test_missing_file(art):
    name = param_file(art, "fc2", "weight")
    (art / name).unlink()
    with pytest.raises(ArtifactError, match=rf"file {name} of the artifact is missing"):
        load_artifact(art)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_save_refuses_a_foreign_directory_and_leaves_it_untouched(graph, tmp_path):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    (out / "sub" / "data.bin").write_bytes(b"\x01\x02")
    before = _tree(out)
    with pytest.raises(ArtifactError, match=r"exists and is not a filmqnn artifact.*nothing "
                                            r"written"):
        save_artifact(graph, out)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary left


def test_save_refuses_a_regular_file(graph, tmp_path):
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(ArtifactError, match="is not a filmqnn artifact"):
        save_artifact(graph, out)
    assert out.read_text() == "x"


def test_save_into_an_empty_directory(graph, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    save_artifact(graph, out)
    assert_graphs_equal(graph, load_artifact(out))


def test_resave_replaces_an_existing_artifact(graph, lowered, tiling, tmp_path):
    out = tmp_path / "a"
    save_artifact(graph, out)
    (out / "stale.bin").write_bytes(b"old")  # a file only the old directory holds
    plain = mark_unreordered(lowered("user_cnn"), tiling)
    save_artifact(plain, out)
    back = load_artifact(out)
    assert not back.reordered
    assert_graphs_equal(plain, back)
    m = read_manifest(out)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(m["files"]) | {MANIFEST}  # nothing of the old artifact is left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_failed_save_leaves_no_temporary_and_keeps_the_old_artifact(graph, tmp_path,
                                                                    monkeypatch):
    out = tmp_path / "a"
    save_artifact(graph, out)
    before = _tree(out)

    def boom(w, g):
        w.write("nodes/partial.bin", b"123")
        raise RuntimeError("disk full")

    monkeypatch.setattr(artifact_mod, "manifest_of", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_artifact(graph, out)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_invalid_graph_is_not_saved(graph, tmp_path):
    import copy

    bad = copy.deepcopy(graph)
    bad.nodes[0].params["shift"] = bad.nodes[0].params["shift"] * 0
    with pytest.raises(ValueError, match=r"'stem': shift must hold"):
        save_artifact(bad, tmp_path / "bad")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit", [
    lambda a: a.update(stride=[0, 0]),
    lambda a: a.pop("kernel"),
    lambda a: a.pop("hi"),
    lambda a: a.update(padding="xy"),
], ids=["stride-0", "no-kernel", "no-hi", "padding-str"])
def test_tampered_attrs_are_refused_with_artifact_error(art, edit):
    m = read_manifest(art)
    edit(next(n for n in m["nodes"] if n["name"] == "stem")["attrs"])
    write_manifest(art, m)
    with pytest.raises(ArtifactError):
        load_artifact(art)
