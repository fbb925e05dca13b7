"""DSP packing schemes: several low-bit multiplies in one ``(A + D) * B`` of a DSP48E1/E2.

A scheme places each weight and each activation at a bit offset in one DSP port. The
product then holds ``sum_ij w_i * a_j * 2**(s_i + t_j)``; all products that share an offset
``s_i + t_j`` add up in one *field* of P. Fields are read back with the sign-correction
(borrow) rule: ``field_k = sext(P[lsb_k + width_k - 1 : lsb_k]) + P[lsb_k - 1]``, since a
negative lower field borrows one from the field above it. Layouts follow the FILM-QNN paper
(Sec. 3.2.1, Fig. 1) and a convolution-style extension; see docs/dsp_packing.md.

This module is the single source of truth for every packing rule: the Verilog template
(hw/templates/mac_array.v.j2) and the LUT calibration read offsets from ``PackingScheme``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from filmqnn.hw import dsp_arith
from filmqnn.hw.dsp_arith import DspSpec, dsp_spec

PORTS = ("A", "D", "B")


@dataclass(frozen=True)
class Term:
    """One operand value placed in a DSP port at a bit offset (value sign-extended above)."""

    port: str
    offset: int


@dataclass(frozen=True)
class Field:
    """A slice of P that holds the sum of the products ``w[i] * a[j]`` listed in ``products``."""

    lsb: int
    width: int
    products: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class PackingScheme:
    """Placement of weights / activations in one DSP and the number of cycles P may accumulate.

    ``products_per_dsp`` counts useful MACs per DSP per cycle; ``accumulate_depth`` is how
    many cycles of products may add up in P before the fields must be extracted.
    """

    name: str
    dsp: str
    wbits: int
    abits: int
    signed_act: bool
    weight_terms: tuple[Term, ...]
    act_terms: tuple[Term, ...]
    accumulate_depth: int
    loop: str  # which loop nest the packed operands map onto
    general: bool  # True: every field is an independent product usable in any MAC array
    description: str = ""
    full_range: bool = False  # weights over the whole two's-complement field (-8..7 at 4 bits)

    @property
    def spec(self) -> DspSpec:
        return dsp_spec(self.dsp)

    @property
    def products_per_dsp(self) -> int:
        return len(self.weight_terms) * len(self.act_terms)

    @property
    def weight_range(self) -> tuple[int, int]:
        """Narrow symmetric signed range, e.g. -7..7 for 4 bits (the quantizer's grid), or the
        full field (-8..7) for the nibbles of a split 8-bit weight."""
        m = (1 << (self.wbits - 1)) - 1
        return (-m - 1 if self.full_range else -m), m

    @property
    def act_range(self) -> tuple[int, int]:
        if self.signed_act:
            return -(1 << (self.abits - 1)), (1 << (self.abits - 1)) - 1
        return 0, (1 << self.abits) - 1

    @cached_property
    def fields(self) -> tuple[Field, ...]:
        """Fields (slots) of P in increasing bit order; the top one runs up to P's MSB."""
        groups: dict[int, list[tuple[int, int]]] = {}
        for i, wt in enumerate(self.weight_terms):
            for j, at in enumerate(self.act_terms):
                groups.setdefault(wt.offset + at.offset, []).append((i, j))
        lsbs = sorted(groups)
        tops = lsbs[1:] + [self.spec.p_port]
        return tuple(
            Field(lsb, top - lsb, tuple(groups[lsb])) for lsb, top in zip(lsbs, tops, strict=True)
        )

    @cached_property
    def read_widths(self) -> tuple[int, ...]:
        """Bits of P read per field: enough for ``accumulate_depth`` cycles of the field sum
        minus its borrow (the paper reads only these low bits); never above the slot width."""
        f, _, _ = _per_cycle_bounds(self)
        out = []
        for k, fl in enumerate(self.fields):
            hi = max(int(f[:, k].max()), 0) * self.accumulate_depth
            lo = min(int(f[:, k].min()), 0) * self.accumulate_depth - (1 if k > 0 else 0)
            need = max(hi.bit_length(), (-lo - 1).bit_length()) + 1
            out.append(min(need, fl.width))
        return tuple(out)

    def layout(self) -> dict[str, object]:
        """JSON-friendly description of where every operand and field sits."""
        return {
            "weights": [{"port": t.port, "offset": t.offset} for t in self.weight_terms],
            "activations": [{"port": t.port, "offset": t.offset} for t in self.act_terms],
            "fields": [
                {
                    "lsb": f.lsb,
                    "width": f.width,
                    "read_bits": r,
                    "products": [list(p) for p in f.products],
                }
                for f, r in zip(self.fields, self.read_widths, strict=True)
            ],
        }

    def pack_operands(
        self, weights: np.ndarray, acts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Port values (A, D, B) for weights ``[..., n_w]`` and activations ``[..., n_a]``.

        A port holding several terms carries their integer sum (for unsigned values this is a
        plain concatenation; signed upper terms absorb the lower term's sign borrow).
        """
        w = np.asarray(weights, dtype=np.int64)
        a = np.asarray(acts, dtype=np.int64)
        shape = np.broadcast_shapes(w.shape[:-1], a.shape[:-1])
        ports = {p: np.zeros(shape, dtype=np.int64) for p in PORTS}
        for vals, terms in ((w, self.weight_terms), (a, self.act_terms)):
            for k, t in enumerate(terms):
                ports[t.port] = ports[t.port] + (vals[..., k] << t.offset)
        return ports["A"], ports["D"], ports["B"]

    def extract(self, p: np.ndarray) -> np.ndarray:
        """Field values ``[..., n_fields]`` from P with the borrow (sign-correction) rule."""
        p = np.asarray(p, dtype=np.int64)
        out = []
        for k, (f, width) in enumerate(zip(self.fields, self.read_widths, strict=True)):
            v = dsp_arith.signed_field(p, f.lsb, width)
            if k > 0:
                v = v + dsp_arith.bit(p, f.lsb - 1)
            out.append(v)
        return np.stack(out, axis=-1)

    def reference(self, weights: np.ndarray, acts: np.ndarray) -> np.ndarray:
        """Exact field sums ``[..., n_fields]`` by plain integer multiplication (over cycles)."""
        w = np.asarray(weights, dtype=np.int64)
        a = np.asarray(acts, dtype=np.int64)
        cols = [sum(w[..., i] * a[..., j] for i, j in f.products) for f in self.fields]
        return np.stack(cols, axis=-1).sum(axis=-2)

    def run(self, weights: np.ndarray, acts: np.ndarray) -> np.ndarray:
        """Pack, run the DSP over the cycle axis (``[..., cycles, n]``) and extract fields."""
        a_port, d_port, b_port = self.pack_operands(weights, acts)
        return self.extract(dsp_arith.accumulate(self.spec, a_port, d_port, b_port))


# --------------------------------------------------------------------------- safe depth


def _per_cycle_bounds(scheme: PackingScheme) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max of each field and of the weighted sum of all fields below it, over one cycle.

    Every quantity is bilinear in the operands, so its extremes sit at operand corners.
    """
    w_lo, w_hi = scheme.weight_range
    a_lo, a_hi = scheme.act_range
    n_w, n_a = len(scheme.weight_terms), len(scheme.act_terms)
    corners = np.array(list(itertools.product((0, 1), repeat=n_w + n_a)), dtype=np.int64)
    w = np.where(corners[:, :n_w] == 1, w_hi, w_lo)
    a = np.where(corners[:, n_w:] == 1, a_hi, a_lo)
    f = scheme.reference(w[:, None, :], a[:, None, :])
    lsb = np.array([fl.lsb for fl in scheme.fields], dtype=np.int64)
    below = np.cumsum(f * (1 << lsb), axis=-1) - f * (1 << lsb)  # sum of lower fields
    return f, below, lsb


def max_safe_depth(scheme: PackingScheme, cap: int = 1 << 16) -> int:
    """Largest depth for which every field and its borrow bit stay in range (0 if none).

    Conditions per field k, for ``depth`` cycles of worst-case operands: the field sum minus
    a possible borrow fits ``width_k`` signed bits, and the sum of all lower fields lies in
    ``[-2**(lsb_k-1), 2**(lsb_k-1))`` so that bit ``lsb_k - 1`` is its sign. Operand port
    widths must hold one cycle's packed values.
    """
    if not _operands_fit(scheme):
        return 0
    f, below, _ = _per_cycle_bounds(scheme)
    best = cap
    for k, fl in enumerate(scheme.fields):
        hi_f, lo_f = int(f[:, k].max()), int(f[:, k].min())
        lim = (1 << (fl.width - 1)) - 1
        borrow = 1 if k > 0 else 0
        if hi_f > 0:
            best = min(best, lim // hi_f)
        if lo_f < 0:
            best = min(best, (lim + 1 - borrow) // -lo_f)
        if k > 0:
            half = 1 << (fl.lsb - 1)
            hi_b, lo_b = int(below[:, k].max()), int(below[:, k].min())
            if hi_b > 0:
                best = min(best, (half - 1) // hi_b)
            if lo_b < 0:
                best = min(best, half // -lo_b)
    return max(best, 0)


def _operands_fit(scheme: PackingScheme) -> bool:
    """One cycle's packed A, D, A+D and B fit the ports the multiplier sees."""
    w_lo, w_hi = scheme.weight_range
    a_lo, a_hi = scheme.act_range
    n_w = len(scheme.weight_terms)
    n_a = len(scheme.act_terms)
    corners = np.array(list(itertools.product((0, 1), repeat=n_w + n_a)), dtype=np.int64)
    w = np.where(corners[:, :n_w] == 1, w_hi, w_lo)
    a = np.where(corners[:, n_w:] == 1, a_hi, a_lo)
    a_port, d_port, b_port = scheme.pack_operands(w, a)
    s = scheme.spec
    return (
        dsp_arith.fits_signed(a_port, s.a_mult)
        and dsp_arith.fits_signed(d_port, s.d_port)
        and dsp_arith.fits_signed(a_port + d_port, s.preadd)
        and dsp_arith.fits_signed(b_port, s.b_port)
    )


# --------------------------------------------------------------------------- schemes


def _scheme(
    name: str,
    dsp: str,
    wbits: int,
    abits: int,
    signed_act: bool,
    weights: tuple[tuple[str, int], ...],
    acts: tuple[tuple[str, int], ...],
    loop: str,
    general: bool,
    description: str,
) -> PackingScheme:
    """Build a scheme and set its accumulate depth to the proven safe maximum."""
    s = PackingScheme(
        name,
        dsp,
        wbits,
        abits,
        signed_act,
        tuple(Term(p, o) for p, o in weights),
        tuple(Term(p, o) for p, o in acts),
        1,
        loop,
        general,
        description,
    )
    depth = max_safe_depth(s)
    if depth < 1:
        raise ValueError(f"scheme {name} on {dsp} W{wbits}A{abits} does not fit the ports")

    return replace(s, accumulate_depth=depth)


_GENERAL_LOOP = "any MAC array: weights of 2 output channels x activations of 2 pixels"


def _build_all() -> tuple[PackingScheme, ...]:
    out: list[PackingScheme] = []
    for dsp, signed_act in itertools.product(("dsp48e1", "dsp48e2"), (False, True)):
        e2 = dsp == "dsp48e2"
        act2 = "D" if signed_act else "A"  # signed activations need the pre-adder's sign extension
        out.append(
            _scheme(
                "paper",
                dsp,
                4,
                5,
                signed_act,
                (("A", 0), ("D", 20)),
                (("B", 0), ("B", 10)),
                _GENERAL_LOOP,
                True,
                "FILM-QNN Fig. 1(c): W1 in A[3:0], W2 in D[23:20], X1 in B[4:0], X2 in B[14:10]",
            )
        )
        if e2:
            out.append(
                _scheme(
                    "wide",
                    dsp,
                    4,
                    5,
                    signed_act,
                    (("A", 0), ("D", 22)),
                    (("B", 0), ("B", 11)),
                    _GENERAL_LOOP,
                    True,
                    "Fig. 1(c) layout spread over the 27-bit pre-adder: 11-bit fields",
                )
            )
        f = 11 if e2 else 10
        out.append(
            _scheme(
                "conv3x2",
                dsp,
                4,
                5,
                signed_act,
                (("A", 0), ("D", f), ("D", 2 * f)),
                (("B", 0), ("B", f)),
                "1-D convolution along the output row: 3 kernel-column taps (reversed) x 2 "
                "adjacent input columns; field n is a partial sum of output column c0+n-2; "
                "P accumulates over input channels / kernel rows; needs Kc=3, stride 1",
                False,
                "polynomial product (w2 + w1 z + w0 z^2)(x0 + x1 z): middle fields hold sums",
            )
        )
        out.append(
            _scheme(
                "paper",
                dsp,
                8,
                5,
                signed_act,
                (("B", 0),),
                (("A", 0), (act2, 14)),
                "any MAC array: one weight x activations of 2 pixels",
                True,
                "FILM-QNN Fig. 1(b): X1 in A[4:0], X2 at bit 14, W in B[7:0]",
            )
        )
        out.append(
            _scheme(
                "wide",
                dsp,
                8,
                5,
                signed_act,
                (("B", 0),),
                (("A", 0), (act2, 21 if e2 else 19)),
                "any MAC array: one weight x activations of 2 pixels",
                True,
                "Fig. 1(b) with the second activation as high as the pre-adder allows "
                "(more guard bits, deeper accumulation in P)",
            )
        )
    return tuple(out)


PACKING_SCHEMES: tuple[PackingScheme, ...] = _build_all()
DSP_KINDS = ("dsp48e1", "dsp48e2")


def schemes_for(dsp: str, wbits: int, abits: int, signed_act: bool = False) -> list[PackingScheme]:
    """All schemes for one DSP and precision; ValueError names the valid choices."""
    if dsp not in DSP_KINDS:
        raise ValueError(f"unknown dsp {dsp!r}; valid choices: {list(DSP_KINDS)}")
    found = [
        s
        for s in PACKING_SCHEMES
        if (s.dsp, s.wbits, s.abits, s.signed_act) == (dsp, wbits, abits, signed_act)
    ]
    if not found:
        pairs = sorted({(s.wbits, s.abits) for s in PACKING_SCHEMES})
        raise ValueError(
            f"no packing for W{wbits}A{abits} on {dsp}; valid (wbits, abits) choices: {pairs}"
        )
    return found


def get_scheme(
    dsp: str, wbits: int, abits: int, name: str, signed_act: bool = False
) -> PackingScheme:
    """The scheme called ``name`` for this DSP and precision; ValueError lists the names."""
    options = schemes_for(dsp, wbits, abits, signed_act)
    for s in options:
        if s.name == name:
            return s
    raise ValueError(f"unknown scheme {name!r}; valid choices: {[s.name for s in options]}")


def best_packing(
    dsp: str, wbits: int, abits: int, signed_act: bool = False, general_only: bool = False
) -> PackingScheme:
    """The verified scheme with most MACs per DSP (ties: deeper accumulation).

    ``general_only=True`` skips loop-specific schemes (conv3x2 needs Kc=3, stride 1).
    """
    options = [
        s for s in schemes_for(dsp, wbits, abits, signed_act) if s.general or not general_only
    ]
    return max(options, key=lambda s: (s.products_per_dsp, s.accumulate_depth))


def split8_packing(dsp: str, abits: int, signed_act: bool = False) -> PackingScheme:
    """The PE4 packing for the nibbles of split 8-bit weights (``EngineOptions.split8``):
    ``w = 16 hi + (lo - 8) + 8`` puts -8 in both nibbles, one below the 4-bit grid, so the
    general W4A5 layout gets its own proven depth and read widths over -8..7."""
    base = best_packing(dsp, 4, abits, signed_act, general_only=True)
    s = replace(base, name=f"{base.name}-split8", full_range=True, accumulate_depth=1,
                description=base.description + "; weights -8..7 (split 8-bit nibbles)")
    depth = max_safe_depth(s)
    if depth < 1:
        raise ValueError(f"the {base.name} layout on {dsp} cannot hold -8 weights")
    return replace(s, accumulate_depth=depth)


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class CheckResult:
    """Outcome of ``check_scheme``: cases compared against plain multiplication."""

    checked_cases: int
    mismatches: int
    depth: int
    exhaustive_cases: int
    extremal_cases: int
    random_cases: int


def _all_operands(scheme: PackingScheme) -> tuple[np.ndarray, np.ndarray]:
    """Every combination of every weight and activation value, shapes [N, n_w] and [N, n_a]."""
    w_lo, w_hi = scheme.weight_range
    a_lo, a_hi = scheme.act_range
    n_w, n_a = len(scheme.weight_terms), len(scheme.act_terms)
    axes = [np.arange(w_lo, w_hi + 1)] * n_w + [np.arange(a_lo, a_hi + 1)] * n_a
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, n_w + n_a)
    return grid[:, :n_w], grid[:, n_w:]


def _count_mismatches(scheme: PackingScheme, w: np.ndarray, a: np.ndarray) -> int:
    """Rows (sequences) whose extracted fields differ from the exact sums; inputs [N, T, n]."""
    bad = 0
    for start in range(0, w.shape[0], 1 << 19):
        ws, as_ = w[start : start + (1 << 19)], a[start : start + (1 << 19)]
        got = scheme.run(ws, as_)
        bad += int(np.any(got != scheme.reference(ws, as_), axis=-1).sum())
    return bad


def check_scheme(
    scheme: PackingScheme,
    depth: int | None = None,
    random_sequences: int = 4096,
    seed: int = 0,
    exhaustive: bool = True,
) -> CheckResult:
    """Compare the packed DSP against plain multiplication.

    Exhaustive: every weight value x every activation value in every slot, one cycle.
    At ``depth`` cycles (default ``accumulate_depth``): every operand-corner vector held
    constant, every ordered pair of corners alternating, ``depth-1`` cycles of one corner
    then one of another, random corner sequences and uniformly random sequences.
    ``exhaustive=False`` skips the single-cycle sweep (for quick negative tests).
    """
    depth = scheme.accumulate_depth if depth is None else depth
    rng = np.random.default_rng(seed)
    n_w, n_a = len(scheme.weight_terms), len(scheme.act_terms)
    w_lo, w_hi = scheme.weight_range
    a_lo, a_hi = scheme.act_range

    bad = n_exh = 0
    if exhaustive:
        w1, a1 = _all_operands(scheme)
        bad = _count_mismatches(scheme, w1[:, None, :], a1[:, None, :])
        n_exh = w1.shape[0]

    bits = np.array(list(itertools.product((0, 1), repeat=n_w + n_a)), dtype=np.int64)
    cw = np.where(bits[:, :n_w] == 1, w_hi, w_lo)
    ca = np.where(bits[:, n_w:] == 1, a_hi, a_lo)
    nc = len(bits)
    t = np.arange(depth)
    i, j = np.meshgrid(np.arange(nc), np.arange(nc), indexing="ij")
    i, j = i.ravel(), j.ravel()
    seqs = [
        np.repeat(np.arange(nc)[:, None], depth, axis=1),  # constant corner
        np.where(t[None, :] % 2 == 0, i[:, None], j[:, None]),  # alternating pair
        np.where(t[None, :] < depth - 1, i[:, None], j[:, None]),  # run then switch
        rng.integers(0, nc, size=(random_sequences, depth)),  # random corners
    ]
    idx = np.concatenate(seqs, axis=0)
    bad += _count_mismatches(scheme, cw[idx], ca[idx])
    n_ext = idx.shape[0]

    wr = rng.integers(w_lo, w_hi + 1, size=(random_sequences, depth, n_w))
    ar = rng.integers(a_lo, a_hi + 1, size=(random_sequences, depth, n_a))
    bad += _count_mismatches(scheme, wr, ar)
    n_rand = random_sequences
    return CheckResult(n_exh + n_ext + n_rand, bad, depth, n_exh, n_ext, n_rand)
