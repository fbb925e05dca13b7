"""Extra channel-group reads of reordered gathers (hw.gathers) and their place in the model."""

from dataclasses import replace

import numpy as np

from filmqnn.hw.gathers import estimated_extra_groups, extra_groups, gather_extra
from filmqnn.hw.layers import LayerShape
from filmqnn.hw.performance import layer_gathers, table_cycles
from filmqnn.lower.reordering import filter_order
from filmqnn.lower.tiling import Tiling


def test_extra_groups_by_hand():
    assert extra_groups(np.arange(8), 4, 2) == 0.0
    idx = np.arange(8)
    idx[[1, 6]] = idx[[6, 1]]  # tile 0 now reads group 3, tile 1 group 0: one more each
    assert extra_groups(idx, 4, 2) == 1.0
    idx = np.arange(8)
    idx[[0, 3]] = idx[[3, 0]]  # a swap inside one tile costs nothing
    assert extra_groups(idx, 4, 2) == 0.0
    # a last, partial tile counts as a tile
    assert extra_groups(np.array([0, 1, 2, 3, 5, 4]), 4, 2) == 0.0


def test_estimate_is_the_reorder_rule_on_random_assignments():
    rng = np.random.default_rng(1)
    t = Tiling(tm=16, tm8=2, tn=4, g=8, axi_bits=128)
    vals = []
    for _ in range(64):
        bits = np.full(192, 4, np.uint8)
        bits[rng.choice(192, 24, replace=False)] = 8
        vals.append(extra_groups(filter_order(bits, t, prefer=np.arange(192))[0], 16, 8))
    est = estimated_extra_groups(192, 16, 2, 8)
    assert abs(est - np.mean(vals)) < 3 * np.std(vals) / np.sqrt(8)
    assert estimated_extra_groups(192, 16, 0, 8) == 0.0  # uniform: nothing moves
    assert estimated_extra_groups(16, 16, 2, 8) == 0.0  # one tile: swaps stay inside


def test_measured_value_only_for_its_tiling():
    e, indexed = gather_extra((16, 8, 0.5, 1), 192, True, np.array([16, 16, 32]), 2,
                              np.array([8, 4, 8]))
    assert e[0] == 0.5 and indexed[0]
    assert e[1] == estimated_extra_groups(192, 16, 2, 4) and e[2] > 0
    e, indexed = gather_extra((16, 8, 0.0, 0), 192, True, 16, 2, 8)
    assert e == 0.0 and not indexed


def test_gathered_layers_read_their_index_table():
    dw = LayerShape("dw", "dwconv", 96, 96, 8, 8, 8, 8, 3, 1, 1, 96,
                    in_gather=(16, 8, 1.5, 1))
    e_in, e_skip, indexed = layer_gathers(dw, 16, 2, 8)
    assert (e_in, e_skip, bool(indexed)) == (1.5, 0, True)
    plain = replace(dw, in_gather=(16, 8, 0.0, 0))
    assert not layer_gathers(plain, 16, 2, 8)[2]
    # four 32-bit words per output channel on top of the requantization table
    more = table_cycles(dw, 128, 2, 1e9, True) - table_cycles(dw, 128, 2, 1e9, False)
    assert more == 4 * 96 * 32 // 128 // 2
    all8 = replace(dw, all8=True, in_gather=None)
    assert layer_gathers(all8, 16, 2, 8)[0] == 0
