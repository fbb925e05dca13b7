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
    AXI_LATENCY,
    band_switches,
    ddr_bits_per_cycle,
    group_write,
    layer_cycles_vec,
    layer_launch,
    network_bound_vec,
    network_cycles_vec,
    network_performance,
    step_load,
    traffic_bound_bits,
)
from filmqnn.hw.residency import (
    StoreLayout,
    band_rows,
    band_schedule,
    place_tensors,
    plan,
    spans,
    store_bram18k,
    store_layout,
    tensor_beats,
)
from filmqnn.hw.resources import estimate_resources
from filmqnn.hw.schedule_sim import simulate_network


def _conv(name, n, m, hw, tin, tout, tskip=-1):
    return LayerShape(name, "conv", n, m, hw, hw, hw, hw, 1, tin=tin, tout=tout, tskip=tskip,
                      residual=tskip >= 0)


def _chain():
    # x -> a -> b -> c (+ a's output) -> host: tensors 0 (a), 1 (b), 2 (c, the output)
    return [_conv("a", 7, 14, 4, -1, 0), _conv("b", 14, 7, 4, 0, 1),
            _conv("c", 7, 14, 4, 1, 2, tskip=0)]


def _store(beats: int) -> StoreLayout:
    """A store of one channel group of 7 per beat: a tensor takes ceil(C / 7) x pixels."""
    return StoreLayout(beats, 7, 1)


def _words(channels: int, rows: int, cols: int) -> int:
    return tensor_beats(channels, rows, cols, _store(0))


def test_store_holds_beats_of_the_ddr_layout():
    # ZCU102: 128-bit beats, G = 8: 3 words of 8 channels per beat, rows of whole beats
    lay = store_layout(48, 8, 2, 128)  # 2 banks x 4 BRAM18Ks wide: 6 blocks of 512 x 2 beats
    assert lay == StoreLayout(6 * 1024, 8, 3)
    assert tensor_beats(17, 5, 7, lay) == 3 * 5 * 3
    assert store_bram18k(lay.beats, 2, 128) == 48 and store_bram18k(1, 2, 128) == 8
    assert store_layout(7, 8, 2, 128).beats == 0  # less than one block of both banks


def test_plan_by_hand():
    L = _chain()
    w0, w1 = _words(14, 4, 4), _words(7, 4, 4)  # 32, 16 words
    # everything fits: a's output lives over a..c (c adds it), b's over b..c
    a, b, c = place_tensors(L, _store(10**6))
    assert (a.in_chip, a.out_chip) == (False, True)  # the network input stays in DDR
    assert (b.in_chip, b.out_chip) == (True, True)
    assert (c.in_chip, c.skip_chip, c.out_chip) == (True, True, False)  # output to the host
    placed = {q.tensor: q for q in plan(tuple(L), _store(10**6))}
    assert placed[0].words == w0 and (placed[0].first, placed[0].last) == (0, 2)
    assert (placed[1].first, placed[1].last) == (1, 2)
    assert placed[1].offset >= placed[0].offset + w0  # live together: no shared word
    # room for one of the two (they live together at b and c): equal savings per word and
    # layer of lifetime, so the earlier one; a tensor larger than the store stays in DDR
    a, b, c = place_tensors(L, _store(w0))
    assert a.out_chip and b.in_chip and c.skip_chip and not b.out_chip and not c.in_chip
    a, b, c = place_tensors(L, _store(w1))
    assert not a.out_chip and b.out_chip and c.in_chip and not c.skip_chip
    # no store: nothing moves
    assert place_tensors(L, _store(0)) == L


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 9), st.booleans()), min_size=2,
                max_size=12), st.integers(0, 400))
def test_plans_never_overlap_or_overflow(spec, capacity):
    layers, prev = [], -1
    for i, (m, hw, skip) in enumerate(spec):
        tskip = i - 2 if skip and i >= 2 else -1
        layers.append(_conv(f"l{i}", 8, m, hw, prev, i, tskip))
        prev = i
    placed = plan(tuple(layers), _store(capacity))
    for q in placed:
        assert 0 <= q.offset and q.offset + q.words <= capacity
        assert q.tensor != len(layers) - 1  # the network output has no reader on chip
        for r in placed:
            if r is not q and q.first <= r.last and r.first <= q.last:
                assert q.offset + q.words <= r.offset or r.offset + r.words <= q.offset
    on = {q.tensor for q in placed}
    for ly in place_tensors(layers, _store(capacity)):
        assert ly.out_chip == (ly.tout in on) and ly.in_chip == (ly.tin in on)


