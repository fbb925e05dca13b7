"""How closely the integer graph follows the fake-quant model, layer by layer, with filmqnn's
requantization and with DESIGN.md §2's plain formula (the evidence for the two additions).

    .venv/bin/python bench/requant_fidelity.py \
        --checkpoint runs/fmnist-resnet18/mixed_R_5__A5/quant.pt

Each requantizing layer is fed the fake-quant model's own input integers (teacher forcing) and
its output integers are compared with the fake-quant model's; the test-set accuracy of the
whole integer graph is measured too. "DESIGN" drops the per-filter rounding offset (the bias
is rounded to the accumulator LSB) and normalises a fused add's shared shift on the larger of
its two ratios, so the accumulator multiplier loses bits.
"""

import argparse
import copy
import math

import numpy as np
import torch

from filmqnn.data import load_dataset
from filmqnn.lower.export import lower_checkpoint
from filmqnn.lower.fidelity import layer_agreement
from filmqnn.lower.graph import IntGraph
from filmqnn.lower.requant import REQUANT_MANTISSA_BITS
from filmqnn.quant.checkpoint import load_quantized
from filmqnn.ref.evaluate import evaluate_artifact
from filmqnn.ref.executor import ReferenceExecutor


def design_variant(graph: IntGraph) -> IntGraph:
    """The same graph with DESIGN.md's plain requantization: no offset; a fused add's shift
    normalised on max(accumulator ratio, skip ratio)."""
    g = copy.deepcopy(graph)
    for n in g.nodes:
        p = n.params
        if "offset" not in p:
            continue
        p["offset"] = np.zeros_like(p["offset"])
        if "skip_mult" in p:
            top = np.maximum(p["mult"], p["skip_mult"]) / np.exp2(p["shift"])
            shift = np.array([REQUANT_MANTISSA_BITS - math.frexp(float(t))[1] for t in top])
            scale = np.exp2(shift - p["shift"])
            p["mult"] = np.round(p["mult"] * scale).astype(np.int64)
            p["skip_mult"] = np.round(p["skip_mult"] * scale).astype(np.int64)
            p["shift"] = shift.astype(np.int64)
    return g


def teacher_forced(model: torch.nn.Module, graph: IntGraph, x: torch.Tensor) -> list[float]:
    """Per requantizing layer: the fraction of output integers that differ from fake-quant."""
    return [differ for _, differ, _ in layer_agreement(model, graph, x)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--samples", type=int, default=200, help="images for the per-layer check")
    args = p.parse_args()
    model, state = load_quantized(args.checkpoint)
    graph, _ = lower_checkpoint(args.checkpoint)
    test = load_dataset(state["spec"]["data"], "test", root=state["spec"]["data_root"])
    x = torch.stack([test.dataset[i][0] for i in range(args.samples)])
    print(f"{args.checkpoint}: per-layer mismatch vs fake-quant ({args.samples} images, "
          "teacher-forced), test accuracy of the integer graph")
    for name, g in (("filmqnn", graph), ("DESIGN", design_variant(graph))):
        rates = teacher_forced(model, g, x)
        acc = evaluate_artifact(ReferenceExecutor(g), test.dataset, progress=False)["accuracy"]
        print(f"  {name:8s} mismatch median {np.median(rates):.2e}, max {max(rates):.2e}; "
              f"accuracy {100 * acc:.2f} %")


if __name__ == "__main__":
    main()
