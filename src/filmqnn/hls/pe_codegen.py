"""C++ of the packed DSP multiplies, generated from ``hw.dsp_packing`` (the one definition).

Each function places the weights and activations in the A, D and B ports at the scheme's
offsets as ``ap_int`` values of the port widths, forms ``(A + D) * B`` once (``bind_op`` to a
DSP) and extracts every field with the scheme's read width and borrow (sign-correction) bit.
P is extracted every cycle (accumulation depth 1, within every scheme's proven depth). The
fields come out as ``int`` (32 bits, as wide as the accumulator), which the kernel's adder
trees sum as ``int``: the same hardware as ``ap_int<32>``, and native arithmetic in C-sim.

With ``FILMQNN_NATIVE_PE`` defined (the C-simulation library's build) each function computes
the same port values, pre-add, product and fields in 64-bit integers, wrapped to the same
widths: the same bits several times faster than ``ap_int``. Synthesis and Vitis C-sim take the
``ap_int`` body; both bodies are checked on every operand value (tests/hls).
"""

from __future__ import annotations

import itertools

from filmqnn.formats import ACT_BITS
from filmqnn.hw.dsp_packing import PackingScheme, best_packing, split8_packing

PORT_WIDTH = {"A": "a_mult", "D": "d_port", "B": "b_port"}


def _port_terms(scheme: PackingScheme, port: str, cast: str) -> str:
    """The sum of the operands the scheme places on ``port``, each cast (``cast``: the C++
    cast prefix) and shifted to its offset."""
    terms = [f"({cast}w{i} << {t.offset})"
             for i, t in enumerate(scheme.weight_terms) if t.port == port]
    terms += [f"({cast}x{j} << {t.offset})"
              for j, t in enumerate(scheme.act_terms) if t.port == port]
    return " + ".join(terms) or "0"


def _fields(scheme: PackingScheme) -> list[tuple[int, str, int, int]]:
    """(index, output slot, LSB, read width) of every field of P."""
    n_w = len(scheme.weight_terms)
    out = []
    for k, (fl, width) in enumerate(zip(scheme.fields, scheme.read_widths, strict=True)):
        (i, j), = fl.products
        out.append((k, f"f[{i}][{j}]" if n_w == 2 else f"f[{j}]", fl.lsb, width))
    return out


def _dsp_function(name: str, scheme: PackingScheme, wtype: str) -> str:
    spec = scheme.spec
    n_w, n_a = len(scheme.weight_terms), len(scheme.act_terms)
    ws = ", ".join(f"{wtype} w{i}" for i in range(n_w))
    xs = ", ".join(f"act_t x{j}" for j in range(n_a))
    out = "int f[2][2]" if n_w == 2 else "int f[2]"
    lines = [
        f"// {scheme.name} packing on {spec.name}, W{scheme.wbits}A{scheme.abits} "
        f"{'signed' if scheme.signed_act else 'unsigned'} activations: {scheme.description}",
        f"static inline void {name}({ws}, {xs}, {out}) {{",
        "#pragma HLS inline",
        "#ifdef FILMQNN_NATIVE_PE",
        *_native_body(name, scheme),
        "#else",
    ]
    for port in ("A", "D", "B"):
        width = getattr(spec, PORT_WIDTH[port])
        terms = _port_terms(scheme, port, f"(ap_int<{width}>)")
        lines.append(f"    ap_int<{width}> {port} = {terms};")
    lines += [
        f"    ap_int<{spec.preadd}> AD = A + D;  // pre-adder",
        f"    ap_int<{spec.p_port}> P = AD * B;",
        "#pragma HLS bind_op variable=P op=mul impl=dsp",
    ]
    for k, target, lsb, width in _fields(scheme):
        borrow = f" + (int)P[{lsb - 1}]" if k > 0 else ""
        lines.append(f"    {{ ap_int<{width}> v = P.range({lsb + width - 1}, {lsb}); "
                     f"{target} = v{borrow}; }}")
    lines += ["#endif", "}"]
    return "\n".join(lines)