def test_resnet50_graph_with_an_unlimited_store():
    L = engine_layers(model_layers("resnet50"), EngineOptions(), _store(10**6))
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
    assert np.all(network_bound_vec(L, D, opts, b.axi_width_bits, ddr_bits_per_cycle(b, 150.0))
                  <= batch)
    assert batch[2] < batch[0]  # a store saves DDR waits
    perf = network_performance(L, designs[4], b)  # one design: its steps walked
    assert perf["cycles"] == pytest.approx(one[4], rel=0.02)
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
                                                r.best.store_layout(b), r.best.Tr))
    # trimmed to what the plan uses
    assert r.best.store == store_bram18k(used, r.best.store_bank_count(b), b.axi_width_bits)
    off = explore(L, b, opts=EngineOptions(fm_store=False))
    assert off.best.store == 0 and off.performance["fps"] < r.performance["fps"]
    with pytest.raises(ValueError, match="store"):
        check_design(replace(r.best, store=-1))


@pytest.mark.parametrize("model", ["resnet50", "mobilenet_v2"])
def test_a_design_models_the_same_in_any_batch(model):
    """The DSE evaluates designs in batches: a design's cycles must not depend on the others
    (per-layer options such as tile rows and chunks, and the band rings, are chosen per
    design)."""
    b = load_board("pynq-z2")
    L = model_layers(model)
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


def _dw(name, ch, hw, stride, tin, tout):
    r = (hw - 1) // stride + 1
    return LayerShape(name, "dwconv", ch, ch, hw, hw, r, r, 3, stride=stride, pad=1, groups=ch,
                      tin=tin, tout=tout)


def _block():
    # x -> expand (1x1, 7 -> 42, 32x32) -> dw 3x3 -> project (1x1, 42 -> 7) -> host
    return [_conv("expand", 7, 42, 32, -1, 0), _dw("dw", 42, 32, 1, 0, 1),
            _conv("project", 42, 7, 32, 1, 2)]


def test_band_rows_by_hand():
    expand, dw, project = _block()
    # 8 dw output rows read 8 + 2 input rows; the expand's 8-row bands overshoot them by at
    # most 7 rows (rows 7..16 are read: the expand has written up to row 23)
    assert band_rows(expand, dw, 8) == 17
    assert band_rows(dw, project, 8) == 15  # a 1x1 consumer: 8 rows + at most 7
    down = _dw("dw2", 42, 32, 2, 0, 1)  # stride 2: 8 output rows read 2*7 + 3 input rows
    assert band_rows(expand, down, 8) == 17 + 7
    assert band_rows(expand, dw, 64) == 32  # never more than the map


def test_band_rings_hold_what_whole_tensors_cannot():
    L = _block()
    whole0, whole1 = _words(42, 32, 32), _words(42, 32, 32)  # 6144 each
    ring0, ring1 = _words(42, 17, 32), _words(42, 15, 32)  # 3264, 2880
    assert spans(tuple(L), {0, 1}) == [(0, 2)] * 3
    # a store for both rings only: the three layers run interleaved, both rings live over
    # all of them
    cap = ring0 + ring1
    placed = {q.tensor: q for q in plan(tuple(L), _store(cap), 8)}
    assert {t: (q.words, q.band, q.first, q.last) for t, q in placed.items()} == {
        0: (ring0, True, 0, 2), 1: (ring1, True, 0, 2)}
    e, d, p = place_tensors(L, _store(cap), 8)
    assert (e.out_chip, d.in_chip, d.in_band, d.out_chip, p.in_chip, p.in_band) == (True,) * 6
    assert not e.in_band and not p.out_chip
    # without band fusion only the expand's output fits, whole; a store holding both whole
    # keeps them whole
    whole = [(q.tensor, q.words, q.band) for q in plan(tuple(L), _store(cap))]
    assert whole == [(0, whole0, False)]
    big = plan(tuple(L), _store(whole0 + whole1), 8)
    assert {(q.words, q.band) for q in big} == {(whole0, False), (whole1, False)}
    assert not any(ly.in_band for ly in place_tensors(L, _store(whole0 + whole1), 8))


def test_a_tensor_with_two_readers_gets_no_band_ring():
    expand, dw, project = _block()
    project = replace(project, tskip=0, residual=True, M=42)  # adds the expand's output
    L = [expand, dw, project]
    # the expand's output fits neither whole nor (read twice) as a ring; dw -> project does
    placed = plan(tuple(L), _store(5000), 8)
    assert [(q.tensor, q.band) for q in placed] == [(1, True)]
    assert _words(42, 17, 32) < 5000 < _words(42, 32, 32)
    assert [(q.tensor, q.band) for q in plan(tuple(L), _store(10**4), 8)] == [(0, False), (1, True)]


