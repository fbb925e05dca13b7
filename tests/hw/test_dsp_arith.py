"""Hand-computed DSP48E1/E2 cases: port cuts, pre-adder and 48-bit P wrap, sign extension."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from filmqnn.hw import dsp_arith as da


def test_port_widths_match_user_guides():
    assert (da.DSP48E1.a_port, da.DSP48E1.a_mult, da.DSP48E1.d_port) == (30, 25, 25)
    assert (da.DSP48E1.preadd, da.DSP48E1.b_port, da.DSP48E1.p_port) == (25, 18, 48)
    assert (da.DSP48E2.a_mult, da.DSP48E2.d_port, da.DSP48E2.preadd) == (27, 27, 27)
    assert da.DSP48E1.product_bits == 43 and da.DSP48E2.product_bits == 45


def test_wrap_signed_and_fields():
    assert da.wrap_signed(127, 8) == 127
    assert da.wrap_signed(128, 8) == -128
    assert da.wrap_signed(-129, 8) == 127
    assert da.signed_field(0b1111_0000, 4, 4) == -1  # sign extension of a 4-bit slice
    assert da.signed_field(-16, 4, 4) == -1
    assert da.bit(-1, 47) == 1 and da.bit(1 << 10, 10) == 1


def test_preadder_wraps_at_25_and_27_bits():
    top = (1 << 24) - 1  # largest 25-bit signed value
    assert da.preadd(da.DSP48E1, top, 1) == -(1 << 24)  # 25-bit AD register wraps
    assert da.preadd(da.DSP48E2, top, 1) == 1 << 24  # fits in 27 bits
    assert da.preadd(da.DSP48E2, (1 << 26) - 1, 1) == -(1 << 26)


def test_a_port_upper_bits_do_not_reach_multiplier():
    # A[29:25] is ignored by the DSP48E1 multiplier path (UG479): 2**25 looks like 0.
    assert da.preadd(da.DSP48E1, 1 << 25, 0) == 0
    assert da.preadd(da.DSP48E1, (1 << 25) + 3, 0) == 3
    assert da.preadd(da.DSP48E2, 1 << 25, 0) == 1 << 25


def test_b_port_is_18_bit_signed():
    assert da.multiply(da.DSP48E1, 1, 1 << 17) == -(1 << 17)
    assert da.multiply(da.DSP48E1, -3, (1 << 17) - 1) == -3 * ((1 << 17) - 1)


def test_p_wraps_at_48_bits():
    big = (1 << 47) - 1
    assert da.mac(da.DSP48E2, 1, 0, 1, big) == -(1 << 47)
    assert da.mac(da.DSP48E1, -1, 0, 1, -(1 << 47)) == big


def test_accumulate_vectorised():
    a = np.array([[3, -4, 5], [1, 1, 1]])
    b = np.array([[2, 2, -1], [7, 7, 7]])
    p = da.accumulate(da.DSP48E1, a, np.zeros_like(a), b)
    assert p.tolist() == [3 * 2 - 4 * 2 - 5, 21]


@given(
    st.integers(-(1 << 23), (1 << 23) - 1),
    st.integers(-(1 << 23), (1 << 23) - 1),
    st.integers(-(1 << 17), (1 << 17) - 1),
)
def test_mac_equals_python_when_in_range(a, d, b):
    assert da.mac(da.DSP48E1, a, d, b) == (a + d) * b


def test_unknown_dsp():
    with pytest.raises(ValueError, match="dsp48e1"):
        da.dsp_spec("dsp48e3")
