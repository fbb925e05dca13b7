"""The weight quantizer's straight-through mask keeps every filter's largest weight (issue 16).

With per-filter max scaling, s = amax / qmax and qmax * s can round one float32 ulp below amax;
a mask `|w| <= qmax * s` then gave the largest weight of such filters zero gradient.
"""

import pytest
import torch

from filmqnn.quant.weight_quant import fake_quantize_weight, weight_scale

torch.set_num_threads(1)


def _old_forward(w: torch.Tensor, bits: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    s = scale.reshape(-1, 1, 1, 1)
    qmax = (2 ** (bits.float() - 1) - 1).reshape(-1, 1, 1, 1)
    return torch.round(w / s).clamp(-qmax, qmax) * s


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("magnitude", [0.01, 0.3])
@pytest.mark.parametrize("seed", range(4))
def test_largest_weight_of_every_filter_gets_a_gradient(bits, magnitude, seed):
    g = torch.Generator().manual_seed(seed)
    w = (magnitude * torch.randn(64, 32, 3, 3, generator=g)).requires_grad_()
    b = torch.full((64,), bits, dtype=torch.uint8)
    y = fake_quantize_weight(w, b, clip_mode="max")
    (y * torch.randn(y.shape, generator=g).abs().add(0.1)).sum().backward()
    top = w.detach().flatten(1).abs().argmax(dim=1)
    grad_at_top = w.grad.flatten(1).gather(1, top[:, None]).squeeze(1)
    assert bool((grad_at_top != 0).all()), f"{int((grad_at_top == 0).sum())} filters lost it"
    # forward unchanged, bit for bit
    assert torch.equal(y.detach(), _old_forward(w.detach(), b, weight_scale(w, b, clip_mode="max")))


@pytest.mark.parametrize("bits", [4, 8])
def test_the_old_mask_did_drop_some_largest_weights(bits):
    """The case the fix is for exists on these tensors (so the test above can fail)."""
    dropped = 0
    for magnitude in (0.01, 0.3):
        for seed in range(4):
            g = torch.Generator().manual_seed(seed)
            w = magnitude * torch.randn(64, 32, 3, 3, generator=g)
            b = torch.full((64,), bits, dtype=torch.uint8)
            scale = weight_scale(w, b, clip_mode="max")
            amax = w.flatten(1).abs().amax(dim=1)
            dropped += int((amax > (2 ** (bits - 1) - 1) * scale).sum())
    assert dropped > 0


def test_clipped_weights_still_get_no_gradient():
    w = torch.tensor([[0.1, -0.2, 1.0, -3.0]]).requires_grad_()
    b = torch.tensor([4], dtype=torch.uint8)
    scale = torch.tensor([1.0 / 7])  # clip at 1.0: the 3.0 weight is cut, 1.0 kept
    y = fake_quantize_weight(w, b, scale=scale)
    y.sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0, 1.0, 0.0]]
    assert y.detach().tolist()[0][3] == pytest.approx(-1.0)
