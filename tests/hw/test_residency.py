from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filmqnn.hw.design import DesignPoint, EngineOptions, check_design, design_arrays, engine_layers
from filmqnn.hw.devices import load_board
from filmqnn.hw.dse import explore
from filmqnn.hw.layers import LayerShape, model_layers
from filmqnn.hw.performance import (
    ddr_bits_per_cycle,
    group_write,
    network_bound_vec,
    network_cycles_vec,
    network_performance,
    step_load,
    traffic_bound_bits,
)
from filmqnn.hw.residency import (
    STORE_WORDS_PER_BRAM,
    VALUES_PER_WORD,
    place_tensors,
    plan,
    tensor_words,
)
from filmqnn.hw.schedule_sim import simulate_network


def _conv(name, n, m, hw, tin, tout, tskip=-1):
    return LayerShape(name, "conv", n, m, hw, hw, hw, hw, 1, tin=tin, tout=tout, tskip=tskip,
                      residual=tskip >= 0)


def _chain():
    # x -> a -> b -> c (+ a's output) -> host: tensors 0 (a), 1 (b), 2 (c, the output)
    return [_conv("a", 7, 14, 4, -1, 0), _conv("b", 14, 7, 4, 0, 1),
            _conv("c", 7, 14, 4, 1, 2, tskip=0)]


def test_tensor_words_pack_seven_values_per_word():
    assert VALUES_PER_WORD == 7
    assert tensor_words(14, 16) == 32 and tensor_words(15, 16) == 48


def test_plan_by_hand():
    L = _chain()
    w0, w1 = tensor_words(14, 16), tensor_words(7, 16)  # 32, 16 words
    # everything fits: a's output lives over a..c (c adds it), b's over b..c
    a, b, c = place_tensors(L, 10**6)
    assert (a.in_chip, a.out_chip) == (False, True)  # the network input stays in DDR
    assert (b.in_chip, b.out_chip) == (True, True)
    assert (c.in_chip, c.skip_chip, c.out_chip) == (True, True, False)  # output to the host
    placed = {q.tensor: q for q in plan(tuple(L), 10**6)}
    assert placed[0].words == w0 and (placed[0].first, placed[0].last) == (0, 2)
    assert (placed[1].first, placed[1].last) == (1, 2)
    assert placed[1].offset >= placed[0].offset + w0  # live together: no shared word
    # room for one of the two (they live together at b and c): equal savings per word and
    # layer of lifetime, so the earlier one; a tensor larger than the store stays in DDR
    a, b, c = place_tensors(L, w0)
    assert a.out_chip and b.in_chip and c.skip_chip and not b.out_chip and not c.in_chip
    a, b, c = place_tensors(L, w1)
    assert not a.out_chip and b.out_chip and c.in_chip and not c.skip_chip
    # no store: nothing moves
    assert place_tensors(L, 0) == L


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 9), st.booleans()), min_size=2,
                max_size=12), st.integers(0, 400))
def test_plans_never_overlap_or_overflow(spec, capacity):
    layers, prev = [], -1
    for i, (m, hw, skip) in enumerate(spec):
        tskip = i - 2 if skip and i >= 2 else -1
        layers.append(_conv(f"l{i}", 8, m, hw, prev, i, tskip))
        prev = i
    placed = plan(tuple(layers), capacity)
    for q in placed:
        assert 0 <= q.offset and q.offset + q.words <= capacity
        assert q.tensor != len(layers) - 1  # the network output has no reader on chip
        for r in placed:
            if r is not q and q.first <= r.last and r.first <= q.last:
                assert q.offset + q.words <= r.offset or r.offset + r.words <= q.offset
    on = {q.tensor for q in placed}
    for ly in place_tensors(layers, capacity):
        assert ly.out_chip == (ly.tout in on) and ly.in_chip == (ly.tin in on)


def test_resnet50_graph_with_an_unlimited_store():
    L = engine_layers(model_layers("resnet50"), EngineOptions(), 10**6)
    assert not L[0].in_chip  # the network input
    assert not L[-1].out_chip  # the logits go to the host
    assert all(ly.in_chip for ly in L[1:])
    assert all(ly.out_chip for ly in L[:-1])
    adds = [ly for ly in L if ly.residual]
    assert len(adds) == 16 and all(ly.skip_chip for ly in adds)


