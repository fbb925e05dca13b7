"""Engine layer shapes of a deployed model: read from an integer artifact (``filmqnn export``).

Reads ``DIR/manifest.json`` and each conv / fc node's per-filter bit widths with json and
numpy only (no torch, no ``filmqnn.lower``), so ``filmqnn explore --artifact DIR`` starts as
fast as ``--model``. The tensor ids follow ``hw.trace``: the index of the producing layer,
-1 for the network input (and for the output of a standalone add, which is not modelled).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from filmqnn.hw.layers import LayerShape

#: Format name and version of ``lower.artifact`` (a test keeps them equal; importing that
#: module would import torch).
FORMAT = "filmqnn.artifact"
VERSION = 1
MANIFEST = "manifest.json"
TILING_KEYS = ("tm", "tm8", "tn", "g", "axi_bits")


class ArtifactLayersError(ValueError):
    """The artifact is missing, corrupt or holds a layer the engine model cannot run."""


def _manifest(path: str | Path) -> tuple[Path, dict[str, Any]]:
    root = Path(path)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise ArtifactLayersError(
            f"{root} is not an artifact directory (no {MANIFEST}); create one with "
            "`filmqnn export --checkpoint CKPT --out DIR`"
        )
    try:
        m = json.loads(mpath.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactLayersError(
            f"{mpath} is not valid JSON ({exc}); re-export the artifact"
        ) from exc
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ArtifactLayersError(f"{mpath} is not a filmqnn artifact manifest; re-export it")
    if m.get("version") != VERSION:
        raise ArtifactLayersError(
            f"artifact version {m.get('version')!r} is not supported (this filmqnn reads version "
            f"{VERSION}); re-export it with this filmqnn"
        )
    return root, m


def _read_bits(root: Path, m: dict[str, Any], node: str, ref: Any, filters: int) -> np.ndarray:
    """The uint8 per-filter bit widths of a node, checked against the manifest's SHA-256."""
    if not isinstance(ref, dict) or ref.get("dtype") != "uint8":
        raise ArtifactLayersError(f"node {node}: bad bits reference {ref!r}; re-export")
    name = ref.get("file")
    files = m["files"]
    if not isinstance(name, str) or name not in files:
        raise ArtifactLayersError(f"manifest refers to {name!r}, which its file list lacks")
    path = (root / name).resolve()
    if root.resolve() not in path.parents:
        raise ArtifactLayersError(f"file {name!r} lies outside the artifact directory")
    if not path.is_file():
        raise ArtifactLayersError(f"file {name} of the artifact is missing; re-export it")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != files[name].get("sha256"):
        raise ArtifactLayersError(
            f"checksum mismatch in {name}: the file was modified or corrupted; re-export"
        )
    bits = np.frombuffer(data, dtype=np.uint8)
    if bits.size != filters:
        raise ArtifactLayersError(
            f"{name} holds {bits.size} bit widths, node {node} has {filters} filters; re-export"
        )
    return bits


def _square(node: str, key: str, v: Any) -> int:
    """The one value of a square [a, a] attribute; the engine model runs square windows only."""
    vals = [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)]
    if len(set(vals)) != 1:
        raise ArtifactLayersError(
            f"layer {node}: non-square {key} {vals} is not supported by the engine model"
        )
    return vals[0]


