"""Engine layer shapes of a deployed model: read from an integer artifact (``filmqnn export``).

Reads ``DIR/manifest.json`` and each conv / fc node's per-filter bit widths through the
torch-free ``lower.manifest`` (never ``lower.artifact``, which imports torch), so
``filmqnn explore --artifact DIR`` starts as fast as ``--model``. The tensor ids follow
``hw.trace``: the index of the producing layer, -1 for the network input (and for the output
of a standalone add, which is not modelled).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from filmqnn.hw.gathers import extra_groups
from filmqnn.hw.layers import LayerShape
from filmqnn.lower.manifest import (  # noqa: F401 - FORMAT, VERSION: the manifest this reads
    FORMAT,
    MANIFEST,
    VERSION,
    ArtifactError,
    CheckedFiles,
    read_manifest,
)

TILING_KEYS = ("tm", "tm8", "tn", "g", "axi_bits")
#: One error for every artifact problem, the lowering stage's own (a ValueError).
ArtifactLayersError = ArtifactError


def _read_bits(files: CheckedFiles, node: str, ref: Any, filters: int) -> np.ndarray:
    """The uint8 per-filter bit widths of a node (place, size and SHA-256 checked)."""
    if not isinstance(ref, dict) or ref.get("dtype") != "uint8":
        raise ArtifactError(f"node {node}: bad bits reference {ref!r}; re-export")
    bits = np.frombuffer(files.read(ref.get("file")), dtype=np.uint8)
    if bits.size != filters:
        raise ArtifactError(
            f"{ref['file']} holds {bits.size} bit widths, node {node} has {filters} filters; "
            "re-export"
        )
    return bits


def _window(node: str, attrs: dict[str, Any]) -> tuple[int, int, int]:
    """Square kernel, stride and padding of a conv / max pool."""
    return tuple(_square(node, k, attrs[k]) for k in ("kernel", "stride", "padding"))


def _square(node: str, key: str, v: Any) -> int:
    """The one value of a square [a, a] attribute; the engine model runs square windows only."""
    vals = [int(x) for x in v] if isinstance(v, (list, tuple)) else [int(v)]
    if len(set(vals)) != 1:
        raise ArtifactError(
            f"layer {node}: non-square {key} {vals} is not supported by the engine model"
        )
    return vals[0]


def _gather(files: CheckedFiles, e: dict[str, Any], key: str, tiling: dict[str, int] | None
            ) -> tuple[int, int, float, int] | None:
    """(tm, g, extra groups per tile, index stored) of a node's gather on the artifact's
    tiling (no index: the operand is in order); None when the artifact is not reordered."""
    if tiling is None:
        return None
    tm, g = tiling["tm"], tiling["g"]
    ref = e["params"].get(key)
    if ref is None:
        return tm, g, 0.0, 0
    if not isinstance(ref, dict) or ref.get("dtype") not in ("int32", "int64"):
        raise ArtifactError(f"node {e['name']}: bad {key} reference {ref!r}; re-export")
    idx = np.frombuffer(files.read(ref.get("file")), dtype=ref["dtype"])
    return tm, g, round(extra_groups(idx, tm, g), 4), 1


def _layers(files: CheckedFiles, m: dict[str, Any]) -> list[LayerShape]:
    tensors: dict[str, Any] = m["tensors"]
    tiling = m.get("tiling") if m.get("reordered") else None
    raw = {m["input"]}  # tensors holding the 8-bit network input (also after pool / flatten)
    producer: dict[str, int] = {}  # tensor name -> index of the engine layer writing it
    flat_src: dict[str, str] = {}  # flatten output -> its [C, H, W] input
    out: list[LayerShape] = []
    unseen: set[int] = set()  # layers whose output a node the model does not run reads

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
        if op == "add":  # standalone add of two tensors: not an engine layer of the model, so
            # its operands stay in DDR (the store's plan cannot see this reader)
            unseen.update(producer[t] for t in ins if t in producer)
            continue
        if op in ("conv", "fc"):
            m_out = shape(e["output"])[0]
            bits = _read_bits(files, name, e["params"].get("bits"), m_out)
            all8 = bool((bits == 8).all())
        else:
            m_out, all8 = 0, False
        if op == "conv":
            n, h, w = shape(src)
            _, r, c = shape(e["output"])
            k, s, p = _window(name, attrs)
            g = int(attrs.get("groups", 1))
            if g == 1:
                kind = "conv"
            elif g == n == m_out:
                kind = "dwconv"
            else:
                raise ArtifactError(
                    f"layer {name}: grouped conv with groups={g} is not supported"
                )
            ly = LayerShape(name, kind, n, m_out, h, w, r, c, k, s, p, g, all8=all8,
                            in_gather=_gather(files, e, "in_index", tiling)
                            if kind == "dwconv" else None)
        elif op == "fc":
            chw = shape(flat_src[src]) if src in flat_src else []
            if len(chw) == 3 and chw[1] * chw[2] > 1:  # runs as a conv covering the whole map
                ch, h, w = chw
                if h != w:
                    raise ArtifactError(
                        f"layer {name}: fc over a non-square {h}x{w} map is not supported"
                    )
                ly = LayerShape(name, "conv", ch, m_out, h, w, 1, 1, h, all8=all8)
            else:
                ly = LayerShape(name, "fc", shape(src)[0], m_out, 1, 1, 1, 1, 1, all8=all8)
        elif op == "maxpool":
            n, h, w = shape(src)
            _, r, c = shape(e["output"])
            k, s, p = _window(name, attrs)
            ly = LayerShape(name, "maxpool", n, n, h, w, r, c, k, s, p, n)
        elif op == "gap":
            n, h, w = shape(src)
            ly = LayerShape(name, "gap", n, n, h, w, 1, 1, h, 1, 0, n)
        else:
            raise ArtifactError(f"node {name}: operation {op!r} is not supported")
        first = op in ("conv", "fc") and src in raw
        skip = producer.get(ins[1], -1) if op in ("conv", "fc") and len(ins) > 1 else -1
        ly = replace(
            ly, first=first, signed_in=first or bool(tensors[src]["signed"]),
            residual=op in ("conv", "fc") and len(ins) > 1, tin=tin, tout=len(out), tskip=skip,
            int32_out=op in ("conv", "fc") and "lo" not in attrs,
            skip_gather=_gather(files, e, "skip_index", tiling)
            if op in ("conv", "fc") and len(ins) > 1 else None,
        )
        if op == "maxpool" and src in raw:
            raw.add(e["output"])
        producer[e["output"]] = len(out)
        out.append(ly)
    return [replace(ly, tout=-1) if i in unseen else ly for i, ly in enumerate(out)]


def artifact_layers(path: str | Path) -> list[LayerShape]:
    """Engine layers of the model an artifact holds, in node order; ``all8`` from its bits."""
    root, m = read_manifest(path)
    try:
        layers = _layers(CheckedFiles(root, m["files"]), m)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(
            f"{root / MANIFEST} lacks or misstates an entry ({exc!r}); re-export the artifact"
        ) from exc
    if not any(ly.kind in ("conv", "dwconv", "fc") for ly in layers):
        raise ArtifactError(f"artifact {root} has no conv or fc layer the engine could run")
    return layers


def artifact_tiling(path: str | Path) -> dict[str, int]:
    """The tiling the artifact is laid out for: tm, tm8, tn, g, axi_bits."""
    root, m = read_manifest(path)
    t = m.get("tiling")
    if not isinstance(t, dict) or not all(
        isinstance(t.get(k), int) and not isinstance(t.get(k), bool) for k in TILING_KEYS
    ):
        raise ArtifactError(
            f"{root / MANIFEST}: tiling {t!r} lacks one of {TILING_KEYS}; re-export the artifact"
        )
    return {k: int(t[k]) for k in TILING_KEYS}
