"""Reader for gzip-compressed IDX files (the MNIST / Fashion-MNIST container format)."""

import gzip
import zlib
from pathlib import Path

import numpy as np

from filmqnn.data.errors import DatasetError

# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "IDX file format").
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx_gz(path: Path) -> np.ndarray:
    """Parse a ``.gz`` IDX file into an array, checking magic number, dimensions and size."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{path}: not a readable gzip file ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: bad IDX magic number {raw[:4].hex() or '(empty)'}")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DatasetError(f"{path}: IDX header truncated or has no dimensions (ndim={ndim})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: IDX dims {dims} need {expected} data bytes, file has {len(raw) - header}"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
    )
