"""Compile-time choices `hls/plan.py` derives from the design point for the kernel."""

import pytest

from filmqnn.hls.plan import EngineDesign


@pytest.mark.parametrize("ports,g,post,axi_bits,beats,ii", [
    (2, 4, 8, 64, 2, 3),     # a word's 12 values: one beat needs 2 cycles of 8 lanes, two 3
    (6, 8, 128, 128, 5, 1),  # five beats' 120 values fill the 128 lanes once, six need 2
    (3, 6, 48, 64, 3, 1),    # every port's beat in one cycle
    (2, 8, 16, 128, 2, 3),   # 24 values a beat over 16 lanes
])
def test_write_back_beats_keep_the_post_lanes_busiest(ports, g, post, axi_bits, beats, ii):
    d = EngineDesign(Tm=16, Tm8=2, Tn=4, Tr=4, Tc=6, G=g, post=post, ports=ports,
                     axi_bits=axi_bits)
    assert (d.write_beats, d.write_ii) == (beats, ii)
    vals = d.geo.wpb * g
    assert d.write_ii / d.write_beats == min(-(-b * vals // post) / b
                                             for b in range(1, ports + 1))