def test_a_band_reader_pays_its_switches():
    _, dw, _ = _block()
    D = {k: np.array([v]) for k, v in dict(Tm4=15, Tm8=1, Tn=16, Tr=8, Tc=32, G=6, post=16,
                                           ports=2, dsp4=0, dsp8=0).items()}
    banded = replace(dw, in_chip=True, in_band=True)
    assert band_switches(banded, D)[0] == 2 * (32 // 8 - 1)
    assert band_switches(replace(banded, in_band=False), D)[0] == 0
    geo = {"phases": (1, 1), "w_chunks": 1, "in_words": 1}
    opts = EngineOptions()
    a = layer_cycles_vec(replace(banded, in_band=False), D, 64, 100.0, opts, geo)["cycles"]
    b = layer_cycles_vec(banded, D, 64, 100.0, opts, geo)["cycles"]
    # each restart: a descriptor start, an AXI latency, a first load and a last write-back
    assert b[0] - a[0] > 6 * (layer_launch(opts) + AXI_LATENCY)
    # the exact walk counts the schedule's runs instead: the same layer, run in four bands
    # of 8 rows, pays its start four times
    four = replace(banded, bands=((0, 8), (8, 16), (16, 24), (24, 32)))
    e = layer_cycles_vec(four, D, 64, 100.0, opts, geo, exact=True)["cycles"]
    one = layer_cycles_vec(replace(banded, in_band=False), D, 64, 100.0, opts, geo,
                           exact=True)["cycles"]
    assert e[0] - one[0] > 3 * (layer_launch(opts) + AXI_LATENCY)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 12), st.booleans(),
                          st.booleans()), min_size=2, max_size=10),
       st.integers(0, 600), st.integers(1, 6))
def test_band_plans_never_overlap_over_their_spans(spec, capacity, rows):
    layers, prev, hw = [], -1, 12
    for i, (m, _, skip, dw) in enumerate(spec):
        tskip = i - 2 if skip and i >= 2 else -1
        ly = _dw(f"l{i}", 8, hw, 1, prev, i) if dw else _conv(f"l{i}", 8, m, hw, prev, i, tskip)
        layers.append(ly)
        prev = i
    placed = plan(tuple(layers), _store(capacity), rows)
    band = {q.tensor for q in placed if q.band}
    sp = spans(tuple(layers), band)
    for q in placed:
        assert 0 <= q.offset and q.offset + q.words <= capacity
        if q.band:  # only a tensor whose one reader is the next layer
            readers = [i for i, ly in enumerate(layers) if q.tensor in (ly.tin, ly.tskip)]
            assert readers == [q.tensor + 1]
        # a lifetime covers the interleaved spans of its producer and readers
        assert q.first <= sp[q.tensor][0] and q.last >= sp[q.tensor][1]
        for r in placed:
            if r is not q and q.first <= r.last and r.first <= q.last:
                assert q.offset + q.words <= r.offset or r.offset + r.words <= q.offset


def test_band_fusion_in_the_dse_and_the_simulator():
    b = load_board("pynq-z2")
    L = model_layers("mobilenet_v2")
    r = explore(L, b)
    perf = r.performance["layers"]
    fused = [lp for lp in perf if lp.fused]
    assert fused and all("input" in lp.on_chip for lp in fused)
    off = explore(L, b, opts=EngineOptions(band_fusion=False))
    assert not any(lp.fused for lp in off.performance["layers"])
    assert off.performance["fps"] < r.performance["fps"]
    for (name, s), a in zip(simulate_network(L, r.best, b, r.options), perf, strict=True):
        assert abs(a.cycles - s) <= 0.05 * s, (name, a.cycles, s)


def _ring_rows_needed(h: int, k: int, stride: int, pad: int, rows: int) -> int:
    """Walk the interleaved schedule row by row: the producer writes its output in bands of
    ``rows`` rows until the consumer's next tile-row (``rows`` output rows) has every input
    row it reads; the most producer rows alive at once (written, still to be read)."""
    r_out = (h + 2 * pad - k) // stride + 1
    made, most = 0, 0
    for b in range(0, r_out, rows):
        lo = max(0, b * stride - pad)
        hi = min(h, (min(b + rows, r_out) - 1) * stride - pad + k)  # rows [lo, hi) are read
        while made < hi:
            made = min(h, made + rows)
            # a band is written whole; rows below lo are no longer read by any later band
            most = max(most, made - lo)
    return most


@pytest.mark.parametrize("k,stride,pad", [(1, 1, 0), (1, 2, 0), (3, 1, 1), (3, 2, 1),
                                           (5, 1, 2), (5, 2, 2), (7, 2, 3)])
