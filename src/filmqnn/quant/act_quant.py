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


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """Value of x with its gradient multiplied by g (LSQ step-size gradient scaling)."""
    return x * g + (x - x * g).detach()


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
        if not bool(self.initialized):
            raise RuntimeError(
                "activation quantizer used before calibration; call "
                "filmqnn.quant.calibrate(model, batches) first"
            )
        qmin, qmax = self.fmt.qmin, self.fmt.qmax
        if self.mode == "pact":
            alpha = self.scale_param.abs()
            s = (alpha / qmax).detach()
            y = torch.minimum(torch.maximum(x, qmin * alpha / qmax), alpha)
            return round_ste(y / s) * s
        s = self.scale_param.abs()
        if self.mode == "lsq":
            s = grad_scale(s, 1.0 / math.sqrt(x[0].numel() * qmax))
        return round_ste(torch.clamp(x / s, qmin, qmax)) * s

    @torch.no_grad()
    def quantize_int(self, x: torch.Tensor) -> torch.Tensor:
        """The integers this quantizer represents x with (deploy and lowering use these)."""
        return torch.round(x / self.scale).clamp(self.fmt.qmin, self.fmt.qmax).to(torch.int32)
