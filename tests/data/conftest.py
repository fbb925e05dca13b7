"""Shared helpers for the data tests: writing tiny IDX files."""

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def _write_idx(path: Path, array: np.ndarray, type_byte: int = 0x08) -> None:
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(array.dtype.newbyteorder(">")).tobytes())


@pytest.fixture
def write_idx() -> Callable[..., None]:
    """``write_idx(path, array, type_byte=0x08)`` writes a gzip IDX file (big-endian header)."""
    return _write_idx
