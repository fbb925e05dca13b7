"""The deploy bundle as the board reads it: ``bundle.json`` plus checksummed files.

``filmqnn deploy`` writes the bundle (``filmqnn.pynq.deploy``); this module reads it with
numpy and the standard library only (Python 3.8), checking every listed file's size and
SHA-256 before the driver uses it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

BUNDLE_FORMAT = "filmqnn.pynq-bundle/1"
META = "bundle.json"
DDR = "ddr.bin"
BITSTREAM, HWH = "filmqnn.bit", "filmqnn.hwh"


class BundleError(ValueError):
    """A bundle is missing, foreign, incomplete or corrupt."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Bundle:
    """A bundle's metadata and DDR image (``meta`` is bundle.json; ``root`` None in memory)."""

    def __init__(self, meta: dict[str, Any], ddr: np.ndarray, root: Path | None = None) -> None:
        self.meta = meta
        self.ddr = ddr
        self.root = root

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        """Reads ``bundle.json`` and ``ddr.bin``, every file it lists checked for presence, size
        and SHA-256."""
        root = Path(path)
        mpath = root / META
        if not mpath.is_file():
            raise BundleError(f"{root} is not a filmqnn bundle (no {META}); write one with "
                              "`filmqnn deploy --artifact DIR --project DIR --out DIR`")
        try:
            meta = json.loads(mpath.read_text())
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleError(f"{mpath} is not valid JSON ({exc}); copy the bundle again") \
                from exc
        if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{mpath} is not a {BUNDLE_FORMAT} bundle; rerun `filmqnn deploy`"
                              " with this driver's filmqnn")
        files = meta.get("files", {})
        if DDR not in files:
            raise BundleError(f"{mpath} lists no {DDR}; rerun `filmqnn deploy`")
        for rel, want in files.items():
            f = root / rel
            if not f.is_file():
                raise BundleError(f"{f} is missing from the bundle; copy the whole bundle "
                                  "directory again (or rerun `filmqnn deploy`)")
            if f.stat().st_size != want["bytes"] or sha256_file(f) != want["sha256"]:
                raise BundleError(f"{f} differs from bundle.json's checksum (corrupt or edited "
                                  "copy); copy the bundle again")
        ddr = np.fromfile(str(root / DDR), dtype=np.uint8)
        return cls(meta, ddr, root)

    @property
    def design_id(self) -> str:
        """The kernel the bundle's DDR image was laid out for."""
        return str(self.meta["design_id"])

    @property
    def ports(self) -> int:
        return int(self.meta["engine"]["ports"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.meta["input"]["shape"])

    @property
    def classes(self) -> list[str]:
        """Class names (or their numbers as text when the data set names none)."""
        names = self.meta.get("classes")
        if names:
            return [str(n) for n in names]
        return [str(k) for k in range(int(self.meta["outputs"][0]["shape"][0]))]

    def bitstream(self) -> Path:
        """Path of the bundle's bitstream (its ``.hwh`` lies beside it)."""
        if self.root is None or BITSTREAM not in self.meta.get("files", {}):
            raise BundleError(f"the bundle has no {BITSTREAM}: build it with the Vivado step "
                              "(vivado -mode batch -source <project>/vivado/<board>_bd.tcl) and "
                              "rerun `filmqnn deploy --bitstream <project>/vivado/filmqnn.bit`")
        return self.root / BITSTREAM
