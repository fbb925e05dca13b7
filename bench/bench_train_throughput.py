"""Training throughput (images/s) of the FP32 and the QAT step of full-size models at 224x224.

    .venv/bin/python bench/bench_train_throughput.py [--models resnet18,resnet50,mobilenet_v2]
        [--batch 64] [--steps 10] [--rounds 3] [--device auto] [--amp none] [--json]

One SGD step (forward, backward, update) on a fixed random batch, so data loading is not in
it (see bench/bench_data_loading.py). FP32: the torchvision model with BatchNorm; QAT: the
fake-quantized model (BN folded, 5 % 8-bit filters by weight error, first and last layer
8-bit, 5-bit activations). The two alternate in rounds so machine noise hits both; the ratio
is QAT images/s over FP32 images/s from the same run. Runs on whatever device it finds
(`--device auto`); `--amp` autocasts the FP32 step only (QAT steps run in FP32).
"""

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from filmqnn.models import build_model
from filmqnn.quant import apply_assignment, assign_from_scores, calibrate, convert, quant_layers
from filmqnn.quant.sensitivity import weight_error_scores
from filmqnn.train.device import (
    autocast,
    check_amp,
    grad_scaler,
    resolve_device,
    synchronize,
    to_device,
)


def qat_model(fp32: nn.Module, x: torch.Tensor, device: torch.device) -> nn.Module:
    """The fake-quantized copy of `fp32`, calibrated on `x`, 5 % 8-bit filters, on `device`."""
    model = to_device(convert(copy.deepcopy(fp32).cpu()), device)
    calibrate(model, [x])
    layers = quant_layers(model)
    fixed = {layers[0][0], layers[-1][0]}
    scores = weight_error_scores(layers)
    apply_assignment(layers, assign_from_scores(layers, scores, 0.05, fixed_high=fixed))
    return model


class Stepper:
    """SGD steps of one model on one batch, timed with the device synchronised."""

    def __init__(self, model: nn.Module, device: torch.device, amp: str = "none") -> None:
        self.model, self.device, self.amp = model, device, amp
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.875)
        self.scaler = grad_scaler(device, amp)
        model.train()

    def run(self, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
        """Seconds per step, averaged over `steps` consecutive steps."""
        synchronize(self.device)
        t = time.perf_counter()
        for _ in range(steps):
            with autocast(self.device, self.amp):
                loss = F.cross_entropy(self.model(x), y)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        synchronize(self.device)
        return (time.perf_counter() - t) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet18,resnet50,mobilenet_v2")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="steps per round and model")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--amp", default="none", help="FP32 step autocast: none, bf16, fp16")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    device = resolve_device(args.device)
    check_amp(args.amp, device)
    torch.manual_seed(0)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    head = (f"device={device} ({where}) threads={torch.get_num_threads()} batch={args.batch} "
            f"input=3x224x224 steps={args.steps}x{args.rounds} amp(fp32)={args.amp}")
    rows = []
    if not args.json:
        print(head)
        print(f"{'model':14s} {'fp32 img/s':>11s} {'qat img/s':>10s} {'qat/fp32':>9s}")
    for name in args.models.split(","):
        x = to_device(torch.randn(args.batch, 3, 224, 224), device)
        y = to_device(torch.randint(0, 1000, (args.batch,)), device)
        fp32 = to_device(build_model(name), device)
        f = Stepper(fp32, device, args.amp)
        q = Stepper(qat_model(fp32, x, device), device)
        f.run(x, y, args.warmup)
        q.run(x, y, args.warmup)
        tf, tq = [], []
        for _ in range(args.rounds):
            tf.append(f.run(x, y, args.steps))
            tq.append(q.run(x, y, args.steps))
        fps_f, fps_q = args.batch / statistics.median(tf), args.batch / statistics.median(tq)
        rows.append({"model": name, "fp32_images_per_s": fps_f, "qat_images_per_s": fps_q,
                     "ratio": fps_q / fps_f})
        if not args.json:
            print(f"{name:14s} {fps_f:11.2f} {fps_q:10.2f} {fps_q / fps_f:8.2f}x", flush=True)
        del f, q, fp32
    if args.json:
        print(json.dumps({"setup": head, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
