"""Atomic writes of output directories (artifacts, HLS projects, deploy bundles)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_dir(out: str | Path, marker: str, error: type[Exception], what: str) -> Iterator[Path]:
    """Yields a fresh directory beside ``out`` that replaces ``out`` when the block ends; on
    any error nothing is written and an older ``out`` stays. ``out`` may be missing, empty or
    an older directory of the same kind (holding ``marker``); else ``error`` names it ``what``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                               and not (out / marker).is_file())):
        raise error(f"{out} exists and is not {what}; choose another --out (nothing written)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    old = None
    try:
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / "a")
        os.replace(tmp, out)
    except BaseException:
        if old is not None and not out.exists():
            os.replace(old / "a", out)  # put the previous directory back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
