"""The packed DSP multiplies of the generated kernel, compiled with g++ against ap_types and
run on every operand value (exhaustive), equal plain products."""

import shutil
import subprocess

import pytest

from filmqnn.hls.csim import ap_types_dir
from filmqnn.hls.pe_codegen import pe_functions

HARNESS = r"""
#include <cstdio>
#include "ap_int.h"
typedef ap_int<6> act_t;
%s
#if defined(FILMQNN_NATIVE_PE) && defined(__AVX512F__)
// the fields read back from the 32-bit lane sums of one product P (every lane the same)
#define LANES(S, P, f)                                                                       \
    do {                                                                                     \
        __m512i u[S##_NT];                                                                   \
        long long Q = (P) + S##_K, v[S##_NT][1];                                             \
        S##_lhinit(1, u);                                                                    \
        S##_lhsum(_mm512_set1_epi32((int)Q), _mm512_set1_epi32((int)(Q >> 32)), u);          \
        for (int i = 0; i < S##_NT; i++) v[i][0] = _mm512_cvtsi512_si32(u[i]);              \
        S##_tfields<1>(v, 0, f);                                                             \
    } while (0)
#else
#define LANES(S, P, f) S##_tfields<1>(t, 0, f)
#endif
int main() {
    long bad = 0, n = 0;
    for (int sgn = 0; sgn < 2; sgn++) {
        int lo = sgn ? -16 : 0, hi = sgn ? 15 : 31;
        for (int w0 = -8; w0 <= 7; w0++) for (int w1 = -8; w1 <= 7; w1++)
        for (int x0 = lo; x0 <= hi; x0++) for (int x1 = lo; x1 <= hi; x1++) {
            int f[2][2];
            if (sgn) pe4_dsp_signed(w0, w1, x0, x1, f); else pe4_dsp_unsigned(w0, w1, x0, x1, f);
            int want[2][2] = {{w0 * x0, w0 * x1}, {w1 * x0, w1 * x1}};
            for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) bad += f[i][j] != want[i][j];
            pe4_fabric(w0, w1, x0, x1, f);
            for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) bad += f[i][j] != want[i][j];
#ifdef FILMQNN_NATIVE_PE
            {  // the adder tree's form: the fields read back from one product's shift sums
                long long t[8][1] = {};
                long long P = sgn ? pe4_dsp_signed_product(pe4_dsp_signed_wport(w0, w1),
                                                           pe4_dsp_signed_xport(x0, x1))
                                  : pe4_dsp_unsigned_product(pe4_dsp_unsigned_wport(w0, w1),
                                                             pe4_dsp_unsigned_xport(x0, x1));
                if (sgn) pe4_dsp_signed_tsum<1>(P, t, 0); else pe4_dsp_unsigned_tsum<1>(P, t, 0);
                if (sgn) pe4_dsp_signed_tfields<1>(t, 0, f);
                else pe4_dsp_unsigned_tfields<1>(t, 0, f);
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) bad += f[i][j] != want[i][j];
                if (sgn) LANES(pe4_dsp_signed, P, f); else LANES(pe4_dsp_unsigned, P, f);
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) bad += f[i][j] != want[i][j];
            }
#endif
            n++;
        }
        for (int w = -127; w <= 127; w++) for (int x0 = lo; x0 <= hi; x0++)
        for (int x1 = lo; x1 <= hi; x1++) {
            int f[2];
            if (sgn) pe8_dsp_signed(w, x0, x1, f); else pe8_dsp_unsigned(w, x0, x1, f);
            bad += f[0] != w * x0 || f[1] != w * x1;
            pe8_fabric(w, x0, x1, f);
            bad += f[0] != w * x0 || f[1] != w * x1;
#ifdef FILMQNN_NATIVE_PE
            {
                long long t[8][1] = {};
                long long P = sgn ? pe8_dsp_signed_product(pe8_dsp_signed_wport(w),
                                                           pe8_dsp_signed_xport(x0, x1))
                                  : pe8_dsp_unsigned_product(pe8_dsp_unsigned_wport(w),
                                                             pe8_dsp_unsigned_xport(x0, x1));
                if (sgn) pe8_dsp_signed_tsum<1>(P, t, 0); else pe8_dsp_unsigned_tsum<1>(P, t, 0);
                if (sgn) pe8_dsp_signed_tfields<1>(t, 0, f);
                else pe8_dsp_unsigned_tfields<1>(t, 0, f);
                bad += f[0] != w * x0 || f[1] != w * x1;
                if (sgn) LANES(pe8_dsp_signed, P, f); else LANES(pe8_dsp_unsigned, P, f);
                bad += f[0] != w * x0 || f[1] != w * x1;
            }
#endif
            n++;
        }
    }
    printf("%%ld %%ld\n", n, bad);
    return bad != 0;
}
"""


def _cpu_flags() -> set[str]:
    """The flags /proc/cpuinfo lists for this CPU (empty where it does not exist)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    return {f for ln in text.splitlines() if ln.startswith("flags") for f in ln.split()[2:]}


BUILDS = {"ap_int": [], "native": ["-DFILMQNN_NATIVE_PE"],
          "native-avx512": ["-DFILMQNN_NATIVE_PE", "-march=native"],
          "native-avx512-no-vbmi2": ["-DFILMQNN_NATIVE_PE", "-march=native", "-mno-avx512vbmi2"]}


@pytest.mark.parametrize("build", list(BUILDS))
@pytest.mark.parametrize("dsp", ["dsp48e1", "dsp48e2"])
def test_packed_multiplies_exhaustive(dsp, build, tmp_path):
    """Weights -8..7 (the 4-bit field, beyond the -7..7 grid) and -127..127, activations over
    the whole unsigned and signed 5-bit ranges, every combination of both slots; both bodies
    (``ap_int`` for synthesis, 64-bit integers for the C-sim library) give the same products,
    and so does the C-sim's adder-tree form (the fields from P's rounded-shift sums, linear
    in the sums, so exact for any number of products when exact for one; with AVX-512 the
    32-bit lane form of the sums, with and without the VBMI2 funnel shift, holds the same
    sums modulo 2^32)."""
    if shutil.which("g++") is None:
        pytest.fail("g++ is missing: run scripts/setup.sh")
    if "avx512" in build and "avx512f" not in _cpu_flags():
        pytest.skip("this CPU has no AVX-512")
    src = tmp_path / "pe.cpp"
    src.write_text(HARNESS % pe_functions(dsp))
    exe = tmp_path / "pe"
    subprocess.run(["g++", "-O1", "-std=c++14", "-w", *BUILDS[build], "-I", str(ap_types_dir()),
                    str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    n, bad = map(int, out.stdout.split())
    assert n == 2 * (16 ** 2 * 32 ** 2 + 255 * 32 ** 2)
    assert bad == 0 and out.returncode == 0
