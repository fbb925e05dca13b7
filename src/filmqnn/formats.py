"""Number formats of DESIGN.md §2: the one place every stage reads bit widths and ranges.

Torch-free and outside every stage package, so the quantizers, the lowering, the integer
reference, the hardware model, the HLS writer and the board driver all read the same
constants without importing one another."""

from dataclasses import dataclass

WEIGHT_BITS_LOW = 4
WEIGHT_BITS_HIGH = 8
ACT_BITS = 5
INPUT_BITS = 8
ACC_BITS = 32
SUPPORTED_WEIGHT_BITS = (2, 3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class IntFormat:
    """A fixed-point integer format: bit width, signedness and the inclusive integer range."""

    bits: int
    signed: bool
    narrow: bool = False

    @property
    def qmin(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1


def weight_format(bits: int) -> IntFormat:
    """Signed narrow-range weight format: 4 bit is -7..7, 8 bit is -127..127."""
    if bits not in SUPPORTED_WEIGHT_BITS:
        raise ValueError(
            f"weight bit width {bits} not supported; use one of {SUPPORTED_WEIGHT_BITS}"
        )
    return IntFormat(bits, signed=True, narrow=True)


def activation_format(bits: int = ACT_BITS, signed: bool = False) -> IntFormat:
    """Activation format: unsigned 0..2^b-1 after ReLU, signed -2^(b-1)..2^(b-1)-1 without."""
    if not 2 <= bits <= 16:
        raise ValueError(f"activation bit width {bits} outside 2..16")
    return IntFormat(bits, signed=signed, narrow=False)


INPUT_FORMAT = IntFormat(INPUT_BITS, signed=True, narrow=False)
