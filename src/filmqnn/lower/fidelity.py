"""How closely the integer graph follows the fake-quant model it was lowered from, layer by
layer: each requantizing layer is fed the fake-quant model's own input integers (teacher
forcing) and its output integers are compared with the fake-quant model's."""

from __future__ import annotations

import torch
from torch import nn

from filmqnn.lower.deploy import to_deploy
from filmqnn.lower.graph import IntGraph
from filmqnn.lower.requant import quantize_input
from filmqnn.quant.act_quant import ActQuant


@torch.no_grad()
def layer_agreement(model: nn.Module, graph: IntGraph, x: torch.Tensor
                    ) -> list[tuple[str, float, float]]:
    """Per requantizing layer of ``graph``: (name, fraction of output integers that differ
    from the fake-quant model's, fraction that differ by more than one LSB)."""
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(torch.round(o / m.scale)))
             for m in model.modules() if isinstance(m, ActQuant)]
    try:
        model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    deploy = to_deploy(graph)
    env = {graph.input: quantize_input(x, deploy.input_scale).long()}
    requant = [op for op in deploy.ops if op.node.requantizes]
    if len(requant) != len(seen) - 1:
        raise ValueError(f"the graph has {len(requant)} requantizing layers, the model "
                         f"{len(seen) - 1} activation quantizers after its input: not its lowering")
    for op, q in zip(requant, seen[1:], strict=True):
        env[op.node.output] = q.reshape(-1, *graph.tensors[op.node.output].shape).long()
    out = []
    for op in deploy.ops:
        if op.node.requantizes:
            got = op(*(env[i] for i in op.node.inputs))
            diff = (got - env[op.node.output]).abs()
            out.append((op.node.name, float((diff > 0).float().mean()),
                        float((diff > 1).float().mean())))
        elif op.node.output not in env:
            env[op.node.output] = op(*(env[i] for i in op.node.inputs))
    return out