def _native_body(name: str, scheme: PackingScheme) -> list[str]:
    """The native function body: its ports and fields through the split helpers below."""
    n_w, n_a = len(scheme.weight_terms), len(scheme.act_terms)
    ws = ", ".join(f"w{i}" for i in range(n_w))
    xs = ", ".join(f"x{j}" for j in range(n_a))
    return [f"    {name}_fields({name}_wport({ws}), {name}_xport({xs}), f);"]


def _side_ports(scheme: PackingScheme) -> tuple[str, str]:
    """Which multiplier operand the weights feed and which the activations: ("AD", "B") when
    the weights sit on the pre-adder's ports A and D, ("B", "AD") the other way round."""
    w_ports = {t.port for t in scheme.weight_terms}
    a_ports = {t.port for t in scheme.act_terms}
    if w_ports <= {"A", "D"} and a_ports == {"B"}:
        return "AD", "B"
    if w_ports == {"B"} and a_ports <= {"A", "D"}:
        return "B", "AD"
    raise ValueError(f"{scheme.name}: weights and activations share a multiplier operand")


def _native_split(name: str, scheme: PackingScheme) -> str:
    """The native body in three parts, so a loop can hoist them: the weight side's operand of
    the multiplier (one per weight register load), the activations' (one per column and pixel
    pair) and the product with its fields. Each value is wrapped to its ``ap_int`` width by
    ``pe_wrap`` (two's complement), so each field holds the bits the ``ap_int`` body gets."""
    spec = scheme.spec
    n_w, n_a = len(scheme.weight_terms), len(scheme.act_terms)
    ws = ", ".join(f"long long w{i}" for i in range(n_w))
    xs = ", ".join(f"long long x{j}" for j in range(n_a))
    w_side, _ = _side_ports(scheme)
    cast = "(unsigned long long)"

    def side(weights: bool) -> list[str]:
        on_ad = (w_side == "AD") == weights
        if not on_ad:
            return [f"    return pe_wrap({_port_terms(scheme, 'B', cast)}, {spec.b_port});"]
        return [f"    long long A = pe_wrap({_port_terms(scheme, 'A', cast)}, {spec.a_mult});",
                f"    long long D = pe_wrap({_port_terms(scheme, 'D', cast)}, {spec.d_port});",
                f"    return pe_wrap((unsigned long long)(A + D), {spec.preadd});"]

    out = "int f[2][2]" if n_w == 2 else "int f[2]"
    fields = _fields(scheme)
    # both operands are at most 32-bit two's-complement values (port widths <= 27), so their
    # exact product is one 32 x 32 -> 64-bit signed multiply
    product = "(long long)(int)wv * (long long)(int)xv"
    plain = max(lsb + width for _, _, lsb, width in fields) <= spec.p_port
    if not plain:
        product = f"pe_wrap((unsigned long long)({product}), {spec.p_port})"
    lines = [f"static inline long long {name}_wport({ws}) {{", *side(True), "}",
             f"static inline long long {name}_xport({xs}) {{", *side(False), "}",
             f"static inline long long {name}_product(long long wv, long long xv) {{",
             f"    return {product};", "}",
             "// the product is the plain signed 32 x 32 -> 64-bit one (no wrap to the P port)",
             f"static const bool {name}_PLAIN = {str(plain).lower()};",
             f"static inline void {name}_fields(long long wv, long long xv, {out}) {{",
             f"    long long P = {name}_product(wv, xv);"]
    for k, target, lsb, width in fields:
        borrow = f" + (int)((P >> {lsb - 1}) & 1)" if k > 0 else ""
        lines.append(f"    {target} = (int)pe_field(P, {lsb}, {width}){borrow};")
    lines.append("}")
    lines += _native_sums(name, fields, out)
    return "\n".join(["#ifdef FILMQNN_NATIVE_PE", *lines, "#endif"])


