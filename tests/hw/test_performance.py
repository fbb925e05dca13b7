from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filmqnn.hw.buffers import buffer_geometry
from filmqnn.hw.design import DesignPoint, EngineOptions, design_arrays, dw_pixels, engine_layers
from filmqnn.hw.devices import load_board
from filmqnn.hw.layers import LayerShape, model_layers
from filmqnn.hw.performance import (
    ACC_RMW,
    AXI_LATENCY,
    LAYER_LAUNCH,
    PIPE_DEPTH,
    QUEUE_LAUNCH,
    chunk_capacity,
    chunk_extra_groups,
    compute_bound_vec,
    ddr_bits_per_cycle,
    frame_launch,
    group_write,
    layer_cycles_vec,
    lockstep_walk,
    m_passes,
    network_cycles_vec,
    network_performance,
    pass_split,
    raw_row_beats,
    split8_capacity,
    step_compute,
    step_load,
    transition,
    write_units,
)
from filmqnn.hw.schedule_sim import simulate_layer


def test_single_tile_by_hand():
    """1x1 conv, 8 -> 8 channels, 4x4 map, one tile on PYNQ-Z2 (64-bit ports, 4 ports)."""
    b = load_board("pynq-z2")
    ly = LayerShape("c", "conv", 8, 8, 4, 4, 4, 4, 1)
    d = DesignPoint(Tm=8, Tm8=1, Tn=8, Tr=4, Tc=4, G=4, post=16, clock_mhz=100)
    # compute: 1 tap x max(4 rows x 2 pixel-pairs, weight reload 16) + pipeline fill
    comp = max(4 * 2, 16) + PIPE_DEPTH
    # load: input 2 groups x 4 row bursts of 4 words at 3 per beat (2 beats) = 16 beats;
    # weights (7x4 + 1x8) bits x 8 ch = 288 bits = 5 beats; 21 beats over 4 ports = 6 cycles,
    # but DDR gives 2.1e9 x 0.7 x 8 / 1e8 = 117.6 bits/cycle -> 21 x 64 / 117.6 -> 12 cycles
    load = 12 + AXI_LATENCY
    # write: 2 groups x 4 row bursts of 2 beats = 16 beats / 4 ports = 4; requant 8 x 16 / 16
    # lanes = 8; DDR 16 x 64 / 117.6 -> 9
    write = 9 + AXI_LATENCY
    # the requantization table at the layer's start: 8 x 16 bytes = 16 beats -> DDR 9 cycles
    table = 9 + AXI_LATENCY
    r = network_performance([ly], d, b)
    assert r["layers"][0].cycles == load + comp + write + table + QUEUE_LAUNCH
    # the host starts the descriptor queue once per frame
    assert r["cycles"] == r["layers"][0].cycles + LAYER_LAUNCH
    assert r["fps"] == pytest.approx(100e6 / r["cycles"])
    host = network_performance([ly], d, b, EngineOptions(layer_queue=False))
    assert host["cycles"] == host["layers"][0].cycles == (load + comp + write + table
                                                           + LAYER_LAUNCH)


def test_layer_queue_saves_host_starts():
    b = load_board("zcu102")
    d = DesignPoint(64, 3, 32, 14, 28, 8, post=64, clock_mhz=150)
    L = model_layers("mobilenet_v2")
    q = network_performance(L, d, b)
    h = network_performance(L, d, b, EngineOptions(layer_queue=False))
    n = len(q["layers"])
    assert h["cycles"] - q["cycles"] == n * (LAYER_LAUNCH - QUEUE_LAUNCH) - LAYER_LAUNCH


def test_passes_follow_tile_rule():
    ly = LayerShape("c", "conv", 64, 100, 8, 8, 8, 8, 3, pad=1)
    P, M4, M8 = m_passes(ly, 30, 2, EngineOptions())
    assert (int(P), int(M4), int(M8)) == (4, 92, 8)
    all8 = LayerShape("f", "fc", 512, 1000, 1, 1, 1, 1, 1, all8=True)
    P8, _, _ = m_passes(all8, 30, 2, EngineOptions(split8=False))
    assert int(P8) == 500  # PE8 alone: 2 filters per pass
    Ps, _, _ = m_passes(all8, 30, 2, EngineOptions(split8=True))
    assert int(Ps) == 63  # + (30 - 1) // 2 = 14 nibble pairs -> 16 per pass


