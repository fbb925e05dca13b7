"""Worker that tests/train/test_ddp.py starts under torchrun (2 gloo processes); not a test.

    torchrun --nproc_per_node 2 --standalone ddp_worker.py assign OUT_DIR DATA
    torchrun --nproc_per_node 2 --standalone ddp_worker.py kill EPOCH -- FILMQNN ARGS...

``assign``: every rank scores filters on its own data shard, the scores are summed over the
ranks, each rank writes its local and its reduced assignment to OUT_DIR/rank<r>.json.
``kill``: runs a filmqnn command; rank 1 SIGKILLs itself when epoch EPOCH (0-based) starts.
"""

import json
import os
import signal
import sys
from pathlib import Path

import torch


def assign(out_dir: Path, data: str) -> None:
    """Write this rank's local and all-reduced assignments (and its local scores)."""
    from filmqnn.data import load_dataset
    from filmqnn.models import build_model
    from filmqnn.quant import assign_from_scores, calibrate, convert, filter_scores, quant_layers
    from filmqnn.quant.config import QuantSpec
    from filmqnn.train.batches import epoch_order
    from filmqnn.train.distributed import init_distributed, shutdown
    from filmqnn.train.qat import assign_distributed

    torch.set_num_threads(1)
    dist = init_distributed("cpu")
    torch.manual_seed(0)
    ds = load_dataset(data, "train", limit=512).dataset
    model = convert(build_model("tiny_cnn", num_classes=10, in_channels=1, input_size=28))
    calibrate(model, [ds.batch(torch.arange(64))[0]])  # same calibration on every rank
    x, y = ds.batch(epoch_order(len(ds), 0, 0, dist.rank, dist.world)[:64])  # own shard
    qspec = QuantSpec(ratio=0.25)
    layers = quant_layers(model)
    fixed = {layers[0][0], layers[-1][0]}
    local_scores = filter_scores(qspec.criterion, model, layers, x, y.long())
    local = assign_from_scores(layers, local_scores, qspec.ratio, None, qspec.criterion, fixed)
    reduced = assign_distributed(model, qspec, x, y.long(), dist)
    applied = {name: layer.high_precision_filters() for name, layer in layers}
    (out_dir / f"rank{dist.rank}.json").write_text(
        json.dumps(
            {
                "local": local.to_dict()["layers"],
                "reduced": reduced.to_dict()["layers"],
                "applied": applied,
                "scores": {k: v.tolist() for k, v in local_scores.items()},
            }
        )
    )
    shutdown(dist)


def kill(epoch: int, argv: list[str]) -> None:
    """Run `filmqnn argv`; rank 1 is killed (SIGKILL) at the start of epoch `epoch`."""
    import filmqnn.train.fp32 as fp32

    original = fp32.train_epoch

    def train_epoch(*args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs["epoch"] == epoch and os.environ.get("RANK") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    fp32.train_epoch = train_epoch
    from filmqnn.cli.main import main

    sys.argv = ["filmqnn", *argv]
    main()


if __name__ == "__main__":
    if sys.argv[1] == "assign":
        assign(Path(sys.argv[2]), sys.argv[3])
    else:
        kill(int(sys.argv[2]), sys.argv[sys.argv.index("--") + 1 :])
