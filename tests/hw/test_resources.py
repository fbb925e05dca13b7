import math
from dataclasses import replace

import pytest

from filmqnn.hw.buffers import bank_phases, bram18k_count, lutram_luts
from filmqnn.hw.design import PIXELS, DesignPoint, EngineOptions, pool_tiling
from filmqnn.hw.devices import load_board
from filmqnn.hw.dsp_packing import best_packing
from filmqnn.hw.layers import LayerShape, model_layers
from filmqnn.hw.lut_costs import included_fixed_logic, mac_cost
from filmqnn.hw.resources import (
    PORT_LUT,
    POST_DSP,
    POST_LUT,
    QUEUE_LUT,
    estimate_resources,
    pe4_dsp_map,
)


@pytest.mark.parametrize(
    "width, depth, expected",
    [
        (1, 16384, 1),  # 1 x 16K
        (4, 4096, 1),  # 4 x 4K
        (36, 512, 1),  # 36 x 512
        (40, 512, 2),  # G=8 words: two 36-bit columns
        (36, 513, 2),  # one word too deep: 2 x (18 x 1K)
        (9, 2049, 2),  # 2 x (9 x 2K)
        (30, 1000, 2),  # G=6 words: 2 x (18 x 1K)
        (72, 100, 2),
        (0, 100, 0),
    ],
)
def test_bram_aspect_ratios(width, depth, expected):
    assert int(bram18k_count(width, depth)) == expected


@pytest.mark.parametrize(
    "width, depth, expected",
    [
        (6, 32, 4),  # one RAM32M
        (32, 32, 24),  # 6 RAM32Ms
        (32, 33, 44),  # 11 RAM64Ms
        (32, 64, 44),
        (3, 128, 8 + 3),  # two RAM64M blocks and a 2:1 read mux per bit
        (32, 192, 3 * 44 + 32),  # three blocks: one LUT6 mux level
        (32, 320, 5 * 44 + 2 * 32),  # five blocks: two mux levels
        (0, 64, 0),
        (32, 0, 0),
    ],
)
def test_lutram_sizes(width, depth, expected):
    assert int(lutram_luts(width, depth)) == expected


def test_accumulators_on_lutram_trade_brams_for_luts():
    """Tm = 8, Tr x Tc = 4 x 4: 2 halves x 2 column banks x 8 rows of 32 bits x 8 words."""
    b = load_board("pynq-z2")
    d = DesignPoint(Tm=8, Tm8=2, Tn=4, Tr=4, Tc=4, G=4, dsp4=12, dsp8=4, post=4, clock_mhz=100)
    on_bram = estimate_resources(_tiny(), d, b)
    on_lut = estimate_resources(_tiny(), replace(d, acc_lutram=True), b)
    banks = 2 * PIXELS * 8
    assert on_bram.bram18k - on_lut.bram18k == banks * bram18k_count(32, 8) == 32
    assert on_lut.breakdown["buffers"]["lut"] == banks * 24
    assert on_lut.lut - on_bram.lut == banks * 24
    assert on_lut.dsp == on_bram.dsp


def _tiny():
    return [LayerShape("c", "conv", 8, 8, 4, 4, 4, 4, 1, first=False)]


def test_mac_and_dsp_counts_by_hand():
    b = load_board("pynq-z2")
    d = DesignPoint(Tm=8, Tm8=2, Tn=4, Tr=4, Tc=4, G=4, dsp4=12, dsp8=4, post=4, clock_mhz=100)
    r = estimate_resources(_tiny(), d, b)
    p8 = best_packing("dsp48e1", 8, 5, False, general_only=True).products_per_dsp
    # dsp4 = 12 of the 6 x 4 PE4 positions: the kernel puts filter pairs (rows 0-1, 2-3) of
    # column n on a DSP while 2q*Tn + n < 12, so two whole pairs: 8 DSPs, 16 positions
    dsp = 8 + math.ceil(PIXELS * 4 / p8) + 4 * POST_DSP
    assert r.dsp == dsp
    l4, l8 = mac_cost("7series", "lut", 4, 5).lut, mac_cost("7series", "lut", 8, 5).lut
    g4, g8 = mac_cost("7series", "dsp", 4, 5).lut, mac_cost("7series", "dsp", 8, 5).lut
    pe4 = PIXELS * ((6 * 4 - 16) * l4 + 16 * g4)
    pe8 = PIXELS * ((2 * 4 - 4) * l8 + 4 * g8)
    assert r.breakdown["pe4"]["lut"] == math.ceil(pe4)
    assert r.breakdown["pe8"]["lut"] == math.ceil(pe8)
    # control, 2 ports and 14 post lanes are inside the Vivado-implied costs: 2 more ports
    # and no more lanes are charged
    assert included_fixed_logic("7series") == {"axi_ports": 2, "post_dsps": 28}
    lut = pe4 + pe8 + (b.axi_ports - 2) * PORT_LUT
    assert r.lut == math.ceil(lut + QUEUE_LUT)
    host = estimate_resources(_tiny(), d, b, EngineOptions(layer_queue=False))
    assert host.lut == math.ceil(lut)
    lanes = DesignPoint(8, 2, 4, 4, 4, 4, dsp4=12, dsp8=4, post=20, clock_mhz=100, ports=2)
    extra_lanes = pe4 + pe8 + 6 * POST_LUT + QUEUE_LUT
    assert estimate_resources(_tiny(), lanes, b).lut == math.ceil(extra_lanes)


