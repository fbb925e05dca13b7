"""Per-filter mixed-precision weight fake-quantization with a straight-through estimator."""

import torch

CLIP_CANDIDATES = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)
WEIGHT_SCALE_MODES = ("per-filter", "per-layer")
WEIGHT_CLIP_MODES = ("max", "mse")


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass (STE)."""
    return x + (torch.round(x) - x).detach()


def qmax_of(bits: torch.Tensor) -> torch.Tensor:
    """Largest level of a signed narrow-range format for each filter's bit width."""
    return (2 ** (bits.to(torch.float32) - 1) - 1).clamp(min=1)


@torch.no_grad()
def weight_amax(w: torch.Tensor, scale_mode: str = "per-filter") -> torch.Tensor:
    """max|W| of every filter [M], or the layer's max repeated for the paper's per-layer scale."""
    amax = w.detach().reshape(w.shape[0], -1).abs().amax(dim=1)
    if scale_mode == "per-layer":
        amax = amax.max().expand_as(amax)
    return amax.clamp(min=1e-8)


@torch.no_grad()
def weight_clip(
    w2d: torch.Tensor, qmax: torch.Tensor, scale_mode: str = "per-filter", clip_mode: str = "mse"
) -> torch.Tensor:
    """Clipping value alpha per filter [M]: max|W| (paper) or the MSE-optimal fraction of it."""
    if scale_mode not in WEIGHT_SCALE_MODES:
        raise ValueError(f"weight scale mode {scale_mode!r}; use one of {WEIGHT_SCALE_MODES}")
    if clip_mode not in WEIGHT_CLIP_MODES:
        raise ValueError(f"weight clip mode {clip_mode!r}; use one of {WEIGHT_CLIP_MODES}")
    amax = weight_amax(w2d, scale_mode)
    if clip_mode == "max":
        return amax
    ratios = torch.tensor(CLIP_CANDIDATES, dtype=w2d.dtype, device=w2d.device)
    alphas = amax[None, :] * ratios[:, None]  # [C, M]
    scales = alphas / qmax[None, :]
    q = torch.round(w2d[None] / scales[..., None]).clamp(-qmax[None, :, None], qmax[None, :, None])
    err = ((q * scales[..., None] - w2d[None]) ** 2).sum(dim=2)  # [C, M]
    if scale_mode == "per-layer":
        best = err.sum(dim=1).argmin()
        return alphas[best]
    best = err.argmin(dim=0)
    return alphas.gather(0, best[None]).squeeze(0)


def weight_scale(
    w: torch.Tensor, bits: torch.Tensor, scale_mode: str = "per-filter", clip_mode: str = "mse"
) -> torch.Tensor:
    """Real scale s_w[m] of every filter, so that w ~ s_w[m] * q with q in the filter's range."""
    w2d = w.detach().reshape(w.shape[0], -1)
    qmax = qmax_of(bits)
    return weight_clip(w2d, qmax, scale_mode, clip_mode) / qmax


class _WeightFakeQuantize(torch.autograd.Function):
    """y = clamp(round(w/s), -qmax, qmax) * s with the straight-through gradient in one op.

    The straight-through mask is the forward's own test: gradient 1 where the clamp leaves
    round(w/s) unchanged, 0 where it cuts. (Comparing |w| with qmax*s instead drops the largest
    weight of a max-scaled filter whenever qmax*(amax/qmax) rounds one ulp below amax.) The
    rounded values become that mask, as floats, in place; the clamped ones become the output.
    """

    @staticmethod
    def forward(ctx, w, s, qmax):  # type: ignore[override]
        r = torch.div(w, s)
        r.round_()
        q = torch.clamp(r, -qmax, qmax)
        inside = r.eq_(q)
        ctx.save_for_backward(inside)
        return q.mul_(s)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


def fake_quantize_scaled(w: torch.Tensor, scale: torch.Tensor, qmax: torch.Tensor) -> torch.Tensor:
    """Fake-quantize filter m of `w` with step `scale[m]` to levels -qmax[m]..qmax[m] (both [M],
    no gradient); gradients pass straight through to `w` where the clamp does not cut."""
    shape = (-1,) + (1,) * (w.dim() - 1)
    return _WeightFakeQuantize.apply(w, scale.detach().reshape(shape), qmax.reshape(shape))


def fake_quantize_weight(
    w: torch.Tensor,
    bits: torch.Tensor,
    scale_mode: str = "per-filter",
    clip_mode: str = "mse",
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fake-quantize filter m of `w` to `bits[m]` bits; gradients pass straight through in range
    (gradient 1 where the clamp leaves round(w/s) unchanged, 0 where it cuts)."""
    if scale is None:
        scale = weight_scale(w, bits, scale_mode, clip_mode)
    return fake_quantize_scaled(w, scale, qmax_of(bits))


def quantize_weight_int(
    w: torch.Tensor, bits: torch.Tensor, scale_mode: str = "per-filter", clip_mode: str = "mse"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer weights and per-filter scales (the values the integer graph stores)."""
    scale = weight_scale(w, bits, scale_mode, clip_mode)
    shape = (-1,) + (1,) * (w.dim() - 1)
    qmax = qmax_of(bits).reshape(shape)
    q = torch.round(w.detach() / scale.reshape(shape)).clamp(-qmax, qmax)
    return q.to(torch.int32), scale
