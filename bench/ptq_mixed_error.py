"""Post-training W_low vs mixed R%: accuracy and per-layer output error, seed by seed.

For one FP32 checkpoint and every seed (seed s calibrates on the s-th block of 512 training
images, as `filmqnn quantize --mode ptq --seed s`), this builds the uniform low-bit model and
the mixed one exactly as `quantize --mode ptq` does (calibrate, assign, calibrate again), and
the mixed one that keeps the uniform model's activation scales (only the chosen filters
change). It prints test accuracy and, per layer on the first calibration batch, the relative
output error `local` (the layer's own weight error on its real quantized input,
`quant.sensitivity.layer_output_errors`) and `end-to-end` (the layer's output in the quantized
model against the unquantized, BN-folded one, `quant.sensitivity.end_to_end_errors`).

    .venv/bin/python bench/ptq_mixed_error.py --checkpoint runs/fmnist-r18-2ep/fp32/fp32.pt \
        --low-bits 4 --ratio 0.05 --seeds 0,1,2 --json runs/ptq_mixed_error.json
"""

import argparse
import json
import statistics

import torch

from filmqnn.quant import (
    QuantConfig,
    apply_assignment,
    assign_from_scores,
    calibrate,
    filter_scores,
    quant_layers,
)
from filmqnn.quant.checkpoint import load_checkpoint, quantized_model_from_fp32
from filmqnn.quant.sensitivity import end_to_end_errors, layer_output_errors
from filmqnn.train.batches import first_batches
from filmqnn.train.loop import evaluate
from filmqnn.train.spec import TrainSpec, load_split


def build(state, cfg, calib, y0, ratio, criterion, seed, recalibrate=True):
    torch.manual_seed(seed)
    model = quantized_model_from_fp32(state, cfg)
    calibrate(model, calib)
    layers = quant_layers(model)
    fixed = {layers[0][0], layers[-1][0]}
    scores = filter_scores(criterion, model, layers, calib[0], y0)
    apply_assignment(layers, assign_from_scores(layers, scores, ratio, None, criterion, fixed))
    if recalibrate:
        calibrate(model, calib)
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--low-bits", type=int, default=4)
    p.add_argument("--ratio", type=float, default=0.05)
    p.add_argument("--criterion", default="output-error")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--limit-test", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the numbers here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    state = load_checkpoint(args.checkpoint, kind="fp32")
    spec = TrainSpec.from_dict({**state["spec"], "limit_test": args.limit_test})
    train, test = load_split(spec, "train"), load_split(spec, "test")
    cfg = QuantConfig(low_bits=args.low_bits)
    variants = {
        "uniform": dict(ratio=0.0),
        "mixed": dict(ratio=args.ratio),
        "mixed, uniform's act scales": dict(ratio=args.ratio, recalibrate=False),
    }
    acc: dict[str, list[float]] = {k: [] for k in variants}
    errs: dict[str, list[dict]] = {k: [] for k in variants}
    for seed in [int(s) for s in args.seeds.split(",")]:
        pairs = first_batches(train.dataset, 128, 4, seed)  # as `quantize --seed`
        calib, y0 = [x for x, _ in pairs], pairs[0][1]
        for name, kw in variants.items():
            if not kw.get("recalibrate", True):
                # keep the uniform model's activation scales: calibrate, assign, no recalibration
                model = build(state, cfg, calib, y0, kw["ratio"], args.criterion, seed, False)
            else:
                model = build(state, cfg, calib, y0, kw["ratio"], args.criterion, seed)
            a = evaluate(model, test.dataset, progress=False)["accuracy"]
            e2e = end_to_end_errors(model, calib[0])
            local = layer_output_errors(model, calib[0])
            errs[name].append({"local": local, "end_to_end": e2e})
            acc[name].append(a)
            print(f"seed {seed} {name:28s} {100 * a:.2f} %", flush=True)
    print()
    for name, vals in acc.items():
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        print(f"{name:28s} mean {100 * statistics.mean(vals):.2f} sd {100 * sd:.2f}  "
              + " ".join(f"{100 * v:.2f}" for v in vals))
    print("\nper-layer relative output error (first seed): local uniform/mixed, end-to-end "
          "uniform/mixed/mixed-keep")
    names = list(errs["uniform"][0]["local"])
    keep = "mixed, uniform's act scales"
    for n in names:
        u, m, k = errs["uniform"][0], errs["mixed"][0], errs[keep][0]
        print(f"{n:24s} {u['local'][n]:.4f} {m['local'][n]:.4f}   "
              f"{u['end_to_end'][n]:.4f} {m['end_to_end'][n]:.4f} {k['end_to_end'][n]:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "accuracy": acc, "errors": errs}, f, indent=1)


if __name__ == "__main__":
    main()