@pytest.mark.parametrize(
    "board, Tm, Tm8, Tn, dsp4, dsp8, post, util",
    [
        # Table 4 "95% W4 + 5% W8, LUT+DSP": PYNQ-Z2 360 LUT-W4 + 576 DSP-W4 + 72 DSP-W8 MACs,
        # 78 % LUTs; ZCU102 8192 DSP-W4 + 512 LUT-W8 MACs, 66 %
        ("pynq-z2", 42, 3, 12, 288, 36, 14, 0.78),
        ("zcu102", 68, 4, 64, 4096, 0, 22, 0.66),
    ],
)
def test_paper_design_reproduces_table4_luts(board, Tm, Tm8, Tn, dsp4, dsp8, post, util):
    """The paper's own mixed design, modelled without the options it lacks, lands on its
    Table 4 LUT share (within the calibration fit's +-3.7 points): fixed logic is not counted
    twice."""
    b = load_board(board)
    d = DesignPoint(Tm, Tm8, Tn, 7, 7, 4, dsp4=dsp4, dsp8=dsp8, post=post, ports=2)
    r = estimate_resources(_tiny(), d, b, EngineOptions(layer_queue=False))
    assert abs(r.lut / b.lut - util) <= 0.04


@pytest.mark.parametrize("Tm4, Tn, dsp4", [(3, 16, 48), (5, 4, 7), (4, 16, 40), (7, 6, 100),
                                          (1, 8, 8), (6, 12, 0), (9, 4, 36)])
