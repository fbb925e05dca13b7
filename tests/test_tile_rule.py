"""The tile rule, one torch-free function for the assignment, the lowering and the model."""

import numpy as np
import pytest

from filmqnn.hw.design import EngineOptions
from filmqnn.hw.dse import _tm8
from filmqnn.hw.layers import LayerShape
from filmqnn.hw.performance import m_passes
from filmqnn.tile_rule import high_filter_count, tile_high_filters, tiled_high_filters


def test_examples_from_design():
    assert tile_high_filters(32, 0.05) == 2  # round(1.6)
    assert tile_high_filters(16, 0.05) == 1  # max(1, round(0.8))
    assert tile_high_filters(8, 0.0) == 0  # no 8-bit slot without 8-bit filters
    assert high_filter_count(33, 0.05, tm=32) == 3  # a partial tile of one filter holds one
    assert high_filter_count(3, 0.05, tm=32) == 2
    with pytest.raises(ValueError, match="Tm must be >= 1"):
        tile_high_filters(0, 0.05)


@pytest.mark.parametrize("ratio", [0.0, 0.05, 0.125, 0.5])
def test_model_and_dse_count_as_the_assignment(ratio):
    """For every layer size and tile size, the model's 8-bit filters (``m_passes``) and the
    DSE's Tm8 are the assignment's."""
    tms = np.array([8, 12, 16, 20, 32, 48, 64])
    tm8 = _tm8("mixed", ratio, tms)
    assert tm8.tolist() == [tile_high_filters(int(t), ratio) for t in tms]
    for m in (1, 3, 16, 17, 33, 100, 1000):
        ly = LayerShape("x", "conv", 8, m, 4, 4, 4, 4, 1)
        _, _, m8 = m_passes(ly, tms - tm8, tm8, EngineOptions())
        assert m8.tolist() == [high_filter_count(m, ratio, int(t)) for t in tms]
        assert m8.tolist() == tiled_high_filters(m, tms, tm8).tolist()
