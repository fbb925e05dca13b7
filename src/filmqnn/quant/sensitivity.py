"""Filter sensitivity scores that rank which filters of a layer get high precision."""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from filmqnn.quant.act_quant import ActQuant
from filmqnn.quant.conversion import quant_layers
from filmqnn.quant.qmodules import QConv2d, QLinear
from filmqnn.quant.weight_quant import fake_quantize_weight

CRITERIA = ("output-error", "weight-error", "fisher", "random")
DATA_CRITERIA = ("output-error", "fisher")  # the criteria that need a batch of real data
Layers = list[tuple[str, QConv2d | QLinear]]


def _low_bit_error(layer: QConv2d | QLinear) -> torch.Tensor:
    """W - Q_low(W): the weight error of every filter quantized at the low bit width."""
    w = layer.weight.detach()
    low = torch.full_like(layer.bits, layer.low_bits)
    return w - fake_quantize_weight(w, low, layer.scale_mode, layer.clip_mode).detach()


def _apply(layer: QConv2d | QLinear, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, QConv2d):
        return layer._conv_forward(x, w, None)
    return F.linear(x, w)


@torch.no_grad()
def layer_inputs(model: nn.Module, layers: Layers, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each layer's real (quantized) input when `model` runs `batch` in eval mode."""
    inputs: dict[str, torch.Tensor] = {}
    hooks = [
        layer.register_forward_hook(
            lambda mod, args, out, name=name: inputs.__setitem__(name, args[0])
        )
        for name, layer in layers
    ]
    try:
        was_training = model.training
        model.eval()
        model(batch)
        model.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return inputs


@torch.no_grad()
def output_error_scores(
    model: nn.Module, layers: Layers, batch: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Paper Eq. 4: E_k = ||W_k A - Q_low(W_k) A||_2 on each layer's real quantized input A."""
    inputs = layer_inputs(model, layers, batch)
    scores = {}
    for name, layer in layers:
        err = _apply(layer, inputs[name], _low_bit_error(layer))
        dims = [d for d in range(err.dim()) if d != 1]
        scores[name] = err.pow(2).sum(dim=dims).sqrt()
    return scores


@torch.no_grad()
def layer_output_errors(model: nn.Module, batch: torch.Tensor) -> dict[str, float]:
    """Per layer, ||W A - Q(W) A|| / ||W A|| at the layer's current per-filter bit widths, on its
    real quantized input A: how far the layer's output moves through its weight quantization."""
    layers = quant_layers(model)
    inputs = layer_inputs(model, layers, batch)
    out = {}
    for name, layer in layers:
        w = layer.weight.detach()
        ref = _apply(layer, inputs[name], w)
        err = ref - _apply(layer, inputs[name], layer.quantized_weight().detach())
        out[name] = float(err.norm() / ref.norm().clamp(min=1e-12))
    return out


@torch.no_grad()
def end_to_end_errors(model: nn.Module, batch: torch.Tensor) -> dict[str, float]:
    """Per layer, ||y_q - y|| / ||y|| of its output: y_q in the quantized model, y in the same
    model unquantized (BN folded, weights exact, activations exact but for the ReLU that an
    unsigned quantizer stands for): how far quantization has moved the network by that layer."""
    layers = quant_layers(model)
    quantizers = [q for q in model.modules() if isinstance(q, ActQuant)]

    def outputs() -> dict[str, torch.Tensor]:
        outs: dict[str, torch.Tensor] = {}
        hooks = [
            layer.register_forward_hook(lambda m, a, o, n=name: outs.__setitem__(n, o.detach()))
            for name, layer in layers
        ]
        was_training = model.training
        model.eval()
        try:
            model(batch)
        finally:
            model.train(was_training)
            for h in hooks:
                h.remove()
        return outs

    quantized = outputs()
    for _, layer in layers:
        layer.quant_enabled = False
    for q in quantizers:
        q.forward = (lambda x: x) if q.fmt.signed else (lambda x: x.clamp(min=0))
    try:
        exact = outputs()
    finally:
        for _, layer in layers:
            layer.quant_enabled = True
        for q in quantizers:
            del q.forward
    return {
        n: float((quantized[n] - exact[n]).norm() / exact[n].norm().clamp(min=1e-12))
        for n in exact
    }


@torch.no_grad()
def weight_error_scores(layers: Layers) -> dict[str, torch.Tensor]:
    """||W_k - Q_low(W_k)||_2: the plain weight quantization error, data-free."""
    return {name: _low_bit_error(layer).flatten(1).norm(dim=1) for name, layer in layers}


def fisher_scores(
    model: nn.Module,
    layers: Layers,
    batch: torch.Tensor,
    target: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    chunks: int = 8,
) -> dict[str, torch.Tensor]:
    """Fisher / Hessian-diagonal estimate of the loss increase: sum_i F_ii (W_i - Q_low(W_i))^2.

    The empirical Fisher diagonal is the mean squared gradient over `chunks` sub-batches.
    """
    fisher = {name: torch.zeros_like(layer.weight) for name, layer in layers}
    was_training = model.training
    model.eval()
    params = [layer.weight for _, layer in layers]
    for xb, yb in zip(batch.chunk(chunks), target.chunk(chunks), strict=True):
        grads = torch.autograd.grad(loss_fn(model(xb), yb), params)
        for (name, _), g in zip(layers, grads, strict=True):
            fisher[name] += g.detach() ** 2
    model.train(was_training)
    return {
        name: (fisher[name] * _low_bit_error(layer) ** 2).flatten(1).sum(dim=1)
        for name, layer in layers
    }


def random_scores(layers: Layers, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded uniform random scores: the control that a sensitivity criterion has to beat.

    Layer i draws from its own generator (seed, i), so the choice in one layer does not depend
    on the sizes of the layers before it, and every process of a DDP run draws the same.
    """
    out = {}
    for i, (name, layer) in enumerate(layers):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
        out[name] = torch.rand(layer.num_filters, generator=gen).to(layer.weight.device)
    return out


def filter_scores(
    criterion: str,
    model: nn.Module,
    layers: Layers,
    batch: torch.Tensor | None = None,
    target: torch.Tensor | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Score every filter of every layer by `criterion` (higher = more sensitive to low bits).

    `seed` only matters for `random`, the seeded control criterion.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown sensitivity criterion {criterion!r}; use one of {CRITERIA}")
    if criterion == "random":
        return random_scores(layers, seed)
    if criterion == "weight-error":
        return weight_error_scores(layers)
    if batch is None:
        raise ValueError(f"criterion {criterion!r} needs a batch of data")
    if criterion == "output-error":
        return output_error_scores(model, layers, batch)
    if target is None:
        raise ValueError("criterion 'fisher' needs the batch's labels")
    return fisher_scores(model, layers, batch, target)