def test_pe4_dsps_as_the_kernel_maps_them(Tm4, Tn, dsp4):
    """Pair q of column n on a DSP while 2q*Tn + n < dsp4 (compute_conv); an odd Tm4's last
    pair (one filter) takes its DSPs too: a whole odd array needs ceil(Tm4/2)*Tn."""
    pairs = [(q, n) for q in range(-(-Tm4 // 2)) for n in range(Tn) if 2 * q * Tn + n < dsp4]
    rows = sum(2 if 2 * q + 1 < Tm4 else 1 for q, _ in pairs)
    assert tuple(map(int, pe4_dsp_map(Tm4, Tn, dsp4))) == (len(pairs), rows)
    b = load_board("zcu102")
    d = DesignPoint(Tm4 + 1, 1, Tn, 4, 4, 4, dsp4=dsp4, dsp8=0, post=4, clock_mhz=100)
    assert estimate_resources(_tiny(), d, b).breakdown["pe4"]["dsp"] == len(pairs)


def test_odd_tm4_dsp_count():
    """The fault: Tm4 = 3, Tn = 16 all on DSPs is 2 x 16 DSPs, not 3 x 16 / 2 = 24."""
    assert int(pe4_dsp_map(3, 16, 48)[0]) == 32


def test_more_dsps_fewer_luts():
    b = load_board("zcu102")
    L = model_layers("resnet18")
    lo = estimate_resources(L, DesignPoint(64, 3, 32, 14, 28, 8, dsp4=0, dsp8=0, post=64), b)
    hi = estimate_resources(L, DesignPoint(64, 3, 32, 14, 28, 8, dsp4=61 * 32, dsp8=0, post=64), b)
    assert hi.dsp > lo.dsp and hi.lut < lo.lut
    assert hi.bram18k == lo.bram18k


def test_buffers_grow_with_tiles():
    b = load_board("zcu102")
    L = model_layers("resnet18")
    small = estimate_resources(L, DesignPoint(64, 3, 32, 7, 14, 8, post=64), b)
    big = estimate_resources(L, DesignPoint(64, 3, 32, 28, 56, 8, post=64), b)
    assert big.bram18k > small.bram18k


def test_engine_options_change_weight_buffer():
    b = load_board("zcu102")
    L = model_layers("resnet18")
    d = DesignPoint(64, 3, 32, 14, 28, 8, post=64)
    direct = estimate_resources(L, d, b, EngineOptions(first_im2col=False))
    im2col = estimate_resources(L, d, b, EngineOptions(first_im2col=True))
    assert direct.breakdown["pe4"]["bram18k"] >= im2col.breakdown["pe4"]["bram18k"]


def test_depthwise_window_and_bank_phases_by_hand():
    """3x3 stride-2 depthwise, 16 channels, 8x8 -> 4x4, one 4x4 tile (G = 4, Tm = 8, Tn = 16)."""
    b = load_board("zcu102")
    dw = [LayerShape("dw", "dwconv", 16, 16, 8, 8, 4, 4, 3, stride=2, pad=1, groups=16)]
    d = DesignPoint(Tm=8, Tm8=1, Tn=16, Tr=4, Tc=4, G=4, post=4, clock_mhz=150)
    assert bank_phases(dw, EngineOptions()) == (3, 2 * PIXELS)
    assert bank_phases(dw, EngineOptions(dw_taps=False)) == (1, 2 * PIXELS)
    taps = estimate_resources(dw, d, b).breakdown
    # a 9x9 input tile in 3 row x 4 column phases: 3 x 3 words per bank; 12 phases x
    # ceil(16/4) channel groups = 48 banks of 20 bits x 2*9 words, one BRAM18K each
    assert taps["buffers"]["bram18k"] - _acc_skip_bram(d) == 48
    # window: 8 rows x 5 bits x 3 rows x (3 - 1 + 2*2) columns; mux: 8 rows x 9 taps x 2 px x 3
    assert taps["dw_window"] == {"lut": 8 * 9 * 2 * 3, "ff": 8 * 5 * 3 * 6, "dsp": 0,
                                 "bram18k": 0}
    one = estimate_resources(dw, d, b, EngineOptions(dw_taps=False)).breakdown
    # 9 rows x ceil(9/4) columns = 27 words per bank, 4 phases x 4 groups = 16 banks
    assert one["buffers"]["bram18k"] - _acc_skip_bram(d) == 16
    assert one["dw_window"]["lut"] == one["dw_window"]["ff"] == 0


def _acc_skip_bram(d: DesignPoint) -> int:
    """Accumulator and residual banks of a 4x4 tile: 2 x 2 x Tm + 2 x ceil(Tm/G), 1 BRAM each
    (the residual tile's two halves share a bank)."""
    return 2 * PIXELS * d.Tm + PIXELS * -(-d.Tm // d.G)


def test_onchip_im2col_unit_by_hand():
    b = load_board("zcu102")
    first = LayerShape("conv1", "conv", 3, 8, 16, 16, 8, 8, 3, stride=2, pad=1, all8=True,
                       first=True, signed_in=True)
    d = DesignPoint(Tm=8, Tm8=1, Tn=16, Tr=4, Tc=8, G=4, post=8, clock_mhz=150, ports=2)
    on = estimate_resources([first], d, b).breakdown["im2col"]
    off = estimate_resources([first], d, b, EngineOptions(im2col_onchip=False)).breakdown
    assert off["im2col"] == {"lut": 0, "ff": 0, "dsp": 0, "bram18k": 0}
    # 27 unrolled channels on 16 columns x 2 planes = 4 taps per column: a 4:1 mux + the
    # conv-bus mux, per column, pixel and activation bit
    assert on["lut"] == 16 * PIXELS * 5 * 2
    # a 3 x (3 - 1 + 2*2) window of 8-bit values per channel
    assert on["ff"] == 3 * 3 * 6 * 8
    # 3 channels x 3 row phases, 32-bit banks (4 columns per cycle) of 2 x 3 x 5 words
    assert on["bram18k"] == 9 * int(bram18k_count(32, 30))
    # on LUTRAM (raw_lutram): 9 banks of 32 bits x 30 words, 6 RAM32Ms each
    lut = estimate_resources([first], replace(d, raw_lutram=True), b).breakdown["im2col"]
    assert lut["bram18k"] == 0 and lut["lut"] == on["lut"] + 9 * 4 * 6 == on["lut"] + 216


def test_stem_pool_halo_by_hand():
    b = load_board("zcu102")
    L = model_layers("resnet18")
    d = DesignPoint(64, 3, 32, 16, 16, 4, post=32, clock_mhz=150, ports=4)
    on = estimate_resources(L, d, b)
    off = estimate_resources(L, d, b, EngineOptions(fuse_stem_pool=False))
    # even tiles: one halo row of the 112-wide conv1 map (64 x 5 bits per pixel) and the tile
    # row's 8 pooled rows of 56 columns in one bank, one halo column of the 16-row tile in
    # registers
    assert on.bram18k - off.bram18k == int(bram18k_count(64 * 5, 112 + 8 * 56))
    assert on.ff - off.ff == 16 * 64 * 5
    # a 3x3 / 2 pool (padding 1) on 112 conv rows: even tiles reach one row back, odd ones
    # two (a tile starting at row 7 completes pooled rows 3..6, whose windows start at row 5)
    assert pool_tiling((3, 2, 1), 112, 56, 16) == (1, 8)
    assert pool_tiling((3, 2, 1), 112, 56, 7) == (2, 4)