def _layers(root: Path, m: dict[str, Any]) -> list[LayerShape]:
    tensors: dict[str, Any] = m["tensors"]
    raw = {m["input"]}  # tensors holding the 8-bit network input (also after pool / flatten)
    producer: dict[str, int] = {}  # tensor name -> index of the engine layer writing it
    flat_src: dict[str, str] = {}  # flatten output -> its [C, H, W] input
    out: list[LayerShape] = []

    def shape(t: str) -> list[int]:
        return [int(d) for d in tensors[t]["shape"]]

    for e in m["nodes"]:
        name, op, ins = e["name"], e["op"], list(e["inputs"])
        attrs, src = e.get("attrs", {}), ins[0]
        tin = producer.get(src, -1)
        if op == "flatten":
            flat_src[e["output"]] = src
            if src in producer:
                producer[e["output"]] = producer[src]
            if src in raw:
                raw.add(e["output"])
            continue
        if op == "add":  # standalone add of two tensors: not an engine layer
            continue
        if op in ("conv", "fc"):
            m_out = shape(e["output"])[0]
            bits = _read_bits(root, m, name, e["params"].get("bits"), m_out)
            all8 = bool((bits == 8).all())
        else:
            m_out, all8 = 0, False
        if op == "conv":
            n, h, w = shape(src)
            _, r, c = shape(e["output"])
            k = _square(name, "kernel", attrs["kernel"])
            s = _square(name, "stride", attrs["stride"])
            p = _square(name, "padding", attrs["padding"])
            g = int(attrs.get("groups", 1))
            if g == 1:
                kind = "conv"
            elif g == n == m_out:
                kind = "dwconv"
            else:
                raise ArtifactLayersError(
                    f"layer {name}: grouped conv with groups={g} is not supported"
                )
            ly = LayerShape(name, kind, n, m_out, h, w, r, c, k, s, p, g, all8=all8)
        elif op == "fc":
            chw = shape(flat_src[src]) if src in flat_src else []
            if len(chw) == 3 and chw[1] * chw[2] > 1:  # runs as a conv covering the whole map
                ch, h, w = chw
                if h != w:
                    raise ArtifactLayersError(
                        f"layer {name}: fc over a non-square {h}x{w} map is not supported"
                    )
                ly = LayerShape(name, "conv", ch, m_out, h, w, 1, 1, h, all8=all8)
            else:
                ly = LayerShape(name, "fc", shape(src)[0], m_out, 1, 1, 1, 1, 1, all8=all8)
        elif op == "maxpool":
            n, h, w = shape(src)
            _, r, c = shape(e["output"])
            k = _square(name, "kernel", attrs["kernel"])
            s = _square(name, "stride", attrs["stride"])
            p = _square(name, "padding", attrs["padding"])
            ly = LayerShape(name, "maxpool", n, n, h, w, r, c, k, s, p, n)
        elif op == "gap":
            n, h, w = shape(src)
            ly = LayerShape(name, "gap", n, n, h, w, 1, 1, h, 1, 0, n)
        else:
            raise ArtifactLayersError(f"node {name}: operation {op!r} is not supported")
        first = op in ("conv", "fc") and src in raw
        skip = producer.get(ins[1], -1) if op in ("conv", "fc") and len(ins) > 1 else -1
        ly = replace(
            ly, first=first, signed_in=first or bool(tensors[src]["signed"]),
            residual=op in ("conv", "fc") and len(ins) > 1, tin=tin, tout=len(out), tskip=skip,
        )
        if op == "maxpool" and src in raw:
            raw.add(e["output"])
        producer[e["output"]] = len(out)
        out.append(ly)
    return out


def artifact_layers(path: str | Path) -> list[LayerShape]:
    """Engine layers of the model an artifact holds, in node order; ``all8`` from its bits."""
    root, m = _manifest(path)
    try:
        layers = _layers(root, m)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        if isinstance(exc, ArtifactLayersError):
            raise
        raise ArtifactLayersError(
            f"{root / MANIFEST} lacks or misstates an entry ({exc!r}); re-export the artifact"
        ) from exc
    if not any(ly.kind in ("conv", "dwconv", "fc") for ly in layers):
        raise ArtifactLayersError(f"artifact {root} has no conv or fc layer the engine could run")
    return layers


def artifact_tiling(path: str | Path) -> dict[str, int]:
    """The tiling the artifact is laid out for: tm, tm8, tn, g, axi_bits."""
    root, m = _manifest(path)
    t = m.get("tiling")
    if not isinstance(t, dict) or not all(
        isinstance(t.get(k), int) and not isinstance(t.get(k), bool) for k in TILING_KEYS
    ):
        raise ArtifactLayersError(
            f"{root / MANIFEST}: tiling {t!r} lacks one of {TILING_KEYS}; re-export the artifact"
        )
    return {k: int(t[k]) for k in TILING_KEYS}
