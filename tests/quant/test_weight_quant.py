"""Per-filter weight fake-quantization: grid membership, ranges, STE gradients."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from filmqnn.quant.weight_quant import (
    fake_quantize_weight,
    quantize_weight_int,
    weight_scale,
)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 12),
    k=st.integers(1, 20),
    seed=st.integers(0, 10_000),
    scale_mode=st.sampled_from(["per-filter", "per-layer"]),
    clip_mode=st.sampled_from(["max", "mse"]),
)
def test_fake_quantized_weights_lie_on_each_filters_grid(m, k, seed, scale_mode, clip_mode):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(m, k, generator=g) * torch.rand(m, 1, generator=g)
    bits = torch.where(torch.rand(m, generator=g) < 0.3, 8, 4).to(torch.int16)
    wq = fake_quantize_weight(w, bits, scale_mode, clip_mode)
    q, scale = quantize_weight_int(w, bits, scale_mode, clip_mode)
    for f in range(m):
        qmax = 2 ** (int(bits[f]) - 1) - 1
        assert int(q[f].abs().max()) <= qmax
        levels = wq[f] / scale[f]
        assert torch.allclose(levels, levels.round(), atol=1e-4)
        assert torch.allclose(levels.round(), q[f].float())
    if scale_mode == "per-layer":  # one alpha per layer: s * qmax equal across filters
        alpha = scale * (2 ** (bits.float() - 1) - 1)
        assert torch.allclose(alpha, alpha[0].expand_as(alpha))


def test_max_clip_keeps_every_filters_extreme_on_the_top_level():
    w = torch.tensor([[0.6, -1.0, 0.25], [3.0, 1.0, -2.0]])
    bits = torch.tensor([4, 8], dtype=torch.int16)
    q, s = quantize_weight_int(w, bits, "per-filter", "max")
    assert q[0].tolist() == [4, -7, 2] and q[1].tolist() == [127, 42, -85]
    assert torch.allclose(s, torch.tensor([1 / 7, 3 / 127]))


def test_mse_clip_never_has_more_error_than_max_clip():
    w = torch.randn(16, 64) ** 3  # heavy tails: clipping helps
    bits = torch.full((16,), 4, dtype=torch.int16)
    err = {mode: ((fake_quantize_weight(w, bits, clip_mode=mode) - w) ** 2).sum(1)
           for mode in ("max", "mse")}
    assert torch.all(err["mse"] <= err["max"] + 1e-6)


def test_straight_through_gradient_is_identity_inside_the_clip_range():
    w = torch.randn(4, 9, requires_grad=True)
    bits = torch.tensor([4, 4, 8, 8], dtype=torch.int16)
    fake_quantize_weight(w, bits, clip_mode="max").sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def test_weight_scale_rejects_unknown_modes():
    w, bits = torch.randn(2, 3), torch.tensor([4, 8], dtype=torch.int16)
    with pytest.raises(ValueError, match="per-filter"):
        weight_scale(w, bits, scale_mode="per-channel")
    with pytest.raises(ValueError, match="mse"):
        weight_scale(w, bits, clip_mode="percentile")
