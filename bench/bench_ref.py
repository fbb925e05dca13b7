"""Throughput of the integer reference executor against FP32 torch inference (same run).

    .venv/bin/python bench/bench_ref.py [--model resnet18] [--size 224] [--batch 8]

Target (issue 3): the reference is no slower than 2x FP32 on ResNet-18 at 224x224. The model
has random weights (nothing is downloaded); a tile-rule assignment (r = 5 %, Tm = 32) picks
random 8-bit filters; the artifact is written, read back and run. FP32 and the reference
alternate in rounds so machine noise hits both; the medians are compared.
"""

import argparse
import statistics
import tempfile
import time

import torch

from filmqnn.lower.artifact import load_artifact, save_artifact
from filmqnn.lower.lowering import lower
from filmqnn.lower.reordering import reorder
from filmqnn.lower.tiling import Tiling
from filmqnn.models import build_model
from filmqnn.quant import calibrate, convert, quant_layers
from filmqnn.ref.executor import ReferenceExecutor
from filmqnn.tile_rule import high_filter_count


def quantized(model: torch.nn.Module, size: int, tiling: Tiling, ratio: float) -> torch.nn.Module:
    """Convert, give each inner layer a random tile-rule set of 8-bit filters, calibrate."""
    q = convert(model)
    gen = torch.Generator().manual_seed(0)
    for _, layer in quant_layers(q)[1:-1]:
        n8 = high_filter_count(layer.num_filters, ratio, tiling.tm)
        layer.set_high_precision(torch.randperm(layer.num_filters, generator=gen)[:n8].tolist())
    calibrate(q, [torch.randn(4, 3, size, size, generator=gen)])
    return q


def timed(fn, x: torch.Tensor) -> float:
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    torch.manual_seed(0)
    tiling = Tiling(tm=32, tm8=2)
    fp32 = build_model(args.model, num_classes=1000, in_channels=3, input_size=args.size).eval()
    q = quantized(fp32, args.size, tiling, 0.05)
    graph = reorder(lower(q, (3, args.size, args.size)), tiling)
    with tempfile.TemporaryDirectory() as tmp:
        save_artifact(graph, f"{tmp}/a")
        executor = ReferenceExecutor(load_artifact(f"{tmp}/a"))
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.no_grad():
        fp32(x)
        executor.int_logits(x)  # warm up both
        t_fp, t_ref = [], []
        for _ in range(args.rounds):
            t_fp.append(timed(fp32, x))
            t_ref.append(timed(executor.int_logits, x))
    fp, ref = statistics.median(t_fp), statistics.median(t_ref)
    print(f"{args.model} {args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} "
          f"threads, median of {args.rounds} rounds")
    print(f"  FP32 torch        {args.batch / fp:8.2f} images/s")
    print(f"  integer reference {args.batch / ref:8.2f} images/s")
    print(f"  ratio reference/FP32 time: {ref / fp:.2f}x (target <= 2.0)")


if __name__ == "__main__":
    main()
