"""Set activation quantizer scales from a few batches of real data (PTQ and QAT start)."""

from collections.abc import Iterable

import torch
from torch import nn

from filmqnn.quant.act_quant import ActQuant


class _Collected(Exception):
    """Raised once the quantizer being calibrated has its sample: the rest of the pass is idle."""


def _stop(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
    raise _Collected


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Run `batches` through `model` and set every activation scale; returns images seen.

    Quantizers are calibrated one after another in execution order, so each one sees the
    already-quantized output of the quantizers before it, as in deployment. Each pass stops
    at the quantizer being calibrated (nothing after it can change its sample).
    """
    batches = list(batches)
    quantizers = [m for m in model.modules() if isinstance(m, ActQuant)]
    was_training = model.training
    model.eval()
    order: list[ActQuant] = []
    hooks = [q.register_forward_pre_hook(lambda mod, args: order.append(mod)) for q in quantizers]
    for q in quantizers:
        q.enabled = False
    model(batches[0][:1])
    for h in hooks:
        h.remove()
    seen = []
    for q in order:
        if q in seen:
            continue
        seen.append(q)
        q.start_calibration()
        stop = q.register_forward_hook(_stop)
        try:
            for x in batches:
                try:
                    model(x)
                except _Collected:
                    pass
        finally:
            stop.remove()
        q.finish_calibration()
        q.enabled = True
    for q in quantizers:
        q.enabled = True
    model.train(was_training)
    return sum(len(x) for x in batches)
