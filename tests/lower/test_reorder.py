"""Weight reordering (tile slots, folded permutations, index storage) and the weight stream
layout (pack / unpack round trip, stream order and size)."""

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from filmqnn.lower.deploy import to_deploy
from filmqnn.lower.lowering import lower
from filmqnn.lower.packing import pack_int4
from filmqnn.lower.reordering import (
    ReorderError,
    filter_order,
    index_bits,
    reorder,
    slot_is_high,
    unreordered_index_bits,
)
from filmqnn.lower.tiling import Tiling
from filmqnn.lower.weight_layout import (
    NIBBLE_MAX_BITS,
    pack_stream,
    stream_bits,
    stream_bytes,
    stream_index,
    unpack_streams,
)
from filmqnn.quant import quant_layers
from filmqnn.ref.executor import ReferenceExecutor
from filmqnn.tile_rule import high_filter_count


@st.composite
def tilings(draw) -> Tiling:
    tm = draw(st.integers(1, 20))
    return Tiling(tm=tm, tm8=draw(st.integers(0, tm)), tn=2 * draw(st.integers(1, 5)), g=8,
                  axi_bits=draw(st.sampled_from([64, 128, 256])))


@st.composite
def assignments(draw):
    """(tiling, bits): a mixed 4/8-bit layer whose 8-bit filters fit the tiling's slots."""
    t = draw(tilings().filter(lambda t: t.tm8 > 0))
    m = draw(st.integers(1, 80))
    cap = int(slot_is_high(m, t).sum())
    n8 = draw(st.integers(0, cap))
    high = draw(st.permutations(range(m)))[:n8]
    bits = np.full(m, 4, np.uint8)
    bits[list(high)] = 8
    return t, bits


@given(assignments())
@settings(max_examples=200, deadline=None)
def test_filter_order_puts_high_filters_in_high_slots(case):
    t, bits = case
    m = len(bits)
    order, slot_bits = filter_order(bits, t, "layer")
    assert np.array_equal(np.sort(order), np.arange(m))  # a permutation
    hi_slot = slot_is_high(m, t)
    assert np.array_equal(hi_slot, np.arange(m) % t.tm < t.tm8)
    if bits.min() == bits.max():  # uniform: identity, bits unchanged
        assert np.array_equal(order, np.arange(m))
        assert np.array_equal(slot_bits, bits)
        return
    assert slot_bits.dtype == np.uint8
    assert np.array_equal(slot_bits, np.where(hi_slot, 8, 4))
    placed = bits[order]
    assert (hi_slot[placed == 8]).all()  # every 8-bit filter sits in an 8-bit slot
    assert (placed <= slot_bits).all()  # a 4-bit filter may fill a spare 8-bit slot
    # high filters fill the 8-bit slots first, in their original order
    n8 = int((bits == 8).sum())
    assert np.array_equal(order[hi_slot][:n8], np.flatnonzero(bits == 8))
    assert (np.diff(order[~hi_slot]) > 0).all()


@pytest.mark.parametrize("bits_value", [4, 8])
@pytest.mark.parametrize("m", [1, 7, 16, 33])
def test_uniform_layers_keep_identity(m, bits_value):
    t = Tiling(tm=16, tm8=2, tn=4)
    bits = np.full(m, bits_value, np.uint8)
    order, slot_bits = filter_order(bits, t)
    assert np.array_equal(order, np.arange(m)) and np.array_equal(slot_bits, bits)
    # even with no 8-bit slot at all
    order, _ = filter_order(bits, Tiling(tm=16, tm8=0, tn=4))
    assert np.array_equal(order, np.arange(m))


