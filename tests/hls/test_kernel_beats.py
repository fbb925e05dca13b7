"""The kernel's AXI-word field helpers in the C-sim library's native build (``beat_get`` /
``beat_set`` on the ap_types model's 64-bit words) equal ``range()`` read and assignment on
every field position and width of a beat, for the 64- and 128-bit ports of the test designs."""

import subprocess

import pytest

from filmqnn.hls.csim import ap_types_dir
from filmqnn.hls.project import write_project
from filmqnn.hw.devices import load_board

HARNESS = r"""
#include <cstdio>
#include "engine.cpp"
int main() {
    unsigned long long seed = 88172645463325252ull;
    auto next = [&]() { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; return seed; };
    long bad = 0, n = 0;
    for (int trial = 0; trial < 4; trial++) {
        axi_word_t beat = 0;
        for (int i = 0; i < AXI_BITS; i += 32) beat.range(i + 31, i) = (unsigned)next();
        for (int lo = 0; lo < AXI_BITS; lo++)
            for (int w = 1; w <= 64 && lo + w <= AXI_BITS; w++) {
                ap_uint<64> want = beat.range(lo + w - 1, lo);
                bad += beat_get(beat, lo, w) != want.to_uint64();
                unsigned long long v = next();
                axi_word_t a = beat, b = beat;
                beat_set(a, lo, w, v);
                b.range(lo + w - 1, lo) = v & (w == 64 ? ~0ull : (1ull << w) - 1);
                bad += a != b;
                n++;
            }
    }
    printf("%ld %ld\n", n, bad);
    return bad != 0;
}
"""


@pytest.mark.parametrize("design", ["zcu102", "pynq-z2"])
def test_native_beat_fields_equal_range(design, designs, graph_for, tmp_path):
    board, d = designs[design]
    b = load_board(board)
    write_project(graph_for("resnet18_small", design), d, b, tmp_path / "prj")
    src = tmp_path / "beats.cpp"
    src.write_text(HARNESS)
    exe = tmp_path / "beats"
    subprocess.run(["g++", "-O1", "-std=c++14", "-w", "-DFILMQNN_NATIVE_PE", "-I",
                    str(tmp_path / "prj/src"), "-I", str(ap_types_dir()), str(src), "-o",
                    str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    n, bad = map(int, out.stdout.split())
    bits = b.axi_width_bits
    assert n == 4 * sum(min(64, bits - lo) for lo in range(bits))
    assert bad == 0 and out.returncode == 0
