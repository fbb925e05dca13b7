"""The integer ONNX model on ONNX Runtime against the integer reference executor (same run).

    .venv/bin/python bench/onnx_vs_ref.py --artifact runs/demo/artifact [--data fashion-mnist]
        [--batch 250] [--threads N] [--limit N] [--qdq] [--layers N] [--json]

Every test image goes through both executors, batch by batch and alternating, on the same
int8 frames (the host's quantization is done once, outside the timing). Printed: images whose
integer logits differ (the target is 0), the accuracy of each, time per image of each and the
ratio ONNX Runtime / reference. With --qdq, the QDQ float view's distance to the integer
graph on the same images: its logits against the integer graph's dequantized logits (in real
units and relative to the spread of the logits), argmax agreement, its accuracy; with
--layers N, per layer, the fraction of the 5-bit activations of the first N images where the
QDQ view's QuantizeLinear differs from the integer graph, and the largest difference.
"""

import argparse
import json
import time

import numpy as np
import onnx
import torch
from onnx import helper

from filmqnn.data import load_dataset
from filmqnn.lower.requant import quantize_input
from filmqnn.onnx_export.export import read_artifact
from filmqnn.onnx_export.graph import build_int_model
from filmqnn.onnx_export.qdq import build_qdq_model
from filmqnn.onnx_export.runtime import OnnxRuntimeExecutor, make_session
from filmqnn.ref.executor import ReferenceExecutor


