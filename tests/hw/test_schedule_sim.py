import pytest

from filmqnn.hw.design import DesignPoint, EngineOptions, engine_layers
from filmqnn.hw.devices import load_board
from filmqnn.hw.layers import LayerShape, model_layers
from filmqnn.hw.performance import network_performance
from filmqnn.hw.schedule_sim import simulate_layer, simulate_network

MODELS = ("resnet18", "resnet50", "mobilenet_v2")


#: Designs `explore` picks for the 224x224 networks (implemented engine, first/last 8-bit;
#: fixed here, so the test does not run six searches): Tm, Tm8, Tn, Tr, Tc, G, dsp4, dsp8, post,
#: ports, buf, store, rings, store_banks, raw_lutram.
PICKED = {
    ("resnet18", "zcu102"): (64, 3, 64, 16, 48, 8, 3904, 192, 128, 6, 8, 288, True, 2, False),
    ("resnet50", "zcu102"): (64, 3, 64, 16, 48, 8, 3904, 192, 128, 6, 2, 768, True, 2, False),
    ("mobilenet_v2", "zcu102"): (96, 5, 48, 7, 112, 6, 4368, 24, 144, 6, 2, 480, False, 2,
                                 False),
    ("resnet18", "pynq-z2"): (32, 2, 16, 14, 48, 4, 332, 32, 8, 2, 2, 0, True, 1, False),
    ("resnet50", "pynq-z2"): (16, 1, 32, 16, 48, 4, 332, 32, 8, 2, 2, 12, True, 1, False),
    ("mobilenet_v2", "pynq-z2"): (24, 1, 16, 8, 28, 6, 204, 16, 48, 3, 1, 84, True, 2, True),
}


def _designs():
    out = []
    for (m, board), p in PICKED.items():
        b = load_board(board)
        keys = ("Tm", "Tm8", "Tn", "Tr", "Tc", "G", "dsp4", "dsp8", "post", "ports", "buf",
                "store", "rings", "store_banks", "raw_lutram")
        out.append((m, b, DesignPoint(**dict(zip(keys, p, strict=True)),
                                      clock_mhz=b.default_clock_mhz)))
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
