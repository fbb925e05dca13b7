"""Accuracy of an artifact on a data set, and the bit-exact comparison with deploy mode."""

from typing import Any

import torch

from filmqnn.data.batches import progress_batches
from filmqnn.lower.deploy import DeployModel
from filmqnn.ref.executor import ReferenceExecutor


def evaluate_artifact(
    executor: ReferenceExecutor,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 250,
    progress: bool = True,
) -> dict[str, Any]:
    """Top-1 accuracy of the integer reference on every item of `dataset`."""
    correct = n = 0
    for x, y in progress_batches(dataset, batch_size, progress, "integer reference"):
        correct += int((executor.logits(x).argmax(1) == y).sum())
        n += len(y)
    return {"accuracy": correct / max(n, 1), "samples": n}


def compare_logits(
    deploy: DeployModel,
    executor: ReferenceExecutor,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 100,
    progress: bool = True,
) -> dict[str, Any]:
    """Deploy-mode torch against the integer reference, integer logit for integer logit."""
    compared = mismatches = 0
    max_diff = 0
    with torch.no_grad():
        for x, _ in progress_batches(dataset, batch_size, progress, "verify"):
            a, b = deploy.int_logits(x), executor.int_logits(x)
            if a.shape != b.shape:
                raise ValueError(
                    f"logit shapes differ: deploy {tuple(a.shape)}, reference {tuple(b.shape)}"
                )
            bad = (a != b).flatten(1).any(1)
            mismatches += int(bad.sum())
            compared += len(x)
            max_diff = max(max_diff, int((a - b).abs().max()))
    return {"compared": compared, "mismatches": mismatches, "max_abs_diff": max_diff}
