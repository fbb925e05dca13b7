"""The seeded random criterion: the control a sensitivity criterion has to beat."""

import pytest
import torch

from filmqnn.models import build_model
from filmqnn.quant import (
    CRITERIA,
    assign_from_scores,
    calibrate,
    convert,
    filter_scores,
    quant_layers,
)
from filmqnn.tile_rule import high_filter_count


def _layers():
    model = convert(build_model("resnet18_small", num_classes=10, in_channels=1, input_size=28))
    return model, quant_layers(model)


def _chosen(model, layers, seed, ratio=0.1, tm=None):
    scores = filter_scores("random", model, layers, seed=seed)  # no data needed
    return assign_from_scores(layers, scores, ratio, tm, "random").to_dict()["layers"]


def test_random_is_a_listed_criterion():
    assert "random" in CRITERIA


def test_same_seed_same_filters_other_seed_other_filters():
    model, layers = _layers()
    a, b, c = (_chosen(model, layers, s) for s in (3, 3, 4))
    assert a == b
    assert a != c
    _, again = _layers()  # a fresh model (other weights): the choice depends on the seed only
    assert _chosen(model, again, 3) == a


@pytest.mark.parametrize("ratio,tm", [(0.05, None), (0.1, None), (0.05, 32), (0.2, 16)])
def test_random_respects_ratio_and_tile_rule(ratio, tm):
    model, layers = _layers()
    for la in _chosen(model, layers, 0, ratio, tm):
        assert la["filters_8bit"] == high_filter_count(la["filters"], ratio, tm)
        assert len(set(la["high_filters"])) == la["filters_8bit"]
        assert all(0 <= i < la["filters"] for i in la["high_filters"])


def test_random_choice_is_spread_over_the_layer():
    """Not biased to low or high filter indices: over seeds every filter of a layer is hit."""
    model, layers = _layers()
    name, layer = layers[5]
    hits = torch.zeros(layer.num_filters)
    for seed in range(200):
        scores = filter_scores("random", model, layers, seed=seed)
        hits[torch.topk(scores[name], 4).indices] += 1
    assert bool((hits > 0).all())


def test_random_runs_through_a_calibrated_model():
    model, layers = _layers()
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    calibrate(model, [x])
    scores = filter_scores("random", model, layers, x, seed=1)
    assert all(scores[n].shape == (layer.num_filters,) for n, layer in layers)
