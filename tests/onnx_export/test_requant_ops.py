"""The ONNX integer requantization (uint64 BitShift of n + 2^62) equals `lower.requant.requantize`
(int64 arithmetic shift) on rounding ties, negative numerators and the extremes of every
operand; the tie cases are ones that truncating division or half-to-even rounding get wrong."""

import numpy as np
import onnx
import pytest
import torch

from filmqnn.lower.requant import requantize
from filmqnn.onnx_export.builder import GraphBuilder, finish_model, value_info
from filmqnn.onnx_export.requant import RequantExportError, add_requant, check_numerator
from filmqnn.onnx_export.runtime import make_session

WIDE = 1 << 60  # clamp bounds that never bind: the raw shifted value is compared


def requant_model(mult, shift, const, skip_mult, lo=-WIDE, hi=WIDE) -> onnx.ModelProto:
    """acc [N, C] and skip [N, C] (int64) -> clamp((acc*M + skip*M2 + const + 2^(S-1)) >> S)."""
    c = len(mult)
    b = GraphBuilder()
    acc, skip = b.reserve("acc"), b.reserve("skip")
    b.reserve("y", hold=True)
    add_requant(b, "rq", [(acc, mult), (skip, skip_mult)], const, shift, lo, hi, np.int64,
                (1, c), out="y")
    ins = [value_info("acc", np.int64, ["N", c]), value_info("skip", np.int64, ["N", c])]
    return finish_model(b, "requant", ins, [value_info("y", np.int64, ["N", c])], {}, "")


def run_onnx(mult, shift, const, skip_mult, acc, skip, lo=-WIDE, hi=WIDE) -> np.ndarray:
    sess = make_session(requant_model(mult, shift, const, skip_mult, lo, hi), threads=1)
    return sess.run(None, {"acc": acc.astype(np.int64), "skip": skip.astype(np.int64)})[0]


def run_torch(mult, shift, const, skip_mult, acc, skip, lo=-WIDE, hi=WIDE) -> np.ndarray:
    t = torch.from_numpy
    return requantize(t(acc.astype(np.int64)), t(mult), t(shift), lo, hi,
                      t(skip.astype(np.int64)), t(skip_mult), t(const)).numpy()


def tie_cases(rng: np.random.Generator, c: int = 300, n: int = 6):
    """Per channel c: an odd M, a shift S <= 31, an offset, a bias, M2, and per row a skip
    value and an accumulator chosen so that acc*M + bias*M + offset + skip*M2 is exactly an
    odd multiple of 2^(S-1): a rounding tie, of either sign."""
    shift = rng.integers(1, 32, size=c)
    mult = rng.integers(0, 1 << 15, size=c) * 2 + 1
    offset = rng.integers(-(1 << 15), (1 << 15) + 1, size=c)
    bias = rng.integers(-(1 << 20), 1 << 20, size=c)
    skip_mult = rng.integers(0, 1 << 32, size=c)
    const = offset + bias * mult
    skip = rng.integers(-128, 128, size=(n, c))
    acc = np.empty((n, c), dtype=np.int64)
    for j in range(c):
        s, m = int(shift[j]), int(mult[j])
        mod = 1 << s
        for i in range(n):
            k = int(const[j]) + int(skip[i, j]) * int(skip_mult[j])
            a0 = ((mod // 2 - k) * pow(m, -1, mod)) % mod  # acc*M + k == 2^(S-1) (mod 2^S)
            span = ((1 << 31) - 1 - a0) // mod
            a = a0 + int(rng.integers(-span, span + 1)) * mod
            acc[i, j] = a if abs(a) < 1 << 31 else a0
    return mult, shift, const, skip_mult, acc, skip


def test_ties_round_half_up_like_the_reference():
    rng = np.random.default_rng(0)
    mult, shift, const, m2, acc, skip = tie_cases(rng)
    num = (acc.astype(object) * mult.astype(object) + const.astype(object)
           + skip.astype(object) * m2.astype(object))
    half = (1 << shift.astype(object)) // 2
    assert np.all(num % (2 * half) == half), "every case is an exact tie"
    assert (num < 0).sum() > 100 and (num > 0).sum() > 100
    got = run_onnx(mult, shift, const, m2, acc, skip)
    want = run_torch(mult, shift, const, m2, acc, skip)
    assert np.array_equal(got, want)
    assert np.array_equal(want, (num + half) // (2 * half))  # floor(x + 1/2), in Python ints
    # the cases discriminate: half to even and half away from zero would differ on many
    flat = [(v, h) for v, h in zip(num.ravel(), np.broadcast_to(half, num.shape).ravel(),
                                   strict=True)]
    even = np.array([v // (2 * h) + (v // (2 * h)) % 2 for v, h in flat]).reshape(num.shape)
    away = np.array([(v + h) // (2 * h) if v > 0 else -((h - v) // (2 * h))
                     for v, h in flat]).reshape(num.shape)
    assert (even != want).sum() > 100 and (away != want).sum() > 100


def test_extreme_operands_and_every_shift():
    rng = np.random.default_rng(1)
    c = 62 * 4
    shift = np.tile(np.arange(1, 63), 4)
    mult = np.concatenate([np.full(62, (1 << 16) - 1), np.zeros(62, np.int64),
                           rng.integers(0, 1 << 16, size=124)])
    bias = rng.choice([-(1 << 31) + 1, (1 << 31) - 1, 0], size=c)
    offset = rng.choice([-(1 << 15), 1 << 15, 0], size=c)
    const = offset + bias * mult
    m2 = rng.choice([0, (1 << 32) - 1, 12345], size=c)
    acc = np.stack([np.full(c, (1 << 31) - 1), np.full(c, -(1 << 31) + 1), np.zeros(c),
                    np.full(c, -1), rng.integers(-(1 << 31) + 1, 1 << 31, size=c)])
    skip = np.stack([np.full(c, 127), np.full(c, -128), np.zeros(c), np.full(c, -1),
                     rng.integers(-128, 128, size=c)])
    check_numerator("t", [(1 << 31) - 1, 128], [mult, m2], const, shift)
    got = run_onnx(mult, shift, const, m2, acc, skip)
    want = run_torch(mult, shift, const, m2, acc, skip)
    assert np.array_equal(got, want)
    # negative numerators that are no multiple of 2^S: truncating Div would differ here
    num = (acc.astype(object) * mult.astype(object) + const.astype(object)
           + skip.astype(object) * m2.astype(object) + (1 << (shift.astype(object) - 1)))
    trunc = np.array([-(-v // (1 << s)) if v < 0 else v // (1 << s)
                      for v, s in zip(num.ravel(), np.broadcast_to(shift, num.shape).ravel(),
                                      strict=True)]).reshape(num.shape)
    assert (trunc != want).sum() > 50


def test_clamp_and_output_type():
    mult, shift = np.array([3, 1]), np.array([1, 3])
    const, m2 = np.array([0, -5]), np.array([0, 2])
    acc = np.arange(-60, 60).reshape(-1, 2)
    skip = np.full_like(acc, 3)
    got = run_onnx(mult, shift, const, m2, acc, skip, lo=-16, hi=15)
    want = run_torch(mult, shift, const, m2, acc, skip, lo=-16, hi=15)
    assert np.array_equal(got, want) and got.min() == -16 and got.max() == 15


def test_numerators_beyond_the_exact_range_are_refused():
    with pytest.raises(RequantExportError, match="numerator can reach"):
        check_numerator("big", [1 << 40], [np.array([1 << 22])], np.zeros(1, np.int64),
                        np.array([4]))
