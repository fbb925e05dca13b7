"""The number formats of DESIGN.md §2 (``filmqnn.formats``, torch-free): ranges and checks."""

import pytest

from filmqnn.formats import (
    ACC_BITS,
    ACT_BITS,
    INPUT_BITS,
    INPUT_FORMAT,
    SUPPORTED_WEIGHT_BITS,
    WEIGHT_BITS_HIGH,
    WEIGHT_BITS_LOW,
    IntFormat,
    activation_format,
    weight_format,
)


def test_format_ranges_match_design():
    assert (weight_format(4).qmin, weight_format(4).qmax) == (-7, 7)
    assert (weight_format(8).qmin, weight_format(8).qmax) == (-127, 127)
    assert (activation_format(5).qmin, activation_format(5).qmax) == (0, 31)
    assert (activation_format(5, signed=True).qmin, activation_format(5, True).qmax) == (-16, 15)
    assert (INPUT_FORMAT.qmin, INPUT_FORMAT.qmax) == (-128, 127)
    with pytest.raises(ValueError, match="weight bit width 9"):
        weight_format(9)


def test_default_bit_widths_are_the_papers():
    assert (WEIGHT_BITS_LOW, WEIGHT_BITS_HIGH, ACT_BITS, INPUT_BITS, ACC_BITS) == (4, 8, 5, 8, 32)
    assert WEIGHT_BITS_LOW in SUPPORTED_WEIGHT_BITS and WEIGHT_BITS_HIGH in SUPPORTED_WEIGHT_BITS
    assert activation_format() == IntFormat(ACT_BITS, signed=False)


def test_signed_wide_and_narrow_ranges():
    wide, narrow = IntFormat(8, signed=True), IntFormat(8, signed=True, narrow=True)
    assert (wide.qmin, wide.qmax) == (-128, 127)
    assert (narrow.qmin, narrow.qmax) == (-127, 127)
    with pytest.raises(ValueError, match="activation bit width 1"):
        activation_format(1)