def test_stride_depthwise_and_pools():
    b = load_board("zcu102")
    d = DesignPoint(64, 3, 32, 14, 28, 8, post=64, clock_mhz=150)
    r = network_performance(model_layers("mobilenet_v2"), d, b)
    kinds = {lp.kind for lp in r["layers"]}
    assert kinds == {"conv", "dwconv", "gap", "fc"}
    assert all(lp.cycles > 0 and lp.bound in ("compute", "memory") for lp in r["layers"])
    r18 = network_performance(model_layers("resnet18"), d, b, EngineOptions(fuse_stem_pool=False))
    mp = next(lp for lp in r18["layers"] if lp.kind == "maxpool")
    assert mp.macs == 0 and mp.cycles > QUEUE_LAUNCH


def test_more_bandwidth_is_never_slower():
    b = load_board("zcu102")
    d = DesignPoint(64, 3, 32, 14, 28, 8, post=64, clock_mhz=150)
    L = model_layers("resnet18")
    slow = network_performance(L, d, b)
    fast = network_performance(L, d, type(b)(**{**b.to_dict(), "ddr_efficiency": 1.0}))
    assert fast["fps"] >= slow["fps"]
    # a faster clock with the same DDR makes layers more memory-bound
    hi = network_performance(L, DesignPoint(64, 3, 32, 14, 28, 8, post=64, clock_mhz=300), b)
    assert sum(lp.bound == "memory" for lp in hi["layers"]) >= sum(
        lp.bound == "memory" for lp in slow["layers"])


def test_lockstep_walk_by_hand():
    """The kernel's lock-step order: iteration k loads step k, computes step k - 1 and writes
    a slice of the pass before that one's; a write-back spreads over the next pass's steps."""
    lat = AXI_LATENCY
    # two one-step passes (load 10, compute 30, write-back 50 in 2 units): load 0 alone (40 +
    # 10), load 1 beside compute 0 (50), compute 1 beside pass 0's whole write-back (its
    # request included: 50), then pass 1's write-back alone (50)
    one = ([(10, 10, 30)], 50, 2, 0)
    assert lockstep_walk([one, one], lat, lat) == 50 + 50 + 50 + 50
    # a one-step pass, then a three-step one; the first's write-back (its request 40 and
    # 4 units of 25) goes out in slices of ceil(4 / 3) = 2 units beside the second's steps:
    # load 0 (50); load 1 + compute 0 (55); compute 1 + slice 40 + 50 (90); compute 2 +
    # slice 50 (55); compute 3 alone (55); the second's write-back alone (50)
    first = ([(10, 10, 55)], 140, 4, 0)
    many = ([(10, 10, 55)] * 3, 50, 4, 0)
    assert lockstep_walk([first, many], lat, lat) == 50 + 55 + 90 + 55 + 55 + 50
    # with outstanding reads (seq = 0) only the first load pays the request, and the last
    # write's response is exposed
    assert lockstep_walk([one, one], 0, 0) == 50 + 30 + 50 + 50 + lat
    # a residual operand (20) is read beside its pass's first compute: with load 1 (40 + 30,
    # the step's load with one, > 30), or alone after the last step (40 + 20 = 60 > 30)
    res = ([(10, 30, 30)], 50, 2, 20)
    assert lockstep_walk([res, res], lat, lat) == 50 + 70 + 60 + 50
    # the next tile's first pass (a narrower tile: its own operand would add 5) reads the
    # operand of the tile before beside its load: that operand's 20 join the load's reads,
    # not the 5 of its own; then the first pass's write-back (50) beside the narrow operand
    # (40 + 5), and the narrow pass's write-back (50)
    narrow = ([(10, 15, 30)], 50, 2, 5)
    assert lockstep_walk([res, narrow], lat, lat) == 50 + (40 + 10 + 20) + 50 + 50
    # a load the other side bounds (the input from the store, 60; its reads on the operand's
    # side, DDR, 10): the operand's 20 join those 10 and the store's 60 still end the load
    stored = ([(60, 65, 30, 10)], 50, 2, 5)
    assert lockstep_walk([res, stored], lat, lat) == 50 + (40 + 60) + 50 + 50