def test_band_ring_holds_every_row_the_schedule_keeps_alive(k, stride, pad):
    for h in range(k, 40):
        r_out = (h + 2 * pad - k) // stride + 1
        producer = LayerShape("p", "conv", 8, 8, h, h, h, h, 1, tout=0)
        consumer = LayerShape("c", "conv", 8, 8, h, h, r_out, r_out, k, stride=stride, pad=pad,
                              tin=0)
        for rows in range(1, 17):
            need = _ring_rows_needed(h, k, stride, pad, rows)
            assert need <= band_rows(producer, consumer, rows), (h, rows, need)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([(1, 1, 0), (1, 2, 0), (3, 1, 1), (3, 2, 1),
                                            (5, 1, 2), (7, 2, 3)]), st.booleans()),
                min_size=1, max_size=4),
       st.integers(8, 40), st.integers(1, 9))
def test_band_schedule_keeps_every_row_a_run_reads(chain, h, rows):
    """The runs of ``band_schedule`` as the kernel executes them, each ring holding
    ``band_rows`` rows addressed modulo its size: every row a consumer's run reads is in its
    ring (written, not yet overwritten), and every layer's runs cover its map in order."""
    geoms, rings, edges, height = [(h, 1, 1, 0)], [], set(), h
    for i, ((k, s, p), fused) in enumerate(chain):
        r_out = (height + 2 * p - k) // s + 1
        if r_out < 1:
            break
        prod = LayerShape("p", "conv", 8, 8, height, height, height, height, 1)
        cons = LayerShape("c", "conv", 8, 8, height, height, r_out, r_out, k, stride=s, pad=p)
        rings.append(band_rows(prod, cons, rows) if fused else 0)
        if fused:
            edges.add(i)
        geoms.append((r_out, s, k, p))
        height = r_out
    slots = [[-1] * r if r else [] for r in rings]
    done = [0] * len(geoms)
    for i, lo, hi in band_schedule(geoms, edges, rows):
        assert lo == done[i] < hi <= geoms[i][0]
        done[i] = hi
        if i - 1 in edges:  # read rows of the ring before
            _, s, k, p = geoms[i]
            ring = slots[i - 1]
            for r in range(max(0, lo * s - p), min(geoms[i - 1][0], (hi - 1) * s - p + k)):
                assert ring[r % len(ring)] == r, (i, lo, hi, r)
        if i in edges:
            for r in range(lo, hi):
                slots[i][r % len(slots[i])] = r
    last = [i for i in range(len(geoms)) if i not in edges]
    assert all(done[i] == geoms[i][0] for i in last)


def test_dse_keeps_band_rings_only_where_they_pay():
    """Rings save DDR traffic but restart their bands: the DSE evaluates each design with its
    store's rings and without and keeps the faster, so its pick is no slower (by the exact
    walk, within the closed form's tolerance) than the same design the other way."""
    b = load_board("pynq-z2")
    L = model_layers("mobilenet_v2")
    r = explore(L, b)
    other = network_performance(L, replace(r.best, rings=not r.best.rings), b)["cycles"]
    assert r.performance["cycles"] <= 1.02 * other
    # on PYNQ-Z2 MobileNet-V2 they pay (the early 112x112 and 56x56 tensors)
    assert r.best.rings and any(lp.fused for lp in r.performance["layers"])
    whole = network_performance(L, replace(r.best, rings=False), b)["layers"]
    assert not any(lp.fused or lp.ring for lp in whole)


def test_store_banks_per_port_set_its_width_and_block():
    """Two banks per port: a design's store has ports x 2 banks, so a 512-beat block is twice
    as wide; its read mux spans half as many blocks at twice the width."""
    b = load_board("zcu102")
    d = DesignPoint(64, 3, 32, 8, 16, 8, post=64, ports=2, store=64)
    wide = replace(d, store_banks=2)
    assert d.store_layout(b) == store_layout(64, 8, 2, 128)
    assert wide.store_layout(b) == store_layout(64, 8, 4, 128)
    assert wide.store_layout(b).beats == d.store_layout(b).beats == 8 * 1024
    one, two = (estimate_resources(model_layers("resnet18"), x, b).breakdown["feature_store"]
                for x in (d, wide))
    # 256 bits over 8 blocks (3 LUT6 levels) vs 512 bits over 4 (1 level)
    assert two["lut"] - one["lut"] == 512 * 1 - 256 * 3
    assert two["ff"] - one["ff"] == 2 * 256
    assert store_bram18k(1, 4, 128) == 16