def _native_sums(name: str, fields: list[tuple[int, str, int, int]], out: str) -> list[str]:
    """The adder tree's sums of the fields over many products, read from P by the identity
    field = T(lsb) - 2^width * R(lsb + width) (exact for every P): T(lsb) = R(lsb) with the
    borrow bit, P >> lsb without it, R(j) = (P + 2^(j-1)) >> j the rounded shift. ``_tsum``
    adds a product's shifts into lane ``k`` of per-point sums (one per distinct shift: adjacent
    fields share one), ``_lhsum`` 16 products' into 16 lanes, ``_tfields`` turns a lane's sums
    into the fields' sums."""
    points: list[tuple[int, bool]] = []  # (shift, rounded)

    def point(j: int, rounded: bool) -> int:
        key = (j, rounded and j > 0)
        if key not in points:
            points.append(key)
        return points.index(key)

    terms = [(target, point(lsb, k > 0), point(lsb + width, True), width)
             for k, target, lsb, width in fields]
    shifts = [("P" if j == 0 else f"(P + (1LL << {j - 1})) >> {j}" if rounded else f"P >> {j}")
              for j, rounded in points]
    return [f"static const int {name}_NT = {len(points)};",
            f"template <int VB> static inline void {name}_tsum(long long P, long long t[][VB], "
            "int k) {", *(f"    t[{i}][k] += {v};" for i, v in enumerate(shifts)), "}",
            f"template <int VB> static inline void {name}_tfields(long long t[][VB], int k, "
            f"{out}) {{",
            *(f"    {target} = (int)(t[{lo}][k] - (t[{hi}][k] << {w}));"
              for target, lo, hi, w in terms), "}",
            *_lane_sums(name, points, fields)]


def _lane_sums(name: str, points: list[tuple[int, bool]],
               fields: list[tuple[int, str, int, int]]) -> list[str]:
    """``_lhsum``: the point sums of 16 products in 32-bit lanes (modulo 2^32, all of it
    ``_tfields`` reads), each product given as the low and high 32-bit halves (L, H) of
    Q = P + ``_K``. K holds half of every field's range in the field, so Q's fields are the
    products' values offset into 0 .. 2^width - 1: Q >> j then replaces every rounded shift
    R(j) of P (no borrow bits), points at or above the top field's end add 0, and
    ``_lhinit(n, u)`` starts the sums at -n (K >> j), taking the offsets out again. Exact
    while every field's value lies in its signed range, which the packing guarantees (its
    exhaustive check, tests/hls/test_kernel_packing.py)."""
    spans = sorted((lsb, width) for _, _, lsb, width in fields)
    assert all(a + w <= b for (a, w), (b, _) in itertools.pairwise(spans)), "fields overlap"
    top = spans[-1][0] + spans[-1][1]
    k_off = sum(1 << (lsb + width - 1) for lsb, width in spans)
    init = [f"    u[{i}] = _mm512_set1_epi32((int)(0u - (unsigned)n * {k}u));"
            for i, k in enumerate((k_off >> j) & 0xFFFFFFFF for j, _ in points)]
    lines = [f"static inline void {name}_lhinit(int n, __m512i u[]) {{", *init, "}",
             f"static inline void {name}_lhsum(__m512i L, __m512i H, __m512i u[]) {{"]
    for i, (j, _) in enumerate(points):
        if j >= top:
            continue
        v = ("L" if j == 0 else f"FILMQNN_SHRD(L, H, {j})" if j < 32
             else "H" if j == 32 else f"_mm512_srli_epi32(H, {j - 32})")
        lines.append(f"    u[{i}] = _mm512_add_epi32(u[{i}], {v});")
    return [f"static const long long {name}_K = {k_off}LL;",
            "#ifdef __AVX512F__", *lines, "}", "#endif"]