def tensor_outputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """A copy of `model` that also outputs every tensor of its `filmqnn.tensor_names`."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    names = json.loads({p.key: p.value for p in m.metadata_props}["filmqnn.tensor_names"])
    have = {o.name for o in m.graph.output}
    for onnx_name in names.values():
        if onnx_name not in have and onnx_name not in {i.name for i in m.graph.input}:
            m.graph.output.append(helper.make_value_info(onnx_name, onnx.TypeProto()))
    return m, names


def layer_differences(int_model: onnx.ModelProto, qdq_model: onnx.ModelProto, x: torch.Tensor,
                      xq: np.ndarray, threads: int) -> dict[str, dict[str, float]]:
    """Per artifact tensor quantized in both views: fraction of values that differ, max |diff|."""
    mi, ni = tensor_outputs(int_model)
    mq, nq = tensor_outputs(qdq_model)
    si, sq = make_session(mi, threads), make_session(mq, threads)
    oi = dict(zip([o.name for o in si.get_outputs()], si.run(None, {"input_q": xq}),
                  strict=True))
    oq = dict(zip([o.name for o in sq.get_outputs()], sq.run(None, {"input": x.numpy()}),
                  strict=True))
    out = {}
    for tensor, qname in nq.items():
        if tensor not in ni:
            continue
        a = oi.get(ni[tensor], xq if ni[tensor] == "input_q" else None)
        d = np.abs(a.astype(np.int64) - oq[qname].astype(np.int64))
        out[tensor] = {"differing": float((d > 0).mean()), "max_abs": int(d.max())}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", required=True)
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--limit", type=int, default=None, help="test images (default: all)")
    p.add_argument("--qdq", action="store_true", help="also measure the QDQ view's distance")
    p.add_argument("--layers", type=int, default=0,
                   help="with --qdq: per-layer activation differences on this many images")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    graph, sha = read_artifact(args.artifact)
    ref = ReferenceExecutor(graph)
    int_model = build_int_model(graph, sha)
    ort_ex = OnnxRuntimeExecutor(graph, int_model, threads=args.threads)
    qdq_model = build_qdq_model(graph, sha) if args.qdq else None
    qdq = make_session(qdq_model, args.threads) if qdq_model is not None else None
    ds = load_dataset(args.data, "test", root=args.data_root, limit=args.limit).dataset
    idx = torch.arange(len(ds))
    scale = graph.tensors[graph.outputs[0]].scale
    lsb = np.asarray(scale, dtype=np.float64)

    t_ref = t_ort = 0.0
    n = mismatched = correct_ref = correct_ort = 0
    qdq_stats = {"max_abs": 0.0, "sum_abs": 0.0, "sum": 0.0, "sum_sq": 0.0, "agree": 0,
                 "correct": 0}
    for start in range(0, len(ds), args.batch):
        x, y = ds.batch(idx[start:start + args.batch])
        xq = quantize_input(x, ref.input_scale)
        if start == 0:  # warm up both
            ref.run_int(xq)
            ort_ex.run_int(xq.numpy())
        t = time.perf_counter()
        a = ref.run_int(xq)[0].numpy()
        t_ref += time.perf_counter() - t
        t = time.perf_counter()
        b = ort_ex.run_int(xq.numpy())[0]
        t_ort += time.perf_counter() - t
        yy = y.numpy()
        mismatched += int((a != b).any(axis=1).sum())
        correct_ref += int((a * lsb).argmax(1).__eq__(yy).sum())
        correct_ort += int((b * lsb).argmax(1).__eq__(yy).sum())
        n += len(yy)
        if qdq is not None:
            real = a * lsb
            f = qdq.run(None, {"input": x.numpy()})[0].astype(np.float64)
            d = np.abs(f - real)
            qdq_stats["max_abs"] = max(qdq_stats["max_abs"], float(d.max()))
            qdq_stats["sum_abs"] += float(d.sum())
            qdq_stats["sum"] += float(real.sum())
            qdq_stats["sum_sq"] += float((real ** 2).sum())
            qdq_stats["agree"] += int((f.argmax(1) == real.argmax(1)).sum())
            qdq_stats["correct"] += int((f.argmax(1) == yy).sum())

    result = {
        "artifact": args.artifact, "artifact_sha256": sha, "data": args.data, "images": n,
        "threads": args.threads, "batch": args.batch, "mismatched_images": mismatched,
        "accuracy_reference": correct_ref / n, "accuracy_onnxruntime": correct_ort / n,
        "ms_per_image_reference": 1e3 * t_ref / n, "ms_per_image_onnxruntime": 1e3 * t_ort / n,
        "time_ratio_onnxruntime_over_reference": t_ort / t_ref,
    }
    if qdq is not None:
        logits = n * lsb.size
        std = (qdq_stats["sum_sq"] / logits - (qdq_stats["sum"] / logits) ** 2) ** 0.5
        result["qdq"] = {"max_abs_logit_diff": qdq_stats["max_abs"],
                         "mean_abs_logit_diff": qdq_stats["sum_abs"] / logits,
                         "logit_std": std,
                         "argmax_agreement": qdq_stats["agree"] / n,
                         "accuracy": qdq_stats["correct"] / n}
        if args.layers and qdq_model is not None:
            x, _ = ds.batch(idx[:args.layers])
            xq = quantize_input(x, ref.input_scale).numpy().astype(np.int8)
            result["qdq"]["layers"] = layer_differences(int_model, qdq_model, x, xq,
                                                        args.threads)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.artifact} on {args.data}: {n} images, batch {args.batch}, {args.threads} "
          "threads")
    print(f"  images with different integer logits: {mismatched}")
    print(f"  accuracy: reference {100 * result['accuracy_reference']:.2f} %, ONNX Runtime "
          f"{100 * result['accuracy_onnxruntime']:.2f} %")
    print(f"  time per image: reference {result['ms_per_image_reference']:.3f} ms, ONNX Runtime "
          f"{result['ms_per_image_onnxruntime']:.3f} ms")
    print(f"  ratio ONNX Runtime / reference time: "
          f"{result['time_ratio_onnxruntime_over_reference']:.2f}x")
    if qdq is not None:
        q = result["qdq"]
        print(f"  QDQ view vs integer graph: max |logit diff| {q['max_abs_logit_diff']:.4g}, "
              f"mean {q['mean_abs_logit_diff']:.4g} (logit std {q['logit_std']:.4g}), "
              f"argmax agreement {100 * q['argmax_agreement']:.2f} %, QDQ accuracy "
              f"{100 * q['accuracy']:.2f} %")
        for tensor, d in q.get("layers", {}).items():
            print(f"    {tensor:28s} {100 * d['differing']:7.3f} % of values differ, "
                  f"max {d['max_abs']} LSB")


if __name__ == "__main__":
    main()
