import pytest

from filmqnn.hw.design import DesignPoint, EngineOptions, engine_layers
from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore
from filmqnn.hw.layers import LayerShape, model_layers
from filmqnn.hw.performance import network_performance
from filmqnn.hw.schedule_sim import simulate_layer, simulate_network

MODELS = ("resnet18", "resnet50", "mobilenet_v2")


def _designs():
    out = []
    for board in ("zcu102", "pynq-z2"):
        b = load_board(board)
        for m in MODELS:
            out.append((m, b, explore(model_layers(m), b).best))
    out.append(("resnet50", load_board("zcu102"), DesignPoint(64, 3, 64, 7, 14, 8, post=32,
                                                              clock_mhz=150)))
    return out


@pytest.fixture(scope="module")
def designs():
    return _designs()


def test_sim_matches_hand_case():
    b = load_board("pynq-z2")
    ly = LayerShape("c", "conv", 8, 8, 4, 4, 4, 4, 1)
    d = DesignPoint(Tm=8, Tm8=1, Tn=8, Tr=4, Tc=4, G=4, post=16, clock_mhz=100)
    assert simulate_layer(ly, d, b) == network_performance([ly], d, b)["layers"][0].cycles


def _check(model, board, d, opts):
    layers = model_layers(model)
    sim = simulate_network(layers, d, board, opts)
    ana = network_performance(layers, d, board, opts)["layers"]
    assert len(sim) == len(ana) == len(engine_layers(layers, opts))
    for (name, s), a in zip(sim, ana, strict=True):
        assert name == a.name
        assert abs(a.cycles - s) <= 0.05 * s, (model, board.name, d, opts, name, a.cycles, s)


def test_analytic_within_5_percent_of_simulation_on_every_layer(designs):
    for model, board, d in designs:
        _check(model, board, d, EngineOptions())


@pytest.mark.parametrize("taps, outstanding", [(False, False), (True, False), (False, True)])
def test_analytic_matches_simulation_in_every_engine_mode(taps, outstanding):
    opts = EngineOptions(dw_taps=taps, axi_outstanding=outstanding)
    d = DesignPoint(96, 5, 48, 16, 28, 4, dsp4=4368, dsp8=144, post=96, clock_mhz=150)
    _check("mobilenet_v2", load_board("zcu102"), d, opts)
    small = DesignPoint(32, 2, 12, 16, 56, 4, dsp4=0, dsp8=0, post=16, clock_mhz=100)
    _check("mobilenet_v2", load_board("pynq-z2"), small, opts)
