"""The FPS range: nominal = the model's point figure, pessimistic below it, each assumption
pulling the right way."""

from dataclasses import replace

import pytest

from filmqnn.hw.design import IMPLEMENTED, DesignPoint
from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore
from filmqnn.hw.fps_range import NOMINAL, PESSIMISTIC, fps_range, fps_under
from filmqnn.hw.layers import model_layers
from filmqnn.hw.performance import PIPE_DEPTH, network_performance
from filmqnn.hw.report import summary

BOARD = load_board("pynq-z2")
DESIGN = DesignPoint(32, 2, 16, 14, 14, 4, dsp4=204, dsp8=32, post=8, clock_mhz=100, ports=2)


@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v2"])
def test_nominal_is_the_model_and_pessimistic_is_below(model):
    L = model_layers(model)
    r = fps_range(L, DESIGN, BOARD, IMPLEMENTED, dsp_used=100)
    assert r["nominal"] == pytest.approx(network_performance(L, DESIGN, BOARD,
                                                             IMPLEMENTED)["fps"])
    assert r["pessimistic"] < r["nominal"]
    assert set(r["assumptions"]) == {"nominal", "pessimistic"}


@pytest.mark.parametrize("change", [
    dict(ddr_efficiency=0.5), dict(pipe_depth=3 * PIPE_DEPTH), dict(group_overhead=100),
])
def test_each_pessimistic_assumption_lowers_fps(change):
    L = model_layers("resnet18")
    base = fps_under(L, DESIGN, BOARD, IMPLEMENTED, 100, NOMINAL)
    worse = fps_under(L, DESIGN, BOARD, IMPLEMENTED, 100, replace(NOMINAL, **change))
    assert worse < base


def test_clock_derate_only_at_full_dsp():
    L = model_layers("resnet18")
    a = replace(NOMINAL, clock_derate=0.5)
    base = fps_under(L, DESIGN, BOARD, IMPLEMENTED, BOARD.dsp - 1, NOMINAL)
    assert fps_under(L, DESIGN, BOARD, IMPLEMENTED, BOARD.dsp - 1, a) == pytest.approx(base)
    assert fps_under(L, DESIGN, BOARD, IMPLEMENTED, BOARD.dsp, a) == pytest.approx(base / 2)


def test_explore_reports_the_range():
    L = model_layers("resnet18")
    r = explore(L, BOARD, opts=IMPLEMENTED)
    s = summary(r, BOARD, "resnet18")["fps_range"]
    assert s["nominal"] == pytest.approx(r.performance["fps"])
    assert s["pessimistic"] < s["nominal"]
    assert s["assumptions"]["pessimistic"] == {
        "name": "pessimistic", "ddr_efficiency": PESSIMISTIC.ddr_efficiency,
        "pipe_depth": 2 * PIPE_DEPTH, "group_overhead": PESSIMISTIC.group_overhead,
        "clock_derate": PESSIMISTIC.clock_derate}