@pytest.mark.parametrize("m,n8,tm8", [(16, 3, 2), (32, 5, 2), (8, 1, 0), (40, 7, 2)])
def test_filter_order_refuses_too_many_high_filters(m, n8, tm8):
    t = Tiling(tm=16, tm8=tm8, tn=4)
    bits = np.full(m, 4, np.uint8)
    bits[np.arange(n8) * (m // n8)] = 8
    with pytest.raises(ReorderError, match=r"layer 'conv7' has \d+ 8-bit filters .* "
                                           r"`--tm 16`"):
        filter_order(bits, t, "conv7")


def test_tile_rule_count_fits_the_slots_of_a_partial_tile():
    t = Tiling(tm=16, tm8=2, tn=4)
    m = 17
    n8 = high_filter_count(m, t.tm8 / t.tm, tm=t.tm)
    bits = np.full(m, 4, np.uint8)
    bits[:n8] = 8
    filter_order(bits, t, "layer")


def test_reorder_rejects_a_model_assigned_for_a_larger_tile(lowered):
    g = lowered("user_cnn")
    with pytest.raises(ReorderError, match=r"--tm 32"):
        reorder(g, Tiling(tm=32, tm8=0, tn=4))  # no 8-bit slot for its mixed layers


def _sparse_bits(v) -> int:
    """By hand: the displaced (position, source) pairs, or the whole vector if shorter."""
    k = len(v)
    width = max(1, math.ceil(math.log2(k)))
    moved = sum(1 for j, x in enumerate(v) if x != j)
    return min(k * width, 2 * moved * width)


def _index_bits_by_hand(g) -> int:
    total = 0
    for n in g.nodes:
        for key in ("skip_index", "in_index", "b_index"):
            if key in n.params:
                total += _sparse_bits(n.params[key].tolist())
    for o in g.outputs:
        if g.tensors[o].order is not None:
            total += _sparse_bits(g.tensors[o].order.tolist())
    return total


@settings(max_examples=60, deadline=None)
@given(m=st.integers(2, 70), tm=st.integers(2, 16), seed=st.integers(0, 2**16))
def test_preferred_order_moves_only_misplaced_filters(m, tm, seed):
    rng = np.random.default_rng(seed)
    t = Tiling(tm=tm, tm8=1, tn=4)
    hi = slot_is_high(m, t)
    bits = np.full(m, 4, np.uint8)
    bits[rng.choice(m, size=int(rng.integers(1, hi.sum() + 1)), replace=False)] = 8
    prefer = rng.permutation(m)
    order, slot_bits = filter_order(bits, t, "l", prefer)
    assert sorted(order.tolist()) == list(range(m))
    assert np.all(bits[order][~hi] == 4)  # no 8-bit filter in a 4-bit slot
    misplaced = int(np.sum((bits[prefer] == 8) & ~hi))
    assert int(np.sum(order != prefer)) == 2 * misplaced  # each one swapped once


def test_index_bits_counts_skip_depthwise_and_add_indices(lowered, tiling):
    g = lowered("user_cnn")
    assert index_bits(g) == 0
    r = reorder(g, tiling)
    nodes = {n.name: n for n in r.nodes}
    # depthwise conv reads an input in another order, the plain add's second operand and the
    # fused residual skip are gathered; 24 channels -> 5 bits per index
    assert "in_index" in nodes["dw"].params
    assert "b_index" in nodes["add"].params
    assert "skip_index" in nodes["pw"].params
    assert r.tensors[r.outputs[0]].order is None  # last layer all 8-bit: identity
    assert 0 < index_bits(r) == _index_bits_by_hand(r) <= 3 * 24 * 5
    un = unreordered_index_bits(g)
    mixed = [n for n in g.nodes if n.op in ("conv", "fc") and len(set(n.params["bits"])) > 1]
    assert un["flag_bits"] == sum(len(n.params["bits"]) for n in mixed)


@pytest.mark.parametrize("name", ["resnet18_small", "mobilenet_v2_small"])
def test_index_bits_of_registry_models(name, lowered, tiling):
    r = reorder(lowered(name), tiling)
    assert index_bits(r) == _index_bits_by_hand(r) > 0
    assert any("skip_index" in n.params for n in r.nodes)
    if name.startswith("mobilenet"):
        assert any("in_index" in n.params for n in r.nodes)


def test_reorder_folds_permutations_into_consumers(lowered, tiling):
    g = lowered("user_cnn")
    r = reorder(g, tiling)
    assert r.reordered and r.tiling == tiling.to_dict()
    assert not g.reordered and g.tiling is None  # the input graph is untouched
    orig = {n.name: n for n in g.nodes}
    for n in r.nodes:
        if n.op not in ("conv", "fc"):
            continue
        o = orig[n.name]
        order = r.tensors[n.output].order
        order = np.arange(len(o.params["bits"])) if order is None else order
        w = o.params["weight"][order]
        t_in = r.tensors[n.inputs[0]]
        if n.attrs.get("groups", 1) == 1 and t_in.order is not None:
            w = w[:, t_in.order]  # the producer's order is folded into the input channels
        assert np.array_equal(n.params["weight"], w)
        for key in ("bias", "mult", "shift", "skip_mult", "offset"):
            if key in o.params:
                assert np.array_equal(n.params[key], o.params[key][order])
        if len(set(o.params["bits"])) > 1:
            assert np.array_equal(n.params["bits"], np.where(slot_is_high(len(order), tiling),
                                                              8, 4))


def test_mixed_last_layer_output_order_is_restored(quantized, tiling):
    q = copy.deepcopy(quantized("user_cnn"))
    _, last = quant_layers(q)[-1]
    last.set_high_precision([3, 7])  # 10 classes, 2 of them 8-bit: reordered output
    g = lower(q, (1, 28, 28))
    r = reorder(g, tiling)
    order = r.tensors[r.outputs[0]].order
    assert order is not None and order[:2].tolist() == [3, 7]
    assert index_bits(r) == _index_bits_by_hand(r)
    assert r.tensors[r.outputs[0]].order.tolist() == [3, 7, 2, 0, 4, 5, 6, 1, 8, 9]
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        d = to_deploy(g).int_logits(x)
    assert torch.equal(ReferenceExecutor(r).int_logits(x), d)


# ----------------------------------------------------------------------------- weight layout


@st.composite
def weight_layers(draw):
    """(weight, slot_bits, tiling, depthwise) of a random conv, depthwise conv or fc."""
    kind = draw(st.sampled_from(["conv", "dw", "fc"]))
    t = draw(tilings())
    m = draw(st.integers(1, 40))
    k = draw(st.sampled_from([1, 2, 3, 5]))
    if kind == "conv":
        shape = (m, draw(st.integers(1, 13)), k, k)
    elif kind == "dw":
        shape = (m, 1, k, k)
    else:
        shape = (m, draw(st.integers(1, 50)))
    pair = draw(st.sampled_from([(4, 8), (4, 4), (8, 8), (2, 8), (3, 5), (4, 6)]))
    slot_bits = np.array(draw(st.lists(st.sampled_from(pair), min_size=m, max_size=m)),
                         dtype=np.uint8)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    qmax = (1 << (slot_bits.astype(np.int64) - 1)) - 1
    w = rng.integers(-qmax, qmax + 1, size=(int(np.prod(shape[1:])), m)).T.reshape(shape)
    return w.astype(np.int8), slot_bits, t, kind == "dw"


def reference_stream(w, slot_bits, b, t, depthwise) -> bytes:
    """Loop restatement of the stream layout: tile, chunk, filter, row, column, channel run."""
    m = w.shape[0]
    if w.ndim == 2:
        w4 = w[:, :, None, None]
    elif depthwise:
        w4 = w.reshape(m, -1, 1, 1)  # a depthwise filter's run is its K*K taps
    else:
        w4 = w
    c, kh, kw = w4.shape[1:]
    tn = c if depthwise else t.tn
    vals = []
    for tile in range(math.ceil(m / t.tm)):
        for c0 in range(0, c, tn):
            for f in range(tile * t.tm, min(m, (tile + 1) * t.tm)):
                if slot_bits[f] != b:
                    continue
                for y in range(kh):
                    for x in range(kw):
                        run = [int(w4[f, ch, y, x]) for ch in range(c0, min(c, c0 + tn))]
                        if b <= NIBBLE_MAX_BITS and len(run) % 2:
                            run.append(0)
                        vals += run
    a = np.array(vals, dtype=np.int64)
    if b <= NIBBLE_MAX_BITS:
        return pack_int4(a).tobytes() if len(a) else b""
    return a.astype(np.int8).tobytes()


def expected_stream_bytes(shape, slot_bits, b, t, depthwise) -> int:
    m = shape[0]
    if len(shape) == 2:
        c, taps = shape[1], 1
    elif depthwise:
        c, taps = shape[2] * shape[3], 1
    else:
        c, taps = shape[1], shape[2] * shape[3]
    n_f = int((slot_bits == b).sum())
    assert n_f <= m
    if b > NIBBLE_MAX_BITS:
        return n_f * taps * c
    tn = c if depthwise else t.tn
    last = c - (c - 1) // tn * tn
    nibbles = n_f * taps * (c + last % 2)
    assert nibbles % 2 == 0
    return nibbles // 2


@given(weight_layers())
@settings(max_examples=200, deadline=None)
def test_weight_streams_round_trip(layer):
    w, slot_bits, t, depthwise = layer
    streams = {}
    for b in stream_bits(slot_bits):
        idx = stream_index(w.shape, slot_bits, b, t, depthwise)
        buf = pack_stream(w, idx, b)
        assert buf.dtype == np.uint8
        assert len(buf) == stream_bytes(idx, b) == expected_stream_bytes(w.shape, slot_bits, b,
                                                                         t, depthwise)
        assert buf.tobytes() == reference_stream(w, slot_bits, b, t, depthwise)
        streams[b] = buf
    back = unpack_streams(streams, w.shape, slot_bits, t, depthwise)
    assert back.dtype == np.int8
    assert np.array_equal(back, w)


def test_stream_bits_and_wrong_stream_length():
    t = Tiling(tm=4, tm8=1, tn=2)
    w = np.ones((4, 3, 3, 3), np.int8)
    bits = np.array([8, 4, 4, 4], np.uint8)
    assert stream_bits(bits) == [4, 8]
    idx4 = stream_index(w.shape, bits, 4, t, False)
    # 3 filters x 9 taps x (2 + 1 channels, the odd last chunk padded to 2) nibbles
    assert len(idx4) == 3 * 9 * 4 and (idx4 == -1).sum() == 3 * 9
    streams = {b: pack_stream(w, stream_index(w.shape, bits, b, t, False), b) for b in (4, 8)}
    streams[4] = streams[4][:-1]
    with pytest.raises(ValueError, match=r"4-bit weight stream holds \d+ values, expected 108"):
        unpack_streams(streams, w.shape, bits, t, False)


def test_nibble_order_is_low_first():
    t = Tiling(tm=1, tm8=0, tn=2)
    w = np.array([[1, -2, 3]], np.int8)  # fc, one 4-bit filter, 3 inputs: 2 + (1 + pad)
    idx = stream_index(w.shape, np.array([4], np.uint8), 4, t, False)
    assert idx.tolist() == [0, 1, 2, -1]
    assert pack_stream(w, idx, 4).tolist() == [0xE1, 0x03]