def test_an_all_8bit_pass_runs_its_sub_passes_and_writes_once():
    """An all-8-bit layer's split8 sub-passes join into the kernel's Tm-filter pass: their
    steps in order, then one write-back of the pass's filters (not one per sub-pass). The
    model's walk and the tile simulator build these passes each their own way and agree."""
    from filmqnn.hw.performance import _join

    step = (10, 10, 30)
    subs = [([step], 50, 2, 0), ([step], 50, 2, 0), ([step], 20, 1, 0)]
    joined = _join(subs, [(2, 80, 3), (1, 20, 1)])
    assert joined == [([step, step], 80, 3, 0), ([step], 20, 1, 0)]
    lat = AXI_LATENCY
    # load 0 (50); load 1 + compute 0 (50); load 2 + compute 1 (50); compute 2 + the first
    # pass's whole write-back (80); then the second pass's write-back alone (20)
    assert lockstep_walk(joined, lat, lat) == 50 + 50 + 50 + 80 + 20
    # 48 filters of a 3x3 conv, Tm = 16, split8 capacity 1 + 14 // 2 = 8: two sub-passes a pass
    b = load_board("pynq-z2")
    ly = LayerShape("c", "conv", 32, 48, 14, 14, 14, 14, 3, pad=1, all8=True)
    d = DesignPoint(Tm=16, Tm8=1, Tn=16, Tr=7, Tc=14, G=4, post=16, clock_mhz=100)
    assert int(split8_capacity(d.Tm4, d.Tm8, EngineOptions())) == 8
    assert network_performance([ly], d, b)["layers"][0].cycles == simulate_layer(ly, d, b)


def test_transition_by_hand():
    lat = AXI_LATENCY
    # without outstanding transactions every load pays AXI_LATENCY in series
    assert int(transition(110, 110, 110, 46, 136, 46, lat)) == max(110, 136 + lat)
    # steady state with them: two steps take c + latency + d (a buffer frees when the step two
    # before ends): 10 compute, 200 load -> memory-bound; 300 / 20 -> compute-bound;
    # 100 / 100 -> (100 + 40 + 100) / 2 = 120
    assert int(transition(10, 10, 10, 200, 200, 200, 0)) == 200
    assert int(transition(300, 300, 300, 20, 20, 20, 0)) == 300
    assert int(transition(100, 100, 100, 100, 100, 100, 0)) == 120
    # alternating loads of 136 and 46 data cycles, 110 compute each: the pair A..A needs
    # 110 + 40 + 136 = 286, alone the two take 110 + 136 = 246, so each gets half of 40 more
    a_b = int(transition(110, 110, 110, 136, 46, 136, 0))
    b_a = int(transition(110, 110, 110, 46, 136, 46, 0))
    assert (a_b, b_a) == (130, 156) and a_b + b_a == 110 + lat + 136
    # serial: A->B 110, B->A 136 + 40 = 176; the pair bound 286 adds nothing
    assert int(transition(110, 110, 110, 136, 46, 136, lat)) == 110


