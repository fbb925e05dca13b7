"""hls_rule_violations: C++ constructs Vitis HLS cannot synthesize, or cannot bound."""

import pytest

from filmqnn.hls.rules import hls_rule_violations


def rules(src: str) -> list[str]:
    """The rule names of the violations, in line order."""
    return [v.split(": ")[1] for v in hls_rule_violations(src)]


def lines(src: str) -> list[int]:
    return [int(v.split(":")[0].split()[1]) for v in hls_rule_violations(src)]


CLEAN = """\
#include "engine.h"
#include <cstring>
#include <ap_int.h>

static const int N = 16;

struct Cfg {
    Cfg(const Cfg &) = delete;  // a deleted function is not 'delete'
};

void copy(ap_uint<64> *dst, const ap_uint<64> *src) {
    for (int i = 0; i < N; i++) {
#pragma HLS pipeline II=1
        dst[i] = src[i];
    }
}

int sum(const int a[ROWS][COLS], hls::vector<int, 4> v) {
    int s = 0;
rows:
    for (int r = 0; r < ROWS; ++r) {
        for (int c = 0; c <= COLS - 1; c++) {
#pragma HLS unroll
            s += a[r][c];
        }
    }
    for (int k = N * 2 - 1; k >= 0; --k) s += k;
    for (int x : v.data) s += x;
    int j = 0;
    do {
        j++;
    } while (j < 8);
    while (j != 0x10) j++;
    const char *msg = "new delete goto malloc(1) std::vector<int>";
    // std::string in a comment; goto; new int[3];
    /* for (;;) { } */
    return s + (msg != 0);
}
"""


def test_clean_kernel_has_no_violations():
    assert hls_rule_violations(CLEAN) == []


@pytest.mark.parametrize(
    "stmt,detail",
    [
        ("int *p = new int[8];", "'new'"),
        ("delete[] p;", "'delete'"),
        ("void *m = malloc(64);", "'malloc()'"),
        ("int *c = (int *)calloc(4, 4);", "'calloc()'"),
        ("m = realloc(m, 8);", "'realloc()'"),
        ("free(m);", "'free()'"),
    ],
)
def test_dynamic_memory(stmt, detail):
    src = f"void k(int *p, void *m) {{\n    {stmt}\n}}\n"
    (v,) = hls_rule_violations(src)
    assert v.startswith("line 2: dynamic-memory: ") and detail in v


@pytest.mark.parametrize(
    "stmt,name",
    [
        ("std::vector<int> v;", "std::vector"),
        ("std::map<int, int> m;", "std::map"),
        ("std::string s;", "std::string"),
        ("std::list<int> l;", "std::list"),
        ("std::deque<int> d;", "std::deque"),
        ("std::unique_ptr<int> u;", "std::unique_ptr"),
        ("std::shared_ptr<int> s;", "std::shared_ptr"),
        ("vector<int> v;", "vector<...>"),  # after using namespace std
    ],
)
def test_stl(stmt, name):
    (v,) = hls_rule_violations(f"void k() {{\n    {stmt}\n}}\n")
    assert v.startswith("line 2: stl: ") and name in v


@pytest.mark.parametrize("header", ["vector", "map", "string", "list", "deque", "memory"])
def test_stl_includes(header):
    assert hls_rule_violations(f'#include "engine.h"\n#include <{header}>\n') == [
        f"line 2: stl: '#include <{header}>'"
    ]


def test_stl_lookalikes_pass():
    src = (
        "#include <string.h>\n#include <cstring>\n#include <hls_vector.h>\n"
        "void k(hls::vector<int, 8> v, int list_len, int map_id) {\n"
        "    memcpy(0, 0, 0);\n}\n"
    )
    assert hls_rule_violations(src) == []


def test_recursion():
    src = """\
int fact(int n) {
    if (n <= 1) return 1;
    return n * fact(n - 1);
}
int twice(int n) { return helper(n) + helper(n); }
template <int D> int depth() { return 1 + depth<D - 1>(); }
void Engine::run(int n) {
    if (n > 0) {
        run(n - 1);
    }
}
void call_other(Engine &e) { e.run(3); }
"""
    assert hls_rule_violations(src) == [
        "line 3: recursion: function 'fact' calls itself",
        "line 9: recursion: function 'run' calls itself",
    ]


def test_goto():
    src = "void k(int *p) {\nagain:\n    p[0]++;\n    if (p[0] < 3) goto again;\n}\n"
    assert hls_rule_violations(src) == ["line 4: goto: 'goto' is not supported"]


LOOPS = """\
void k(int *p, int n, int start) {
    for (int i = 0; i < n; i++) {
#pragma HLS pipeline II=1
#pragma HLS loop_tripcount min=1 max=1024
        p[i] = 0;
    }
    for (int i = 0; i < n; i++) {
#pragma HLS pipeline II=1
        p[i] = 1;
    }
    while (n > 0) {
        n--;
    }
    while (n > 0) {
#pragma HLS loop_tripcount max=64
        n--;
    }
    for (int i = start; i >= 0; --i) p[i] = 2;
    for (int i = N - 1; i >= 0; --i) p[i] = 3;
    do {
        n++;
    } while (n < start);
    for (int i = 0; i < n; i++) {
#pragma HLS unroll factor=2
        p[i] = 4;
    }
    for (int i = 0; i < n && i < MAX_N; i++) p[i] = 5;
    for (int i = 0; i < n || i < 4; i++) p[i] = 6;
    for (;;) {
        break;
    }
}
"""