def test_store_moves_traffic_off_ddr_but_keeps_the_transfer_time():
    ly = _conv("b", 64, 64, 8, 0, 1)
    on = replace(ly, in_chip=True, out_chip=True)
    args = (4 * 64, 4, 128, 2, 100.0)
    t_ddr, bits_ddr = step_load(ly, 8, 8, 64, *args)
    t_chip, bits_chip = step_load(on, 8, 8, 64, *args)
    w_bits = 4 * 64 * 64  # the weights still come from DDR
    assert bits_chip == pytest.approx(np.ceil(w_bits / 128) * 128)
    assert bits_ddr > bits_chip and t_chip <= t_ddr
    t_w, b_w, _ = group_write(ly, 8, 8, 64, 4, 64, 128, 2, 100.0)
    t_wc, b_wc, _ = group_write(on, 8, 8, 64, 4, 64, 128, 2, 100.0)
    assert b_wc == 0 and b_w > 0 and t_wc <= t_w
    D = {"Tm4": np.array([60]), "Tm8": np.array([4])}
    full = traffic_bound_bits(ly, D, EngineOptions())
    assert traffic_bound_bits(on, D, EngineOptions()) == full - 2 * 64 * 64 * 5


def test_designs_with_different_stores_evaluate_as_one_batch():
    b = load_board("zcu102")
    L = model_layers("resnet18")
    d = DesignPoint(64, 3, 64, 7, 28, 4, dsp4=3904, dsp8=192, post=64, clock_mhz=150, ports=4)
    stores = [0, 64, 512, 0, 2048]
    designs = [replace(d, store=s) for s in stores]
    D = {k: np.concatenate([design_arrays(x, b)[k] for x in designs])
         for k in design_arrays(d, b)}
    opts = EngineOptions()
    batch = network_cycles_vec(L, D, b, 150.0, opts)
    one = [network_cycles_vec(L, design_arrays(x, b), b, 150.0, opts)[0] for x in designs]
    assert list(batch) == pytest.approx(one)
    assert np.all(network_bound_vec(L, D, opts, ddr_bits_per_cycle(b, 150.0)) <= batch)
    assert batch[2] < batch[0]  # a store saves DDR waits
    perf = network_performance(L, designs[4], b)
    assert perf["cycles"] == pytest.approx(one[4])
    assert perf["layers"][1].on_chip == ("input", "output")


def test_simulator_agrees_with_a_store():
    b = load_board("pynq-z2")
    L = model_layers("mobilenet_v2")
    d = DesignPoint(24, 1, 16, 16, 28, 6, dsp4=312, dsp8=16, post=24, clock_mhz=100, ports=4,
                    store=200)
    ana = network_performance(L, d, b)["layers"]
    assert any(lp.on_chip for lp in ana)
    for (name, s), a in zip(simulate_network(L, d, b), ana, strict=True):
        assert abs(a.cycles - s) <= 0.05 * s, (name, a.cycles, s)


def test_dse_gives_free_bram_to_the_store():
    b = load_board("zcu102")
    L = model_layers("resnet50")
    r = explore(L, b)
    assert r.best.store > 0 and r.resources.bram18k <= r.limits["bram18k"]
    assert r.resources.breakdown["feature_store"]["bram18k"] == r.best.store
    used = max(q.offset + q.words for q in plan(tuple(engine_layers(L, EngineOptions())),
                                                r.best.store * STORE_WORDS_PER_BRAM))
    assert r.best.store == -(-used // STORE_WORDS_PER_BRAM)  # trimmed to what the plan uses
    off = explore(L, b, opts=EngineOptions(fm_store=False))
    assert off.best.store == 0 and off.performance["fps"] < r.performance["fps"]
    with pytest.raises(ValueError, match="store"):
        check_design(replace(r.best, store=-1))


def test_a_design_models_the_same_in_any_batch():
    """The DSE evaluates designs in batches: a design's cycles must not depend on the others
    (per-layer options such as tile rows and chunks are chosen per design)."""
    b = load_board("pynq-z2")
    L = model_layers("resnet50")
    designs = [
        DesignPoint(32, 2, 16, 14, 16, 4, dsp4=344, dsp8=32, post=8, clock_mhz=100, ports=2,
                    buf=2),
        DesignPoint(16, 1, 32, 8, 14, 6, dsp4=344, dsp8=32, post=8, clock_mhz=100, ports=2,
                    buf=8, store=16),
        DesignPoint(12, 1, 32, 7, 14, 6, dsp4=328, dsp8=32, post=12, clock_mhz=100, ports=3,
                    buf=4),
        DesignPoint(24, 1, 16, 16, 28, 6, dsp4=312, dsp8=16, post=24, clock_mhz=100, ports=4,
                    buf=1, store=64),
    ]
    D = {k: np.concatenate([design_arrays(x, b)[k] for x in designs])
         for k in design_arrays(designs[0], b)}
    opts = EngineOptions()
    batch = network_cycles_vec(L, D, b, 100.0, opts)
    one = [network_cycles_vec(L, design_arrays(x, b), b, 100.0, opts)[0] for x in designs]
    assert list(batch) == pytest.approx(one)
