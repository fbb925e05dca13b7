"""Every packing scheme is bit-exact (exhaustive + extremal), and broken ones are caught."""

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from filmqnn.hw.dsp_packing import (
    PACKING_SCHEMES,
    Term,
    best_packing,
    check_scheme,
    get_scheme,
    max_safe_depth,
    split8_packing,
)

IDS = [
    f"{s.dsp}-{s.name}-w{s.wbits}a{s.abits}-{'s' if s.signed_act else 'u'}" for s in PACKING_SCHEMES
]


@pytest.mark.parametrize("scheme", PACKING_SCHEMES, ids=IDS)
def test_scheme_is_exact(scheme):
    r = check_scheme(scheme, random_sequences=512)
    n_w = scheme.weight_range[1] - scheme.weight_range[0] + 1
    n_a = scheme.act_range[1] - scheme.act_range[0] + 1
    assert r.exhaustive_cases == n_w ** len(scheme.weight_terms) * n_a ** len(scheme.act_terms)
    assert r.mismatches == 0


SPLIT8 = [split8_packing(d, 5, sg) for d in ("dsp48e1", "dsp48e2") for sg in (False, True)]


@pytest.mark.parametrize("scheme", SPLIT8, ids=lambda s: f"{s.dsp}-{s.signed_act}")
def test_split8_nibble_scheme(scheme):
    """Split 8-bit weights put -8 in the 4-bit fields: its own scheme, exhaustively checked
    over -8..7 at its own depth, which one cycle more breaks."""
    assert scheme.weight_range == (-8, 7)
    general = best_packing(scheme.dsp, 4, 5, scheme.signed_act, general_only=True)
    assert 1 <= scheme.accumulate_depth <= general.accumulate_depth
    r = check_scheme(scheme, random_sequences=512)
    assert r.exhaustive_cases == 16 ** 2 * (32 ** 2) and r.mismatches == 0
    deeper = check_scheme(scheme, depth=scheme.accumulate_depth + 1, random_sequences=64,
                          exhaustive=False)
    assert deeper.mismatches > 0


@pytest.mark.parametrize("scheme", PACKING_SCHEMES, ids=IDS)
def test_one_cycle_too_deep_is_caught(scheme):
    r = check_scheme(
        scheme, depth=scheme.accumulate_depth + 1, random_sequences=64, exhaustive=False
    )
    assert r.mismatches > 0


def test_too_few_guard_bits_is_caught():
    paper = get_scheme("dsp48e1", 4, 5, "paper")
    # 9-bit fields: a single 9-bit product still fits (depth 1) but no guard bit for depth 2.
    nine = replace(
        paper, act_terms=(Term("B", 0), Term("B", 9)), weight_terms=(Term("A", 0), Term("D", 18))
    )
    assert max_safe_depth(nine) == 1
    assert check_scheme(nine, depth=1, random_sequences=16).mismatches == 0
    assert check_scheme(nine, depth=2, random_sequences=16, exhaustive=False).mismatches > 0
    # 8-bit fields: products such as -7 * 31 = -217 collide with the next field.
    eight = replace(
        nine, act_terms=(Term("B", 0), Term("B", 8)), weight_terms=(Term("A", 0), Term("D", 16))
    )
    assert max_safe_depth(eight) == 0
    assert check_scheme(eight, depth=1, random_sequences=16).mismatches > 0


def test_paper_layout_and_counts():
    s = get_scheme("dsp48e1", 4, 5, "paper")
    assert s.products_per_dsp == 4 and s.accumulate_depth == 2
    assert [f.lsb for f in s.fields] == [0, 10, 20, 30]  # paper: [8:0],[18:10],[28:20],[38:30]
    s8 = get_scheme("dsp48e1", 8, 5, "paper")
    assert s8.products_per_dsp == 2 and [f.lsb for f in s8.fields] == [0, 14]


def test_sign_correction_example():
    s = get_scheme("dsp48e1", 4, 5, "paper")
    w, a = np.array([[-7, 5]]), np.array([[31, 2]])
    a_port, d_port, b_port = s.pack_operands(w, a)
    assert (int(a_port[0]), int(d_port[0]), int(b_port[0])) == (-7, 5 << 20, 31 + (2 << 10))
    got = s.run(w[:, None, :], a[:, None, :])[0].tolist()
    assert got == [-7 * 31, -7 * 2, 5 * 31, 5 * 2]


def test_best_packing():
    assert best_packing("dsp48e2", 4, 5).products_per_dsp == 6
    assert best_packing("dsp48e2", 4, 5, general_only=True).name == "wide"
    assert best_packing("dsp48e1", 4, 5, general_only=True).products_per_dsp == 4
    assert best_packing("dsp48e1", 8, 5).products_per_dsp == 2
    with pytest.raises(ValueError, match="dsp48e1"):
        best_packing("dsp48e9", 4, 5)
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        best_packing("dsp48e1", 3, 3)
    with pytest.raises(ValueError, match="conv3x2"):
        get_scheme("dsp48e1", 4, 5, "nope")


def _invoke(args):
    from filmqnn.cli.main import app

    # With a single registered command Typer runs it without its name.
    if len(app.registered_commands) > 1 or app.registered_groups:
        args = ["dsp-pack", *args]
    return CliRunner().invoke(app, args)


def test_cli_json():
    res = _invoke(["--dsp", "dsp48e1", "--wbits", "8", "--abits", "5", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["products_per_dsp"] == 2 and out["mismatches"] == 0
    assert out["checked_cases"] > 0 and out["accumulate_depth"] >= 2


def test_cli_bad_input():
    res = _invoke(["--dsp", "dsp48e7", "--wbits", "4", "--abits", "5", "--json"])
    assert res.exit_code != 0
    assert "valid choices" in res.output
