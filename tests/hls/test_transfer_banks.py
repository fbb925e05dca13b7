"""The C-sim's bank checker: the words one trip of a transfer loop moves into or out of one
bank of a tile buffer, the banks as the resource model counts them (docs/hls.md, "Transfers
against the buffers' banks"). A bank serves one word a cycle, so a loop keeps its II only
where no bank takes more words in a trip than the II has cycles."""

import math

import numpy as np
import pytest

from filmqnn.hls.csim import STATS, CsimEngine
from filmqnn.hls.project import write_project
from filmqnn.hw.devices import load_board
from filmqnn.lower.artifact import save_artifact

PATHS = ("bank_write", "bank_store", "bank_round", "bank_skip")
#: (model, test design): the PYNQ-Z2 test design (three ports, two store banks per port, a
#: tile of one channel group) and its wide variant (four groups a tile)
CASES = (("mobilenet_v2_small", "pynq-z2"), ("resnet18_small", "pynq-z2"),
         ("resnet18_small", "pynq-z2-wide"))


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def banks(request, graph_for, designs, tmp_path_factory):
    """Per layer of the model on the design, the checker's figures in the ap_int build (the
    loops synthesis reads), and the project's config header."""
    model, key = request.param
    tmp = tmp_path_factory.mktemp("banks")
    board, design = designs[key]
    graph = graph_for(model, key)
    save_artifact(graph, tmp / "art")
    write_project(graph, design, load_board(board), tmp / "prj", tmp / "art")
    eng = CsimEngine(tmp / "prj", native_pe=False)
    x = np.random.default_rng(0).integers(-128, 128, tuple(eng.meta["input_shape"]))
    stats = eng.run(x).stats
    cols = {p: stats[:, STATS.index(p)] for p in PATHS}
    return cols, request.param, (tmp / "prj/src/engine_config.h").read_text()


def _define(config: str, name: str) -> int:
    return next(int(line.split()[2]) for line in config.splitlines()
                if line.startswith(f"#define {name} "))


def test_checker_sees_every_path(banks):
    """Every path moves words (a checker that saw nothing would pass anything); ResNet-18 reads
    residual operands from DDR."""
    cols, (model, _), _ = banks
    for p in PATHS:
        if p != "bank_skip" or model.startswith("resnet"):
            assert cols[p].max() >= 1, p


def test_write_back_reads_a_units_columns_from_two_banks(banks):
    """At most, a write-back trip reads WRITE_BEATS beats of one channel group's row (into
    the store; to DDR where a slice's per-port runs share a group): their WRITE_BEATS x WPB
    columns from the accumulators' PIXELS column banks."""
    cols, _, config = banks
    beats, wpb, pixels = (_define(config, k) for k in ("WRITE_BEATS", "WPB", "PIXELS"))
    assert cols["bank_write"].max() == math.ceil(beats * wpb / pixels)


def test_ddr_rounds_take_a_word_a_bank_unless_a_group_gives_several_rows(banks):
    """A DDR round's rows go across the tile's channel groups, one row per port. With a group
    per port (the wide design: 4 groups, 3 ports) every bank of the input tile takes one word
    a trip. With one group a tile its rows share the round: MobileNet-V2's 3x3 depthwise
    window gives the input tile 3 row phases, one per port's row; ResNet-18's tile has one,
    so its rows' words share the column banks (with a row's zero padding column beside
    them, more than the ports)."""
    cols, (model, key), config = banks
    ports, rp, tn, g = (_define(config, k) for k in ("PORTS", "IB_RP", "TN", "G"))
    if key == "pynq-z2-wide":
        assert tn // g > ports and cols["bank_round"].max() == 1
    elif model.startswith("mobilenet"):
        assert rp == ports and cols["bank_round"].max() == 1
    else:
        assert tn == g and rp == 1 and cols["bank_round"].max() >= ports


def test_residual_rounds_share_the_residual_tiles_column_banks(banks):
    """The residual tile has PIXELS column banks and no row phases: a beat's WPB words take
    ceil(WPB / PIXELS) of a bank, whatever the groups."""
    cols, (model, _), config = banks
    if not model.startswith("resnet"):
        pytest.skip("the small MobileNet-V2 reads no residual operand from DDR")
    wpb, pixels = _define(config, "WPB"), _define(config, "PIXELS")
    assert cols["bank_skip"].max() >= math.ceil(wpb / pixels)


@pytest.mark.xfail(strict=True, reason="the store's runs and the write-back move data along "
                   "a row, not in rounds across channel groups, and the residual tile has "
                   "fewer column banks than a beat has words (docs/hls.md, 'Transfers against "
                   "the buffers' banks')")
def test_no_bank_takes_more_than_its_loop_ii(banks):
    cols, _, config = banks
    assert cols["bank_write"].max() <= _define(config, "WRITE_II")
    assert cols["bank_store"].max() <= 1
    assert cols["bank_round"].max() <= 1
    assert cols["bank_skip"].max() <= 1
