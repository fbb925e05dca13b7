"""IDX parsing: valid files round-trip, corrupt ones raise DatasetError with the reason."""

import gzip
import struct

import numpy as np
import pytest

from filmqnn.data.errors import DatasetError
from filmqnn.data.idx import read_idx_gz


def test_roundtrip_uint8_and_int32(tmp_path, write_idx):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", images)
    assert np.array_equal(read_idx_gz(tmp_path / "a.gz"), images)
    values = np.array([-5, 70000], dtype=np.int32)
    write_idx(tmp_path / "b.gz", values, type_byte=0x0C)
    assert read_idx_gz(tmp_path / "b.gz").tolist() == [-5, 70000]


def test_truncated_data_is_reported(tmp_path):
    path = tmp_path / "short.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(DatasetError, match="need 10 data bytes, file has 2"):
        read_idx_gz(path)


def test_bad_magic_is_reported(tmp_path):
    path = tmp_path / "magic.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DatasetError, match="bad IDX magic"):
        read_idx_gz(path)


def test_not_gzip_is_reported(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(DatasetError, match="not a readable gzip file"):
        read_idx_gz(path)
