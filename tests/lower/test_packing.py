"""DDR packing: hand-computed layouts, a loop-based reference, round trips and clear errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filmqnn.hw.design import words_per_beat as hw_words_per_beat
from filmqnn.lower.packing import (
    activation_bytes,
    pack_activations,
    pack_int4,
    unpack_activations,
    unpack_int4,
    words_per_beat,
)

AXIS = (32, 64, 128, 256)


def reference_pack(q, bits, g, axi_bits):
    """Loop-and-integer restatement of the activation layout rules (independent of numpy bits)."""
    q = np.asarray(q).reshape(q.shape[0], *(q.shape[1:] or (1, 1)))
    c, h, w = q.shape
    wpb = max(1, axi_bits // (g * bits))
    words = []
    for cg in range(-(-c // g)):
        for y in range(h):
            for x in range(w):
                word = 0
                for i in range(g):
                    if cg * g + i < c:
                        word |= (int(q[cg * g + i, y, x]) & ((1 << bits) - 1)) << (i * bits)
                words.append(word)
    out = b""
    for start in range(0, len(words), wpb):
        beat = 0
        for j, word in enumerate(words[start : start + wpb]):
            beat |= word << (j * g * bits)
        out += beat.to_bytes(axi_bits // 8, "little")
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, axi_bits // 8)


@st.composite
def act_case(draw):
    axi = draw(st.sampled_from(AXIS))
    bits = draw(st.sampled_from((4, 5, 8)))
    signed = draw(st.booleans())
    g = draw(st.integers(1, min(12, min(64, axi) // bits)))
    shape = (draw(st.integers(1, 40)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = rng.integers(lo, hi + 1, size=shape)
    q.flat[0], q.flat[-1] = lo, hi  # always exercise both extremes
    return q, bits, signed, g, axi


# ---- int4 ----------------------------------------------------------------------------------


def test_int4_every_nibble_pair_matches_byte_formula():
    lo, hi = np.meshgrid(np.arange(-8, 8), np.arange(-8, 8), indexing="ij")
    vals = np.stack([lo.ravel(), hi.ravel()], axis=-1)  # [256, 2]
    packed = pack_int4(vals)
    assert packed.dtype == np.uint8 and packed.shape == (256, 1)
    expected = [(a & 0xF) | ((b & 0xF) << 4) for a, b in vals.tolist()]
    assert packed[:, 0].tolist() == expected
    assert sorted(expected) == list(range(256))
    np.testing.assert_array_equal(unpack_int4(packed), vals)


def test_int4_hand_example():
    np.testing.assert_array_equal(pack_int4(np.array([1, -1, -8, 7])), [0xF1, 0x78])
    out = unpack_int4(np.array([0xF1, 0x78], dtype=np.uint8))
    assert out.dtype == np.int8 and out.tolist() == [1, -1, -8, 7]


@settings(max_examples=60, deadline=None)
@given(
    lead=st.lists(st.integers(1, 4), max_size=3),
    half=st.integers(0, 20),
    seed=st.integers(0, 2**32 - 1),
)
def test_int4_round_trip(lead, half, seed):
    v = np.random.default_rng(seed).integers(-8, 8, size=(*lead, 2 * half))
    p = pack_int4(v)
    assert p.dtype == np.uint8 and p.shape == (*lead, half)
    u = unpack_int4(p)
    assert u.dtype == np.int8
    np.testing.assert_array_equal(u, v)


def test_int4_errors():
    with pytest.raises(ValueError, match="even"):
        pack_int4(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="out of range"):
        pack_int4(np.array([0, 8]))
    with pytest.raises(ValueError, match="out of range"):
        pack_int4(np.array([-9, 0]))
    with pytest.raises(ValueError, match="integer"):
        pack_int4(np.array([0.5, 1.0]))


# ---- words per beat -------------------------------------------------------------------------


def test_words_per_beat_values_and_hw_delegation():
    assert words_per_beat(32, 2, 5) == 3
    assert words_per_beat(64, 12, 5) == 1
    assert words_per_beat(256, 1, 8) == 32
    assert words_per_beat(128, 3) == 128 // 15
    for axi in AXIS:
        for g in range(1, 13):
            if g * 5 <= min(64, axi):
                assert hw_words_per_beat(axi, g) == words_per_beat(axi, g)


def test_words_per_beat_errors():
    with pytest.raises(ValueError, match="64"):
        words_per_beat(256, 13, 5)
    with pytest.raises(ValueError, match="32-bit AXI beat"):
        words_per_beat(32, 7, 5)
    with pytest.raises(ValueError, match="g >= 1"):
        words_per_beat(64, 0, 5)


# ---- activations ----------------------------------------------------------------------------


def test_activation_layout_hand_example():
    # C=3, H=1, W=2, g=2, bits=5, axi=32 -> 3 words of 10 bits per beat, 2 groups x 2 pixels.
    q = np.array([[[1, 2]], [[3, 4]], [[5, 6]]])
    # word0 = c0w0 | c1w0<<5 = 1 | 3<<5 = 97;  word1 = 2 | 4<<5 = 130
    # word2 = c2w0 | 0<<5 = 5;                  word3 = c2w1 = 6
    # beat0 = 97 | 130<<10 | 5<<20 = 0x00520861; beat1 = 6 (rest are zero padding words)
    expected = np.array([[0x61, 0x08, 0x52, 0x00], [0x06, 0x00, 0x00, 0x00]], dtype=np.uint8)
    packed = pack_activations(q, bits=5, signed=False, g=2, axi_bits=32)
    assert packed.dtype == np.uint8
    np.testing.assert_array_equal(packed, expected)
    assert activation_bytes(q.shape, 5, 2, 32) == 8
    np.testing.assert_array_equal(unpack_activations(packed, q.shape, 5, False, 2, 32), q)


def test_activation_signed_hand_example_and_flat_input():
    # -1 -> 0b11111 = 31, -16 -> 0b10000 = 16; word = 31 | 16<<5 = 543 = 0x21F
    packed = pack_activations(np.array([-1, -16]), bits=5, signed=True, g=2, axi_bits=32)
    np.testing.assert_array_equal(packed, [[0x1F, 0x02, 0x00, 0x00]])
    out = unpack_activations(packed, (2,), 5, True, 2, 32)
    assert out.dtype == np.int32 and out.tolist() == [-1, -16]
    # the same bits read as unsigned are the raw fields
    assert unpack_activations(packed, (2,), 5, False, 2, 32).tolist() == [31, 16]


@settings(max_examples=80, deadline=None)
@given(case=act_case())
def test_activation_round_trip_and_reference(case):
    q, bits, signed, g, axi = case
    packed = pack_activations(q, bits, signed, g, axi)
    assert packed.dtype == np.uint8 and packed.shape[1] == axi // 8
    assert packed.size == activation_bytes(q.shape, bits, g, axi)
    np.testing.assert_array_equal(packed, reference_pack(q, bits, g, axi))
    out = unpack_activations(packed, q.shape, bits, signed, g, axi)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, q)
    # a flat [F] map packs like [F, 1, 1], and a flat byte buffer unpacks too
    flat = q[:, 0, 0]
    np.testing.assert_array_equal(
        pack_activations(flat, bits, signed, g, axi),
        pack_activations(flat[:, None, None], bits, signed, g, axi),
    )
    np.testing.assert_array_equal(
        unpack_activations(packed.ravel(), q.shape, bits, signed, g, axi), q
    )


def test_activation_errors():
    q = np.zeros((3, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="out of range"):
        pack_activations(q + 32, 5, False, 2, 32)
    with pytest.raises(ValueError, match="out of range"):
        pack_activations(q - 1, 5, False, 2, 32)
    with pytest.raises(ValueError, match="out of range"):
        pack_activations(q + 16, 5, True, 2, 32)
    with pytest.raises(ValueError, match="out of range"):
        pack_activations(q - 17, 5, True, 2, 32)
    with pytest.raises(ValueError, match="does not fit"):
        pack_activations(q, 8, False, 5, 32)
    with pytest.raises(ValueError, match="exceeds 64"):
        pack_activations(q, 8, False, 9, 128)
    with pytest.raises(ValueError, match="exceeds 64"):
        activation_bytes(q.shape, 8, 9, 128)
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        pack_activations(np.zeros((2, 2), dtype=np.int64), 5, False, 2, 32)
    packed = pack_activations(q, 5, False, 2, 32)
    with pytest.raises(ValueError, match=f"need {packed.size} bytes, got {packed.size - 4}"):
        unpack_activations(packed[:-1], q.shape, 5, False, 2, 32)
    with pytest.raises(ValueError, match="got 4"):
        unpack_activations(np.zeros(4, dtype=np.uint8), q.shape, 5, False, 2, 32)