def test_loop_bounds():
    got = hls_rule_violations(LOOPS)
    assert all(": unbounded-loop: " in v for v in got)
    # 2: tripcount (ok); 7: pipeline only; 11: no pragma; 14: tripcount (ok); 18: counts down
    # from a variable; 19: from a constant (ok); 20: do-while, variable; 23: partial unroll;
    # 27: && with a constant (ok); 28: || ; 29: for (;;)
    assert lines(LOOPS) == [7, 11, 18, 20, 23, 28, 29]
    assert "'i < n'" in got[0] and "'n > 0'" in got[1] and "'(none)'" in got[-1]


def test_nested_loop_pragma_does_not_bound_the_outer_loop():
    src = """\
void k(int *p, int n) {
    for (int o = 0; o < n; o++) {
        for (int i = 0; i < n; i++) {
#pragma HLS loop_tripcount max=8
            p[i] = o;
        }
    }
}
"""
    assert lines(src) == [2]
    fixed = src.replace("o++) {\n", "o++) {\n#pragma HLS loop_tripcount max=4\n")
    assert hls_rule_violations(fixed) == []


def test_constant_names_and_expressions():
    src = """\
template <int W, int lanes> void f(int *p) {
    const int per = BEAT_BYTES / 4;
    constexpr int half = per / 2;
    for (int e = 0; e < (W == 4 ? 2 : 1); e++) p[e] = 0;
    for (int k = 0; k < per; k++) p[k] = 1;
    for (int k = 0; k < half * 2 + 1; k++) p[k] = 2;
    for (int k = 0; k < lanes; k++) p[k] = 3;
    for (int k = 0; k < (int)N; k++) p[k] = 4;
    for (int k = 0; 1 << LOG_N > k; k++) p[k] = 5;
}
void g(int *p, int n) {
    int words = BEAT_BYTES / 4;
    const int m = n;
    for (int k = 0; k < words; k++) p[k] = 6;
    for (int k = 0; k < m; k++) p[k] = 7;
    for (int k = 0; k < n << 1; k++) p[k] = 8;
}
"""
    # a plain int, a const from a variable, a variable shifted: no compile-time bound
    assert lines(src) == [14, 15, 16]


def test_csim_only_code_is_ignored():
    src = """\
#include "engine.h"
#ifndef __SYNTHESIS__
#include <vector>
#include <cstdio>
static std::vector<long> counters;
static void trace(int n) {
    for (int i = 0; i < n; i++) counters.push_back(i);
    int *tmp = new int[n];
    delete[] tmp;
}
#endif
#if !defined(__SYNTHESIS__)
static std::map<int, int> seen;
#else
static int synthesized_only;
#endif
#ifdef __SYNTHESIS__
static int on_chip[16];
#else
static std::string log_name;
#endif
void k(int *p) {
    for (int i = 0; i < 4; i++) p[i] = 0;
#ifndef __SYNTHESIS__
    trace(4);
    for (int i = 0; i < p[0]; i++) counters.push_back(i);
#endif
}
"""
    assert hls_rule_violations(src) == []
    # the same code outside the guard is reported, with its own line numbers
    unguarded = src.replace("#ifndef __SYNTHESIS__\n#include <vector>", "#if 1\n#include <vector>")
    assert rules(unguarded)[:4] == ["stl", "stl", "unbounded-loop", "dynamic-memory"]
    assert lines(unguarded)[:2] == [3, 5]


def test_native_csim_build_is_ignored_and_its_else_is_checked():
    """``#ifdef FILMQNN_NATIVE_PE`` (the C-sim library's native build) is C-sim only; its
    ``#else`` is what synthesis compiles."""
    src = """\
void k(int *p, int n) {
#ifdef FILMQNN_NATIVE_PE
    for (int i = 0; i < n; i++) p[i] = 0;
#else
    for (int i = 0; i < n; i++) p[i] = 1;
#endif
}
"""
    assert lines(src) == [5] and rules(src) == ["unbounded-loop"]


def test_nested_conditionals_inside_the_guard():
    src = """\
#ifndef __SYNTHESIS__
#if DEBUG
static std::vector<int> a;
#else
static std::vector<int> b;
#endif
#endif
std::vector<int> c;
"""
    assert hls_rule_violations(src) == ["line 8: stl: 'std::vector' (not synthesizable)"]


def test_messages_name_line_and_rule_in_order():
    src = "void k() {\n    goto end;\n    int *p = new int;\nend:\n    free(p);\n}\n"
    assert hls_rule_violations(src) == [
        "line 2: goto: 'goto' is not supported",
        "line 3: dynamic-memory: 'new' (allocate statically sized arrays instead)",
        "line 5: dynamic-memory: 'free()'",
    ]