NATIVE_WRAP = """#ifdef FILMQNN_NATIVE_PE
#ifdef __AVX512F__
#include <immintrin.h>
// the low 32 bits of the 64-bit lanes H:L shifted right by j (0 < j < 32)
#ifdef __AVX512VBMI2__
#define FILMQNN_SHRD(L, H, j) _mm512_shrdi_epi32(L, H, j)
#else
#define FILMQNN_SHRD(L, H, j) \\
    _mm512_or_si512(_mm512_srli_epi32(L, j), _mm512_slli_epi32(H, 32 - (j)))
#endif
#endif
// v wrapped to a `bits`-wide two's-complement value (what assigning to ap_int<bits> does)
static inline long long pe_wrap(unsigned long long v, int bits) {
    return (long long)(v << (64 - bits)) >> (64 - bits);
}
// bits lsb .. lsb + bits - 1 of P as a `bits`-wide two's-complement value: pe_wrap(P >> lsb)
static inline long long pe_field(long long P, int lsb, int bits) {
    return (long long)((unsigned long long)P << (64 - lsb - bits)) >> (64 - bits);
}
#endif"""


FABRIC = """// multiplies on LUTs (no DSP): plain products of the same operands
static inline void pe4_fabric(ap_int<4> w0, ap_int<4> w1, act_t x0, act_t x1, int f[2][2]) {
#pragma HLS inline
#ifdef FILMQNN_NATIVE_PE
    int a0 = w0, a1 = w1, b0 = x0, b1 = x1;
    f[0][0] = a0 * b0; f[0][1] = a0 * b1; f[1][0] = a1 * b0; f[1][1] = a1 * b1;
    return;
#endif
    ap_int<10> p00 = w0 * x0, p01 = w0 * x1, p10 = w1 * x0, p11 = w1 * x1;
#pragma HLS bind_op variable=p00 op=mul impl=fabric
#pragma HLS bind_op variable=p01 op=mul impl=fabric
#pragma HLS bind_op variable=p10 op=mul impl=fabric
#pragma HLS bind_op variable=p11 op=mul impl=fabric
    f[0][0] = p00; f[0][1] = p01; f[1][0] = p10; f[1][1] = p11;
}

static inline void pe8_fabric(ap_int<8> w0, act_t x0, act_t x1, int f[2]) {
#pragma HLS inline
#ifdef FILMQNN_NATIVE_PE
    int a0 = w0, b0 = x0, b1 = x1;
    f[0] = a0 * b0; f[1] = a0 * b1;
    return;
#endif
    ap_int<14> p0 = w0 * x0, p1 = w0 * x1;
#pragma HLS bind_op variable=p0 op=mul impl=fabric
#pragma HLS bind_op variable=p1 op=mul impl=fabric
    f[0] = p0; f[1] = p1;
}"""


def schemes(dsp: str) -> dict[str, PackingScheme]:
    """The general packings the engine uses on ``dsp``: PE4 (W4A5, over -8..7 since split
    8-bit weights put -8 in the nibbles) and PE8 (W8A5), for unsigned and signed activations."""
    out = {}
    for signed in (False, True):
        tag = "signed" if signed else "unsigned"
        out[f"pe4_dsp_{tag}"] = split8_packing(dsp, ACT_BITS, signed)
        out[f"pe8_dsp_{tag}"] = best_packing(dsp, 8, ACT_BITS, signed, general_only=True)
    return out


def pe_functions(dsp: str) -> str:
    """C++ source of every PE multiply function for ``dsp`` ("dsp48e1" or "dsp48e2")."""
    parts = [NATIVE_WRAP]
    for name, s in schemes(dsp).items():
        wtype = "ap_int<4>" if s.wbits == 4 else "ap_int<8>"
        parts.append(_native_split(name, s))
        parts.append(_dsp_function(name, s, wtype))
    parts.append(FABRIC)
    return "\n\n".join(parts)
