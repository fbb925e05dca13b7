"""Per-tensor activation fake-quantizer with learned (LSQ, PACT) or fixed clipping."""

import math

import torch
from torch import nn

from filmqnn.quant.formats import IntFormat
from filmqnn.quant.weight_quant import round_ste

ACT_MODES = ("lsq", "pact", "fixed")
_SAMPLE_PER_BATCH = 1 << 14
_SAMPLE_MAX = 1 << 18
_CLIP_GRID = torch.linspace(0.2, 1.0, 33)


class _LsqQuantize(torch.autograd.Function):
    """LSQ fake-quantization in one op: y = clamp(round(x/s), qmin, qmax) * s.

    Gradients (Esser et al., 2020): dy/dx = 1 where round(x/s) lies in the range, else 0;
    dy/ds = round(x/s) - x/s there, qmin or qmax outside, scaled by g = 1/sqrt(numel * qmax).
    The backward pass is one multiply and two dot products (elementwise passes dominate QAT
    time on wide activations).
    """

    @staticmethod
    def forward(ctx, x, s, qmin: int, qmax: int, g: float):  # type: ignore[override]
        xs = x / s
        r = torch.round(xs)
        q = r.clamp(qmin, qmax)
        ctx.save_for_backward(xs, q, r == q)
        ctx.g = g
        return q * s

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        xs, q, inside = ctx.saved_tensors
        grad_x = grad * inside
        grad_s = None
        if ctx.needs_input_grad[1]:
            flat = grad.reshape(-1)
            grad_s = (torch.dot(q.reshape(-1), flat) - torch.dot(xs.reshape(-1),
                      grad_x.reshape(-1))) * ctx.g
        return grad_x, grad_s, None, None, None


@torch.no_grad()
def mse_optimal_scale(sample: torch.Tensor, fmt: IntFormat) -> float:
    """Scale that minimises the quantization MSE of `sample` over clipping fractions of its max."""
    if sample.numel() == 0:
        return 1.0
    top = max(float(sample.max()), -float(sample.min()), 1e-8)
    if not fmt.signed:
        top = max(float(sample.max()), 1e-8)
    best, best_err = top / fmt.qmax, math.inf
    for frac in _CLIP_GRID.tolist():
        s = top * frac / fmt.qmax
        err = float(((torch.round(sample / s).clamp(fmt.qmin, fmt.qmax) * s - sample) ** 2).mean())
        if err < best_err:
            best, best_err = s, err
    return best


class ActQuant(nn.Module):
    """Fake-quantizes a tensor to `fmt` with one real scale; real value = scale * integer."""

    def __init__(self, fmt: IntFormat, mode: str = "lsq") -> None:
        super().__init__()
        if mode not in ACT_MODES:
            raise ValueError(f"activation quantizer mode {mode!r}; use one of {ACT_MODES}")
        self.fmt = fmt
        self.mode = mode
        self.scale_param = nn.Parameter(torch.tensor(1.0), requires_grad=mode != "fixed")
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))  # gloo: no bool
        self.calibrating = False
        self.enabled = True
        self._ready = False  # host copy of `initialized`: no device sync per forward
        self._samples: list[torch.Tensor] = []

    @property
    def scale(self) -> float:
        """The real step between two integer levels."""
        if self.mode == "pact":
            return float(self.scale_param.detach().abs()) / self.fmt.qmax
        return float(self.scale_param.detach().abs())

    def extra_repr(self) -> str:
        return f"bits={self.fmt.bits}, signed={self.fmt.signed}, mode={self.mode}"

    def start_calibration(self) -> None:
        """Pass tensors through unquantized and collect a value sample to set the scale from."""
        self.calibrating = True
        self._samples = []

    @torch.no_grad()
    def finish_calibration(self) -> None:
        """Set the scale to the MSE-optimal clip of the collected sample."""
        self.calibrating = False
        if not self._samples:
            return
        s = mse_optimal_scale(torch.cat(self._samples), self.fmt)
        self._samples = []
        self.scale_param.fill_(s * self.fmt.qmax if self.mode == "pact" else s)
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.calibrating:
            flat = x.detach().flatten().float()
            if flat.numel() > _SAMPLE_PER_BATCH:
                idx = torch.randint(0, flat.numel(), (_SAMPLE_PER_BATCH,), device=flat.device)
                flat = flat[idx]
            if sum(t.numel() for t in self._samples) < _SAMPLE_MAX:
                self._samples.append(flat.cpu())
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
            return round_ste(y / s) * s
        g = 1.0 / math.sqrt(x[0].numel() * qmax)  # no gradient reaches a fixed scale
        return _LsqQuantize.apply(x, self.scale_param.abs(), qmin, qmax, g)

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)
        self._ready = False  # check the loaded `initialized` flag again

    @torch.no_grad()
    def quantize_int(self, x: torch.Tensor) -> torch.Tensor:
        """The integers this quantizer represents x with (deploy and lowering use these)."""
        return torch.round(x / self.scale).clamp(self.fmt.qmin, self.fmt.qmax).to(torch.int32)