def test_two_steps_with_outstanding_reads_by_hand():
    """1x1 conv, 16 -> 8 channels, Tn = 8: two steps of one group on PYNQ-Z2, every step
    paying the pipeline fill (no ``pipe_rewind``)."""
    b = load_board("pynq-z2")
    ly = LayerShape("c", "conv", 16, 8, 4, 4, 4, 4, 1)
    d = DesignPoint(Tm=8, Tm8=1, Tn=8, Tr=4, Tc=4, G=4, post=16, clock_mhz=100)
    comp = max(4 * 2, 16) + PIPE_DEPTH  # per step
    load, write, table = 12, 9, 9 + AXI_LATENCY  # as in test_single_tile_by_hand
    # the table is read first; then step 2's load is requested at once (its buffer is free)
    # and follows step 1's data: load1 ends at 40+12, load2 at 64; the two computes run back
    # to back from 52; then the write, and its response 40 later
    expect = table + AXI_LATENCY + load + 2 * comp + write + AXI_LATENCY + QUEUE_LAUNCH
    fill = EngineOptions(pipe_rewind=False, multi_chunk=False)
    assert simulate_layer(ly, d, b, fill) == expect
    # one design's model walks the steps as the simulator does; the closed form for arrays
    # of designs splits the steady-state two-step bound evenly, (comp+40+12)/2 per step
    # instead of comp here, where step 0 has no predecessor (a few cycles on this tiny layer)
    ana = network_performance([ly], d, b, fill)["layers"][0].cycles
    assert ana == expect
    closed = network_cycles_vec([ly], design_arrays(d, b), b, 100.0, fill)[0]
    assert closed == expect + (-(-(comp + AXI_LATENCY + load) // 2) - comp) + frame_launch(fill)
    # with the host's per-layer start the layer is within 5 % (the tolerance of the network
    # checks in test_schedule_sim); the short descriptor-queue start exposes 5.1 % here
    host = EngineOptions(layer_queue=False, pipe_rewind=False, multi_chunk=False)
    sim_host = simulate_layer(ly, d, b, host)
    ana_host = network_performance([ly], d, b, host)["layers"][0].cycles
    assert sim_host == expect - QUEUE_LAUNCH + LAYER_LAUNCH
    assert abs(ana_host - sim_host) <= 0.05 * sim_host
    # without outstanding reads step 2's load waits for step 1's: 40+12 then 40+12 > 28
    serial = EngineOptions(axi_outstanding=False, pipe_rewind=False, multi_chunk=False)
    ser = table + AXI_LATENCY + load + 2 * comp + write + AXI_LATENCY + QUEUE_LAUNCH
    assert simulate_layer(ly, d, b, serial) == ser + (AXI_LATENCY + load - comp)


def test_pipe_rewind_pays_the_fill_once_per_group_by_hand():
    """The layer above with ``pipe_rewind``: steps of 16 cycles, one drain before the write."""
    b = load_board("pynq-z2")
    ly = LayerShape("c", "conv", 16, 8, 4, 4, 4, 4, 1)
    d = DesignPoint(Tm=8, Tm8=1, Tn=8, Tr=4, Tc=4, G=4, post=16, clock_mhz=100)
    # after the table: load1 ends at 40+12, load2 at 64; compute 52..68, 68..84; drain to 96,
    # write to 105
    table = 9 + AXI_LATENCY
    expect = table + AXI_LATENCY + 12 + 2 * 16 + PIPE_DEPTH + 9 + AXI_LATENCY + QUEUE_LAUNCH
    assert simulate_layer(ly, d, b, EngineOptions(multi_chunk=False)) == expect
    assert int(step_compute(ly, 4, 4, 8, 8, rewind=True)) == 16
    # a step shorter than the pipeline waits for it (accumulator read-after-write)
    tiny = LayerShape("p", "maxpool", 8, 8, 2, 2, 1, 1, 2, stride=2)
    assert int(step_compute(tiny, 1, 1, 8, 8, rewind=True)) == PIPE_DEPTH
    # without it each of the 4 taps of the one pixel waits for the one before's sum
    assert int(step_compute(tiny, 1, 1, 8, 8)) == 4 * ACC_RMW + PIPE_DEPTH


def test_depthwise_taps_by_hand():
    """3x3 depthwise on an 8x8 map, one 8x8 tile: taps on the columns vs one column."""
    ly = LayerShape("dw", "dwconv", 16, 16, 8, 8, 8, 8, 3, pad=1, groups=16)
    # Tn = 16 >= 9 taps: one round; weights reload ceil(16*9/16) = 9 cycles < 8 rows x 4 pairs
    assert int(step_compute(ly, 8, 8, 16, 16, 2, True)) == 8 * 4 + PIPE_DEPTH
    # on packed PE4 DSPs a depthwise row gets one pixel per cycle
    assert int(step_compute(ly, 8, 8, 16, 16, 1, True)) == 8 * 8 + PIPE_DEPTH
    # Tn = 4: ceil(9/4) = 3 rounds, each reloading 4 weights in 16 cycles
    assert int(step_compute(ly, 8, 8, 16, 4, 2, True)) == 3 * 32 + PIPE_DEPTH
    # one column per channel: the 9 taps one after another
    assert int(step_compute(ly, 8, 8, 16, 16, 2, False)) == 9 * 32 + PIPE_DEPTH
    assert int(dw_pixels(0)) == 2 and int(dw_pixels(5)) == 1


def test_engine_modes_speed_up_mobilenet():
    b = load_board("zcu102")
    d = DesignPoint(96, 5, 48, 16, 28, 4, dsp4=4368, dsp8=144, post=96, clock_mhz=150)
    L = model_layers("mobilenet_v2")
    fps = {
        (taps, out): network_performance(L, d, b, EngineOptions(dw_taps=taps, axi_outstanding=out))[
            "fps"]
        for taps in (False, True) for out in (False, True)
    }
    assert fps[(True, True)] > fps[(True, False)] > fps[(False, False)]
    assert fps[(True, True)] > fps[(False, True)] > fps[(False, False)]


def _first_conv():
    return LayerShape("conv1", "conv", 3, 8, 16, 16, 8, 8, 3, stride=2, pad=1, all8=True,
                      first=True, signed_in=True)


def test_onchip_im2col_reads_the_raw_tile_once_per_group():
    b = load_board("zcu102")
    d = DesignPoint(Tm=8, Tm8=1, Tn=16, Tr=4, Tc=8, G=4, post=8, clock_mhz=150, ports=1)
    (ly,) = engine_layers([_first_conv()], EngineOptions())
    assert (ly.N, ly.K, ly.stride, ly.planes, ly.raw) == (27, 1, 1, 2, (3, 3, 2))
    (host,) = engine_layers([_first_conv()], EngineOptions(im2col_onchip=False))
    assert host.raw is None and host.N == 27
    ddr = ddr_bits_per_cycle(b, 150)
    # a 4 x 8 output tile reads 3 channels x 9 rows x 17 columns of 8-bit input, one burst
    # per channel and row of the padded map (the kernel's): tiles start 16 bytes apart, on
    # a 16-byte beat, so each row touches 2 beats
    _, _, pre = group_write(ly, 4, 8, 8, 4, 8, 128, 1, ddr)
    assert int(np.asarray(pre).ravel()[0]) == 3 * 9 * 2
    # its steps load weights only: 8 filters x 16 channels x 8 bits = 8 beats
    _, bits = step_load(ly, 4, 8, 16, 8 * 8, 4, 128, 1, ddr)
    assert int(bits) == 8 * 128
    _, host_bits = step_load(host, 4, 8, 16, 8 * 8, 4, 128, 1, ddr)
    assert int(host_bits) > int(bits)
    on = network_performance([_first_conv()], d, b)["layers"][0]
    off = network_performance([_first_conv()], d, b, EngineOptions(im2col_onchip=False))
    assert on.ddr_bytes < off["layers"][0].ddr_bytes
    for opts in (EngineOptions(), EngineOptions(im2col_onchip=False)):
        (e,) = engine_layers([_first_conv()], opts)
        sim = simulate_layer(e, d, b, opts)
        ana = network_performance([_first_conv()], d, b, opts)["layers"][0].cycles
        assert abs(ana - sim) <= 0.05 * sim


def test_raw_row_beats_averages_the_tile_offsets():
    """A raw row burst of `cols` bytes from tile starts `step` bytes apart: the beats it
    touches, averaged over the offsets in a beat that such starts take."""
    for bb in (8, 16):
        for cols in range(1, 40):
            for step in range(1, 40):
                offs = sorted({j * step % bb for j in range(bb)})
                want = np.mean([(o + cols - 1) // bb + 1 for o in offs])
                assert raw_row_beats(cols, step, 8 * bb) == pytest.approx(want)


def test_stride_two_pointwise_skips_unread_rows():
    ly = LayerShape("ds", "conv", 16, 32, 16, 16, 8, 8, 1, stride=2)
    ddr = 1e9
    # 4 output rows read input rows 0, 2, 4, 6 (4 rows, not 7) x 15 columns, 16 channels:
    # 4 groups x 4 row bursts of 15 words at 6 per beat (3 beats)
    _, bits = step_load(ly, 4, 8, 16, 0, 4, 128, 1, ddr)
    assert int(bits) == (16 // 4) * 4 * 3 * 128


def test_stem_pool_fuses_into_the_first_conv_write_back():
    L = model_layers("resnet18")
    fused = engine_layers(L, EngineOptions())
    assert [ly.kind for ly in fused].count("maxpool") == 0
    assert fused[0].pool == (3, 2, 1) and len(fused) == len(L) - 1
    plain = engine_layers(L, EngineOptions(fuse_stem_pool=False))
    assert plain[1].kind == "maxpool" and plain[0].pool is None
    # MobileNet-V2 has no stem pool: nothing changes
    M = model_layers("mobilenet_v2")
    assert len(engine_layers(M, EngineOptions())) == len(M)
    # a tile row of 16 rows of 64 channels writes its 8 pooled rows with its last tile: 16
    # groups of G=4 x 8 row bursts of the 56 pooled columns at 6 words per beat (10 beats);
    # the row's other tiles write nothing
    ddr = 1e9
    _, bits, _ = group_write(fused[0], 16, 16, 64, 4, 64, 128, 1, ddr)
    assert int(bits) == 16 * 8 * 10 * 128
    _, bits, _ = group_write(fused[0], 16, 16, 64, 4, 64, 128, 1, ddr, row_end=False)
    assert int(bits) == 0
    b = load_board("zcu102")
    d = DesignPoint(64, 3, 32, 16, 16, 4, post=32, clock_mhz=150, ports=4)
    on = network_performance(L, d, b)
    off = network_performance(L, d, b, EngineOptions(fuse_stem_pool=False))
    assert on["cycles"] < off["cycles"] and on["ddr_mbytes"] < off["ddr_mbytes"]
    sim = simulate_layer(fused[0], d, b)
    assert abs(on["layers"][0].cycles - sim) <= 0.05 * sim


def test_multi_chunk_steps_by_hand():
    conv3 = LayerShape("c3", "conv", 16, 16, 8, 8, 8, 8, 3, pad=1)
    fc = LayerShape("fc", "fc", 64, 10, 1, 1, 1, 1, 1)
    d = DesignPoint(Tm=8, Tm8=1, Tn=8, Tr=8, Tc=8, G=4, post=8, clock_mhz=100, ports=2)
    D = design_arrays(d, load_board("pynq-z2"))
    geo = buffer_geometry([conv3, fc], D, EngineOptions())
    # the weight banks hold 9 taps of Tn channels per half, the input banks a 10 x 10 tile:
    # the FC's 1-pixel chunks are bounded by its 8 chunks of 64 channels
    assert int(chunk_capacity(fc, D, geo, EngineOptions())[0]) == 8
    assert int(chunk_capacity(fc, D, geo, EngineOptions(multi_chunk=False))[0]) == 1
    # a 3x3 chunk takes 9 of the 32 tap slots a weight half holds (whole BRAM18Ks) and a
    # 10 x 10 input tile (50 words per bank of 256): both of its 8-channel chunks fit
    assert int(chunk_capacity(conv3, D, geo, EngineOptions())[0]) == 2
    assert int(chunk_capacity(replace(conv3, N=64), D, geo, EngineOptions())[0]) == 3
    # a step of 8 chunks: each reloads the weights (16 cycles) for its one pixel
    assert int(step_compute(fc, 1, 1, 64, 8, rewind=True)) == 8 * 16
    # 20 channels on Tn = 8: two full chunks and a 4-channel one (8-cycle reload)
    assert int(step_compute(fc, 1, 1, 20, 8)) == 16 + 16 + 8 + PIPE_DEPTH
    b = load_board("pynq-z2")
    big = LayerShape("fc", "fc", 512, 100, 1, 1, 1, 1, 1)
    # fewer steps, fewer AXI requests paid one after the other (with outstanding requests
    # they hide behind the steps before them and the steps cost nothing more)
    serial = EngineOptions(axi_outstanding=False)
    one = network_performance([conv3, big], d, b, replace(serial, multi_chunk=False))["cycles"]
    assert network_performance([conv3, big], d, b, serial)["cycles"] < one / 2
    geo2 = buffer_geometry([conv3, big], D, serial)
    sim = simulate_layer(big, d, b, serial, geo2)
    ana = network_performance([conv3, big], d, b, serial)["layers"][1].cycles
    assert abs(ana - sim) <= 0.05 * sim


def test_input_reuse_loads_the_input_once_per_tile():
    b = load_board("zcu102")
    ly = LayerShape("pw", "conv", 16, 32, 8, 8, 8, 8, 1)
    d = DesignPoint(Tm=8, Tm8=1, Tn=16, Tr=8, Tc=8, G=4, post=8, clock_mhz=150, ports=2)
    on = network_performance([ly], d, b)["layers"][0]
    off = network_performance([ly], d, b, EngineOptions(input_reuse=False))["layers"][0]
    # 4 output passes over one 8 x 8 tile: the 16-channel input (4 groups x 8 row bursts of
    # 8 words, 6 words per 128-bit beat: 2 beats) is read once instead of 4 times
    assert off.ddr_bytes - on.ddr_bytes == 3 * 4 * 8 * 2 * 16
    assert on.cycles <= off.cycles
    for opts in (EngineOptions(), EngineOptions(input_reuse=False)):
        sim = simulate_layer(ly, d, b, opts)
        ana = network_performance([ly], d, b, opts)["layers"][0].cycles
        assert abs(ana - sim) <= 0.05 * sim
    # two steps per group (Tn = 8): nothing to reuse
    d8 = DesignPoint(Tm=8, Tm8=1, Tn=8, Tr=8, Tc=8, G=4, post=8, clock_mhz=150, ports=2)
    no = EngineOptions(multi_chunk=False)
    a = network_performance([ly], d8, b, no)["layers"][0].ddr_bytes
    c = network_performance([ly], d8, b, replace(no, input_reuse=False))["layers"][0].ddr_bytes
    assert a == c


@pytest.mark.parametrize("model", ["resnet18", "resnet50", "mobilenet_v2"])
def test_compute_bound_never_exceeds_the_modelled_cycles(model):
    """The DSE skips designs by this bound, so it must hold on every layer and design."""
    b = load_board("zcu102")
    L = model_layers(model)
    for d in (DesignPoint(96, 5, 48, 14, 14, 4, dsp4=4368, dsp8=144, post=96, clock_mhz=150),
              DesignPoint(32, 2, 12, 16, 56, 6, post=16, clock_mhz=150, ports=2)):
        D = design_arrays(d, b)
        geo = buffer_geometry(L, D, EngineOptions())
        for opts in (EngineOptions(), EngineOptions(multi_chunk=False, pipe_rewind=False)):
            for ly in engine_layers(L, opts):
                exact = layer_cycles_vec(ly, D, 128, ddr_bits_per_cycle(b, 150), opts, geo)
                assert compute_bound_vec(ly, D, opts)[0] <= exact["cycles"][0], ly.name


def test_per_layer_rows_let_a_1x1_step_hold_all_input_channels():
    """A 1x1 conv whose input does not fit one step at the design's Tr runs with a divisor
    of Tr rows that does, so its input is read once per tile, not once per output pass."""
    from filmqnn.hw.performance import reuse_rows

    b = load_board("pynq-z2")
    d = DesignPoint(Tm=32, Tm8=2, Tn=16, Tr=14, Tc=16, G=4, dsp4=344, dsp8=32, post=8,
                    clock_mhz=100, ports=2, buf=2)
    ly = LayerShape("c", "conv", 512, 128, 28, 28, 28, 28, 1)
    D, opts = design_arrays(d, b), EngineOptions()
    geo = buffer_geometry(model_layers("resnet50"), D, opts)  # banks sized for the network
    ddr = ddr_bits_per_cycle(b, 100.0)
    assert chunk_capacity(ly, D, geo, opts)[0] < 512 // 16  # the full tile cannot
    rows, fits = reuse_rows(ly, D, geo, opts)
    assert rows[0] == 7 and fits[0]
    r = layer_cycles_vec(ly, D, 64, ddr, opts, geo)
    assert r["rows"][0] == 7 and r["chunks"][0] == 512 // 16
    full = layer_cycles_vec(ly, D, 64, ddr, replace(opts, input_reuse=False), geo)
    assert full["rows"][0] == 14 and r["ddr_bits"][0] < full["ddr_bits"][0]
    assert r["cycles"][0] < full["cycles"][0]
    assert compute_bound_vec(ly, D, opts)[0] <= r["cycles"][0]
    assert abs(simulate_layer(ly, d, b, opts, geo) - r["cycles"][0]) <= 0.05 * r["cycles"][0]
    # a 3x3 conv keeps its input only when its chunks' 9 taps fit the weight banks (3 chunks
    # of the 32 tap slots): 32 channels do, 64 do not at any rows
    rows, fits = reuse_rows(replace(ly, N=32, K=3, pad=1), D, geo, opts)
    assert fits[0] and rows[0] == 14
    assert not reuse_rows(replace(ly, N=64, K=3, pad=1), D, geo, opts)[1][0]
    k3 = replace(ly, N=32, K=3, pad=1)
    r3 = layer_cycles_vec(k3, D, 64, ddr, opts, geo)
    assert compute_bound_vec(k3, D, opts)[0] <= r3["cycles"][0]
    assert abs(simulate_layer(k3, d, b, opts, geo) - r3["cycles"][0]) <= 0.05 * r3["cycles"][0]
    rows, fits = reuse_rows(replace(ly, kind="fc", R=1, C=1, H=1, W=1), D, geo, opts)
    assert not fits[0] and rows[0] == 14


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2048), st.integers(0, 80), st.integers(1, 8), st.booleans())
def test_all8_passes_cover_every_filter_once(M, Tm4, Tm8, split):
    """An all-8-bit layer's passes (sub-passes of split8 capacity inside each Tm pass): no
    pass holds a negative or over-capacity count, and together they hold every filter once
    (the full ones their mean: the kernel's sub-passes differ by the Tm passes' remainders)."""
    ly = LayerShape("fc", "fc", 64, M, 1, 1, 1, 1, 1, all8=True)
    opts = EngineOptions(split8=split)
    P, a_f, b_f, a_l, b_l = (float(v) for v in pass_split(ly, Tm4, Tm8, opts))
    cap = int(split8_capacity(Tm4, Tm8, opts))
    assert a_f == a_l == 0 and 0 < b_l <= cap and 0 <= b_f <= cap
    assert (P - 1) * b_f + b_l == pytest.approx(M)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 96), st.sampled_from([4, 6, 8, 12]), st.integers(1, 40), st.booleans())
def test_chunk_groups_count_the_words_each_step_touches(span, G, steps, short_last):
    """A step's input reads every G-channel word its channels touch: the model's mean over a
    plane's full steps and its last step equal a step-by-step count (Tn % G != 0 included)."""
    last = max(1, span // 3) if short_last else span
    mean, extra_last = chunk_extra_groups(span, last, steps, G)
    full = [(k * span % G + span - 1) // G + 1 - -(-span // G) for k in range(steps - 1)]
    assert mean == pytest.approx(np.mean(full) if full else 0.0)
    assert extra_last == ((steps - 1) * span % G + last - 1) // G + 1 - -(-last // G)


def test_the_logits_layer_writes_its_int32_sums_in_one_unit():
    """The network's last layer writes int32 sums (the kernel's unrequantized write): a pass
    writes its filters' 4-byte sums as whole beats in one unit, not 5-bit words by channel
    group and row."""
    layers = model_layers("resnet18")
    assert layers[-1].int32_out and not any(ly.int32_out for ly in layers[:-1])
    fc = layers[-1]
    act = replace(fc, int32_out=False)
    assert write_units(fc, 1, 64, 8) == 1 and write_units(act, 1, 64, 8) == 8
    t32, bits32, _ = group_write(fc, 1, 1, 64, 8, 128, 128, 4, 1e9)
    t5, bits5, _ = group_write(act, 1, 1, 64, 8, 128, 128, 4, 1e9)
    assert bits32 == 64 * 32 and bits5 == 8 * 128  # 16 beats of sums, 8 beats of words
    assert t32 == 4 and t5 == 2  # over 4 ports
