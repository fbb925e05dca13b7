"""The artifact's manifest and its checked files, torch-free: read by `lower.artifact` and by
the hardware model (`hw.artifact_layers`, which must start without torch)."""

import hashlib
import json
from pathlib import Path
from typing import Any

FORMAT = "filmqnn.artifact"
VERSION = 1
MANIFEST = "manifest.json"


class ArtifactError(ValueError):
    """An artifact is missing, of another version, corrupt, truncated or inconsistent."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(root, manifest) of an artifact directory, format and version checked."""
    root = Path(path)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise ArtifactError(
            f"{root} is not an artifact directory (no {MANIFEST}); create one with "
            "`filmqnn export --checkpoint CKPT --out DIR`"
        )
    try:
        m = json.loads(mpath.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{mpath} is not valid JSON ({exc}); re-export the artifact") from exc
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ArtifactError(f"{mpath} is not a filmqnn artifact manifest")
    if m.get("version") != VERSION:
        raise ArtifactError(
            f"artifact version {m.get('version')!r} is not supported (this filmqnn reads version "
            f"{VERSION}); re-export it with this filmqnn"
        )
    return root, m


class CheckedFiles:
    """Reads the files a manifest lists, each checked for place, size and SHA-256."""

    def __init__(self, root: Path, files: dict[str, Any]) -> None:
        self.root = root
        self.files = files

    def read(self, name: Any) -> bytes:
        if not isinstance(name, str) or name not in self.files:
            raise ArtifactError(f"manifest refers to {name!r}, which its file list lacks")
        path = (self.root / name).resolve()
        if self.root.resolve() not in path.parents:
            raise ArtifactError(f"file {name!r} lies outside the artifact directory")
        if not path.is_file():
            raise ArtifactError(f"file {name} of the artifact is missing; re-export it")
        data = path.read_bytes()
        want = self.files[name]
        if len(data) != want.get("bytes"):
            raise ArtifactError(
                f"file {name} is truncated or padded: {len(data)} bytes, the manifest says "
                f"{want.get('bytes')}; re-export the artifact"
            )
        if sha256(data) != want.get("sha256"):
            raise ArtifactError(
                f"checksum mismatch in {name}: the file was modified or corrupted; re-export"
            )
        return data
