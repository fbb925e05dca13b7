"""Per-tensor activation fake-quantizer with learned (LSQ, PACT) or fixed clipping."""

import functools
import math

import numpy as np
import torch
from torch import nn

from filmqnn.formats import IntFormat

ACT_MODES = ("lsq", "pact", "fixed")
_HIST_BINS = 8192
_CLIP_GRID = torch.linspace(0.2, 1.0, 161)
_NUMPY_FLOATS = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 1/2): how the integer requantization rounds, ``(v + 2^(S-1)) >> S``
    (DESIGN.md §2), so a tie quantizes the same in training and on the accelerator."""
    return torch.floor(x + 0.5)


@functools.cache
def _open_range(qmin: int, qmax: int, half_even: bool, dtype: torch.dtype) -> tuple[float, float]:
    """Bounds (lo, hi) with lo < v < hi exactly where a `dtype` value v rounds (as the forward
    pass rounds it, in `dtype`) to a level in [qmin, qmax].

    Rounding is monotone, so the range of v is an interval: its ends lie within a few ulps of
    qmin - 1/2 and qmax + 1/2 (which ones, by the ties and the float rounding of v + 1/2), and
    are found here by stepping one ulp at a time (numpy scalars: no tensors, any torch mode).
    """
    if dtype not in _NUMPY_FLOATS:
        raise TypeError(f"LSQ gradients need a float16, float32 or float64 input, not {dtype}")
    f = _NUMPY_FLOATS[dtype]

    def level(v: np.floating) -> np.floating:
        return np.round(v) if half_even else np.floor(v + f(0.5))  # np.round: half to even

    lo = f(qmin - 0.5)
    while level(lo) >= qmin:  # lo: the largest value that rounds below qmin
        lo = np.nextafter(lo, f(-np.inf))
    while level(np.nextafter(lo, f(np.inf))) < qmin:
        lo = np.nextafter(lo, f(np.inf))
    hi = f(qmax + 0.5)
    while level(hi) <= qmax:  # hi: the smallest value that rounds above qmax
        hi = np.nextafter(hi, f(np.inf))
    while level(np.nextafter(hi, f(-np.inf))) > qmax:
        hi = np.nextafter(hi, f(-np.inf))
    return float(lo), float(hi)


class _LsqQuantize(torch.autograd.Function):
    """LSQ fake-quantization in one op: y = clamp(round(x/s), qmin, qmax) * s, rounding half
    up (the requantization's rounding) or, for the network input, half to even (the host's).

    Gradients (Esser et al., 2020): dy/dx = 1 where round(x/s) lies in the range, else 0;
    dy/ds = round(x/s) - x/s there, qmin or qmax outside, scaled by g = 1/sqrt(numel * qmax).

    Elementwise passes over wide activations dominate QAT time, so this op makes few: forward,
    x/s, one rounding buffer clamped and scaled in place into y; backward, one masked copy of
    the gradient and two dot products. It saves x/s and y (which the next layer keeps anyway),
    no mask: round(x/s) is in range exactly where x/s lies in an open interval (`_open_range`),
    which hardtanh's backward tests in the same pass that masks the gradient.
    """

    @staticmethod
    def forward(ctx, x, s, qmin: int, qmax: int, g: float, half_even: bool):  # type: ignore[override]
        xs = x / s
        y = torch.round(xs) if half_even else torch.add(xs, 0.5).floor_()  # round_half_up
        y.clamp_(qmin, qmax).mul_(s)
        ctx.save_for_backward(xs, s, y)
        ctx.g = g
        ctx.range_key = (qmin, qmax, half_even, xs.dtype)
        return y

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        xs, s, y = ctx.saved_tensors
        lo, hi = _open_range(*ctx.range_key)
        grad_x = torch.ops.aten.hardtanh_backward(grad, xs, lo, hi)  # grad where lo < xs < hi
        grad_s = None
        if ctx.needs_input_grad[1]:  # sum(grad * q) - sum over the range of grad * x/s
            dot_q = torch.dot(y.reshape(-1), grad.reshape(-1)) / s
            grad_s = (dot_q - torch.dot(xs.reshape(-1), grad_x.reshape(-1))) * ctx.g
        return grad_x, grad_s, None, None, None, None


@torch.no_grad()
def value_histogram(x: torch.Tensor, bins: int = _HIST_BINS) -> tuple[torch.Tensor, torch.Tensor]:
    """Every value of `x` in `bins` equal bins over [min, max]: per non-empty bin its count and
    the mean of its values (so a spike of equal values, e.g. an image background, is exact)."""
    flat = x.detach().flatten().float()
    if flat.numel() == 0:
        return torch.zeros(0), torch.zeros(0)
    lo, hi = flat.min(), flat.max()
    width = (hi - lo).clamp(min=1e-12) / bins
    idx = ((flat - lo) / width).long().clamp(0, bins - 1)
    counts = torch.bincount(idx, minlength=bins).float()
    sums = torch.bincount(idx, weights=flat, minlength=bins).float()
    keep = counts > 0
    return (sums[keep] / counts[keep]).cpu(), counts[keep].cpu()


@torch.no_grad()
def mse_optimal_scale(
    sample: torch.Tensor, fmt: IntFormat, weights: torch.Tensor | None = None
) -> float:
    """Scale that minimises the quantization MSE of `sample` (each value counted `weights`
    times, default once) over clipping fractions 0.2, 0.205, ..., 1 of its largest magnitude."""
    if sample.numel() == 0:
        return 1.0
    sample = sample.double()
    w = torch.ones_like(sample) if weights is None else weights.double()
    top = max(float(sample.max()), -float(sample.min()), 1e-8)
    if not fmt.signed:
        top = max(float(sample.max()), 1e-8)
    best, best_err = top / fmt.qmax, math.inf
    for frac in _CLIP_GRID.tolist():
        s = top * frac / fmt.qmax
        q = torch.round(sample / s).clamp(fmt.qmin, fmt.qmax) * s
        err = float((w * (q - sample) ** 2).sum())
        if err < best_err:
            best, best_err = s, err
    return best


class ActQuant(nn.Module):
    """Fake-quantizes a tensor to `fmt` with one real scale; real value = scale * integer."""

    def __init__(self, fmt: IntFormat, mode: str = "lsq", half_even: bool = False) -> None:
        super().__init__()
        # ties round half up as the integer requantization does; the network input's
        # quantizer rounds half to even as the host does (and ONNX QuantizeLinear)
        self.half_even = half_even
        if mode not in ACT_MODES:
            raise ValueError(f"activation quantizer mode {mode!r}; use one of {ACT_MODES}")
        self.fmt = fmt
        self.mode = mode
        self.scale_param = nn.Parameter(torch.tensor(1.0), requires_grad=mode != "fixed")
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))  # gloo: no bool
        self.calibrating = False
        self.enabled = True
        self._ready = False  # host copy of `initialized`: no device sync per forward
        self._samples: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def scale(self) -> float:
        """The real step between two integer levels."""
        if self.mode == "pact":
            return float(self.scale_param.detach().abs()) / self.fmt.qmax
        return float(self.scale_param.detach().abs())

    def extra_repr(self) -> str:
        rounding = "half-even" if self.half_even else "half-up"
        return f"bits={self.fmt.bits}, signed={self.fmt.signed}, mode={self.mode}, {rounding}"

    def start_calibration(self) -> None:
        """Pass tensors through unquantized and collect a histogram of all their values."""
        self.calibrating = True
        self._samples = []

    @torch.no_grad()
    def finish_calibration(self) -> None:
        """Set the scale to the MSE-optimal clip of every value seen (deterministic: a
        histogram of all values, no random sample)."""
        self.calibrating = False
        if not self._samples:
            return
        values = torch.cat([v for v, _ in self._samples])
        counts = torch.cat([c for _, c in self._samples])
        s = mse_optimal_scale(values, self.fmt, counts)
        self._samples = []
        self.scale_param.fill_(s * self.fmt.qmax if self.mode == "pact" else s)
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            self._samples.append(value_histogram(x))
            return x
        if not self.enabled:
            return x
        if not self._ready and not bool(self.initialized):
            raise RuntimeError(
                "activation quantizer used before calibration; call "
                "filmqnn.quant.calibrate(model, batches) first"
            )
        self._ready = True
        qmin, qmax = self.fmt.qmin, self.fmt.qmax
        if self.mode == "pact":
            alpha = self.scale_param.abs()
            s = (alpha / qmax).detach()
            y = torch.minimum(torch.maximum(x, qmin * alpha / qmax), alpha)
            v = y / s
            r = torch.round(v) if self.half_even else round_half_up(v)
            return (v + (r - v).detach()) * s
        g = 1.0 / math.sqrt(x[0].numel() * qmax)  # no gradient reaches a fixed scale
        return _LsqQuantize.apply(x, self.scale_param.abs(), qmin, qmax, g, self.half_even)

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)
        self._ready = False  # check the loaded `initialized` flag again

    @torch.no_grad()
    def quantize_int(self, x: torch.Tensor) -> torch.Tensor:
        """The integers this quantizer represents x with (deploy and lowering use these)."""
        v = x / self.scale
        r = torch.round(v) if self.half_even else round_half_up(v)
        return r.clamp(self.fmt.qmin, self.fmt.qmax).to(torch.int32)
