"""The integer artifact on disk: a directory with manifest.json (format version, graph, tensor
formats and scales, tiling, SHA-256 of every binary) and raw little-endian binaries. No pickle;
written into a temporary directory and renamed into place; every read is checked."""

import json
from pathlib import Path
from typing import Any

import numpy as np

from filmqnn.atomic import atomic_dir
from filmqnn.formats import ACC_BITS, ACT_BITS, INPUT_BITS
from filmqnn.lower.graph import IntGraph, Node, TensorInfo
from filmqnn.lower.manifest import (
    FORMAT,
    MANIFEST,
    VERSION,
    ArtifactError,
    CheckedFiles,
    read_manifest,
    sha256,
)
from filmqnn.lower.requant import OPERAND_MULT_BITS, REQUANT_MANTISSA_BITS
from filmqnn.lower.tiling import Tiling
from filmqnn.lower.validate import validate_graph
from filmqnn.lower.weight_layout import pack_stream, stream_bits, stream_index, unpack_streams

WEIGHT_LAYOUT = "filmqnn.weight-stream/1"
DTYPES = {"int8": "<i1", "uint8": "<u1", "int32": "<i4", "int64": "<i8"}
PARAM_DTYPES = {"bits": "uint8", "shift": "uint8", "mult": "int64", "mult_b": "int64",
                "skip_mult": "int64"}  # every other parameter: int32


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, dict[str, Any]] = {}

    def write(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files[name] = {"sha256": sha256(data), "bytes": len(data)}
        return name

    def array(self, name: str, a: np.ndarray, dtype: str) -> dict[str, Any]:
        data = np.ascontiguousarray(a, dtype=DTYPES[dtype]).tobytes()
        return {"file": self.write(name, data), "dtype": dtype, "shape": list(a.shape)}


def _node_entry(w: _Writer, node: Node, tiling: Tiling) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in node.params.items():
        stem = f"nodes/{node.name}.{key}"
        if key == "weight":
            bits, depthwise = node.params["bits"], node.attrs.get("groups", 1) > 1
            streams = {}
            for b in stream_bits(bits):
                index = stream_index(value.shape, bits, b, tiling, depthwise)
                data = pack_stream(value, index, b)
                streams[str(b)] = {"file": w.write(f"{stem}.w{b}.bin", data.tobytes())}
            params[key] = {"layout": WEIGHT_LAYOUT, "shape": list(value.shape), "streams": streams}
        else:
            params[key] = w.array(f"{stem}.bin", value, PARAM_DTYPES.get(key, "int32"))
    return {
        "name": node.name,
        "op": node.op,
        "inputs": node.inputs,
        "output": node.output,
        "attrs": node.attrs,
        "params": params,
    }


def _tensor_entry(w: _Writer, t: TensorInfo) -> dict[str, Any]:
    order = None if t.order is None else w.array(f"tensors/{t.name}.order.bin", t.order, "int32")
    return {"shape": list(t.shape), "bits": t.bits, "signed": t.signed, "scale": t.scale,
            "order": order}


def manifest_of(w: _Writer, graph: IntGraph) -> dict[str, Any]:
    tiling = Tiling.from_dict(graph.tiling or Tiling().to_dict())
    nodes = [_node_entry(w, n, tiling) for n in graph.nodes]
    tensors = {name: _tensor_entry(w, t) for name, t in graph.tensors.items()}
    return {
        "format": FORMAT,
        "version": VERSION,
        "number_formats": {
            "act_bits": ACT_BITS,
            "input_bits": INPUT_BITS,
            "acc_bits": ACC_BITS,
            "requant_mantissa_bits": REQUANT_MANTISSA_BITS,
            "operand_mult_bits": OPERAND_MULT_BITS,
            "requant": "clamp((acc*M + skip*M2 + offset + 2^(S-1)) >> S, lo, hi) in int64",
        },
        "tiling": tiling.to_dict(),
        "reordered": graph.reordered,
        "meta": graph.meta,
        "input": graph.input,
        "outputs": graph.outputs,
        "tensors": tensors,
        "nodes": nodes,
        "files": w.files,
    }


def save_artifact(graph: IntGraph, out: str | Path) -> Path:
    """Write `graph` as an artifact directory `out`, replacing an older artifact atomically."""
    validate_graph(graph)
    out = Path(out)
    with atomic_dir(out, MANIFEST, ArtifactError, "a filmqnn artifact") as tmp:
        w = _Writer(tmp)
        manifest = manifest_of(w, graph)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


class _Reader(CheckedFiles):
    def array(self, ref: Any) -> np.ndarray:
        if not isinstance(ref, dict) or ref.get("dtype") not in DTYPES:
            raise ArtifactError(f"bad array reference {ref!r} in the manifest")
        data = self.read(ref.get("file"))
        shape = tuple(ref.get("shape", ()))
        dt = np.dtype(DTYPES[ref["dtype"]])
        if len(data) != dt.itemsize * int(np.prod(shape)):
            raise ArtifactError(f"{ref['file']} holds {len(data)} bytes, not a {shape} array")
        return np.frombuffer(data, dtype=dt).reshape(shape).copy()


def _node_from(r: _Reader, e: dict[str, Any], tiling: Tiling) -> Node:
    params: dict[str, np.ndarray] = {}
    for key, ref in e["params"].items():
        if key != "weight":
            a = r.array(ref)
            params[key] = a if key in ("bits", "bias") else a.astype(np.int64)
    if "weight" in e["params"]:
        ref = e["params"]["weight"]
        if ref.get("layout") != WEIGHT_LAYOUT or "bits" not in params:
            raise ArtifactError(f"node {e['name']}: unknown weight layout {ref.get('layout')!r}")
        shape = tuple(ref["shape"])
        if len(params["bits"]) != shape[0]:
            raise ArtifactError(f"node {e['name']}: bits and weight disagree on filter count")
        streams = {int(b): np.frombuffer(r.read(s["file"]), np.uint8)
                   for b, s in ref["streams"].items()}
        if sorted(streams) != stream_bits(params["bits"]):
            raise ArtifactError(f"node {e['name']}: weight streams do not match its bit widths")
        try:
            params["weight"] = unpack_streams(
                streams, shape, params["bits"], tiling, e["attrs"].get("groups", 1) > 1
            )
        except ValueError as exc:
            raise ArtifactError(f"node {e['name']}: {exc}") from exc
    return Node(e["name"], e["op"], list(e["inputs"]), e["output"], dict(e["attrs"]), params)


def load_artifact(path: str | Path) -> IntGraph:
    """Read and check an artifact: version, checksums, sizes, shapes and value ranges."""
    root, m = read_manifest(path)
    mpath = root / MANIFEST
    try:
        r = _Reader(root, m["files"])
        tiling = Tiling.from_dict(m["tiling"])
        tensors = {}
        for name, t in m["tensors"].items():
            order = None if t["order"] is None else r.array(t["order"]).astype(np.int64)
            tensors[name] = TensorInfo(name, tuple(t["shape"]), int(t["bits"]), bool(t["signed"]),
                                       t["scale"], order)
        nodes = [_node_from(r, e, tiling) for e in m["nodes"]]
        graph = IntGraph(m["input"], tensors, nodes, list(m["outputs"]), tiling.to_dict(),
                         bool(m["reordered"]), dict(m.get("meta", {})))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{mpath} lacks or misstates an entry ({exc!r}); re-export") from exc
    except ValueError as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"{mpath}: {exc}") from exc
    try:
        validate_graph(graph)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ArtifactError(f"artifact {root} is inconsistent: {exc}; re-export it") from exc
    return graph
