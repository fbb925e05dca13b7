"""QAT training-step time of the fake-quantized model as a ratio to the FP32 step (same run).

    .venv/bin/python bench/bench_qat_step.py [--models resnet18_small,mobilenet_v2_small]

Target (issue 2): ratio <= 1.3. The two steps alternate in rounds so machine noise hits both.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from filmqnn.models import build_model
from filmqnn.quant import apply_assignment, assign_from_scores, calibrate, convert, quant_layers
from filmqnn.quant.sensitivity import weight_error_scores


def step_time(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Median seconds of one SGD step (forward, backward, update) over `steps` steps."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet18_small,mobilenet_v2_small")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=4)
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"threads={torch.get_num_threads()} batch={args.batch} input=1x28x28")
    print(f"{'model':22s} {'fp32 step':>10s} {'qat step':>10s} {'ratio':>6s}")
    for name in args.models.split(","):
        fp32 = build_model(name, num_classes=10, in_channels=1, input_size=28)
        x = torch.randn(args.batch, 1, 28, 28)
        y = torch.randint(0, 10, (args.batch,))
        qat = convert(fp32)
        calibrate(qat, [x])
        layers = quant_layers(qat)
        fixed = {layers[0][0], layers[-1][0]}
        apply_assignment(layers, assign_from_scores(layers, weight_error_scores(layers), 0.05,
                                                    fixed_high=fixed))
        step_time(fp32, x, y, 2)
        step_time(qat, x, y, 2)  # warm-up
        f, q = [], []
        for _ in range(args.rounds):
            f.append(step_time(fp32, x, y, args.steps))
            q.append(step_time(qat, x, y, args.steps))
        tf, tq = statistics.median(f), statistics.median(q)
        print(f"{name:22s} {1000 * tf:8.1f}ms {1000 * tq:8.1f}ms {tq / tf:6.2f}x")


if __name__ == "__main__":
    main()
