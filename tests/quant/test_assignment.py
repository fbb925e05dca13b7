"""Precision assignment: the tile rule counts, score ranking, the JSON artifact."""

import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from filmqnn.models import build_model
from filmqnn.quant import (
    Assignment,
    apply_assignment,
    assign_from_scores,
    calibrate,
    convert,
    filter_scores,
    quant_layers,
)
from filmqnn.quant.weight_quant import fake_quantize_weight
from filmqnn.tile_rule import high_filter_count, tile_high_filters


def test_tile_rule_examples_from_design():
    assert tile_high_filters(32, 0.05) == 2  # round(1.6)
    assert tile_high_filters(16, 0.05) == 1  # max(1, round(0.8))
    assert tile_high_filters(64, 0.05) == 3
    assert high_filter_count(64, 0.05, tm=32) == 4
    assert high_filter_count(3, 0.05, tm=32) == 2  # one partial tile still holds Tm8 = 2
    assert high_filter_count(100, 0.05, tm=32) == 2 * 4  # ceil(100/32) tiles
    assert high_filter_count(64, 0.0, tm=32) == 0
    assert high_filter_count(64, 1.0, tm=32) == 64
    assert high_filter_count(64, 0.05) == 3  # plain ratio


@given(m=st.integers(1, 4096), tm=st.integers(1, 256), r=st.floats(0.001, 1.0))
def test_tile_rule_properties(m, tm, r):
    tm8 = tile_high_filters(tm, r)
    n = high_filter_count(m, r, tm)
    assert 1 <= tm8 <= tm
    tiles = [min(tm, m - t) for t in range(0, m, tm)]
    assert n == sum(min(tm8, size) for size in tiles)  # a partial tile holds at most its size
    assert n <= min(m, tm8 * math.ceil(m / tm))


def test_bad_ratio_and_tile_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        high_filter_count(10, 1.5)
    with pytest.raises(ValueError, match="Tm"):
        tile_high_filters(0, 0.05)


def _tiny():
    model = convert(build_model("tiny_cnn", num_classes=10, in_channels=1, input_size=28))
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    calibrate(model, [x])
    return model, quant_layers(model), x


def test_the_highest_scores_get_8_bits():
    model, layers, x = _tiny()
    scores = filter_scores("output-error", model, layers, x)
    a = assign_from_scores(layers, scores, 0.25)
    for la in a.layers:
        s = scores[la.name]
        chosen = s[la.high_filters]
        rest = s[[i for i in range(la.filters) if i not in la.high_filters]]
        assert len(la.high_filters) == high_filter_count(la.filters, 0.25)
        assert rest.numel() == 0 or chosen.min() >= rest.max()


def test_output_error_score_is_eq4():
    model, layers, x = _tiny()
    name, layer = layers[1]
    seen = {}
    layer.register_forward_hook(lambda m, a, o: seen.update(a=a[0]))
    scores = filter_scores("output-error", model, layers, x)
    a = seen["a"]
    w = layer.weight.detach()
    low = torch.full_like(layer.bits, 4)
    wq = fake_quantize_weight(w, low)
    ref = (layer._conv_forward(a, w, None) - layer._conv_forward(a, wq, None))
    ref = ref.transpose(0, 1).flatten(1).norm(dim=1)
    assert torch.allclose(scores[name], ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("criterion", ["weight-error", "fisher"])
def test_other_criteria_score_every_filter(criterion):
    model, layers, x = _tiny()
    y = torch.randint(0, 10, (16,))
    scores = filter_scores(criterion, model, layers, x, y)
    for name, layer in layers:
        assert scores[name].shape == (layer.num_filters,)
        assert torch.all(scores[name] >= 0)


def test_assignment_json_round_trip_and_mismatch(tmp_path):
    model, layers, x = _tiny()
    a = assign_from_scores(layers, filter_scores("weight-error", model, layers), 0.1, tm=8)
    path = tmp_path / "assignment.json"
    a.save(path)
    d = json.loads(path.read_text())
    assert d["format"] == "filmqnn.assignment/1"
    assert [la["filters_8bit"] for la in d["layers"]] == [len(la.high_filters) for la in a.layers]
    b = Assignment.load(path)
    assert b.to_dict() == a.to_dict()
    apply_assignment(layers, b)
    with pytest.raises(ValueError, match="does not match the model"):
        apply_assignment(layers[:-1], b)
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a filmqnn assignment"):
        Assignment.load(path)
    with pytest.raises(FileNotFoundError, match="filmqnn quantize"):
        Assignment.load(tmp_path / "missing.json")
