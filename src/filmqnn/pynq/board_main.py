"""The bundle's command line (``python3 run.py``): classify a folder of images on the board.

Images: every ``.npy`` file of the folder (one uint8 image [C, H, W] / [H, W] or a batch
[N, C, H, W] / [N, H, W]) and every ``.png`` file (read with Pillow when it is installed), in
file-name order. Numpy only (Pillow optional), Python 3.8 syntax.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .bundle import Bundle, BundleError
from .device import DeviceError
from .driver import Accelerator, InputError


class ImageError(ValueError):
    """An image folder that cannot be read as the network's input."""


def load_images(folder: str | Path, shape: Sequence[int]) -> tuple[np.ndarray, list[str]]:
    """uint8 images [N, C, H, W] of a folder's .npy / .png files and a name per image."""
    root = Path(folder)
    if not root.is_dir():
        raise ImageError(f"{root} is not a directory of images")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".npy", ".png"))
    if not files:
        raise ImageError(f"{root} holds no .npy or .png files")
    c, h, w = (int(s) for s in shape)
    batches, names = [], []
    for f in files:
        if f.suffix.lower() == ".npy":
            a = np.load(str(f), allow_pickle=False)
        else:
            try:
                from PIL import Image
            except ImportError:
                raise ImageError(f"{f.name}: PNG images need Pillow (pip3 install pillow); or "
                                 "save the images as .npy") from None
            with Image.open(f) as im:
                a = np.asarray(im.convert("L" if c == 1 else "RGB"))
            if a.ndim == 3:
                a = a.transpose(2, 0, 1)  # HWC -> CHW
        if a.dtype != np.uint8:
            raise ImageError(f"{f.name}: dtype {a.dtype}; images must be uint8 pixels 0..255")
        if a.shape in ((c, h, w), (h, w)):
            a = a.reshape(1, c, h, w)
            names.append(f.name)
        elif a.shape[1:] in ((c, h, w), (h, w)):
            a = a.reshape(len(a), c, h, w)
            names += [f"{f.name}[{i}]" for i in range(len(a))]
        else:
            raise ImageError(f"{f.name}: shape {a.shape}; the network takes [{c}, {h}, {w}] "
                             "images (or a batch of them)")
        batches.append(a)
    return np.concatenate(batches), names


def make_device(bundle: Bundle, csim: str | None) -> Any:
    """The board's engine (PynqDevice) or, with ``csim``, a C-sim library here."""
    if csim:
        from .csim_device import CsimDevice

        return CsimDevice(csim)
    from .pynq_device import PynqDevice

    return PynqDevice(bundle.bitstream(), bundle.ports)


def main(argv: Sequence[str] | None = None, bundle_dir: str | Path | None = None) -> int:
    """Classify ``--images``; print JSON (``--json``) or one line per image. Exit 0 on success,
    1 on a mismatch against ``--expected``, 2 on an error (message on stderr)."""
    ap = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True, help="folder of .npy / .png images")
    ap.add_argument("--bundle", default=str(bundle_dir or "."), help="bundle directory")
    ap.add_argument("--labels", help=".npy of int labels, one per image: report accuracy")
    ap.add_argument("--expected", help=".npy of expected int logits [N, classes]: compare")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per frame")
    ap.add_argument("--csim", help="C-sim library (.so) instead of the board: testing on a PC")
    args = ap.parse_args(argv)
    try:
        bundle = Bundle.load(args.bundle)
        images, names = load_images(args.images, bundle.input_shape)
        labels = np.load(args.labels) if args.labels else None
        expected = np.load(args.expected) if args.expected else None
        for what, arr in (("--labels", labels), ("--expected", expected)):
            if arr is not None and len(arr) != len(images):
                raise ImageError(f"{what} has {len(arr)} entries for {len(images)} images")
        acc = Accelerator(bundle, make_device(bundle, args.csim), args.timeout)
        try:
            logits = acc.infer(images)
        finally:
            acc.close()
    except (BundleError, DeviceError, InputError, ImageError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pred = acc.dequantize(logits).argmax(axis=1)
    classes = bundle.classes
    result = {
        "bundle": str(args.bundle), "images": len(images), "model": bundle.meta.get("model"),
        "predictions": [{"image": n, "label": int(k), "class": classes[int(k)]}
                        for n, k in zip(names, pred)],
        "timing": acc.timing_summary(), "load_s": acc.load_seconds,
    }
    bad = 0
    if labels is not None:
        result["accuracy"] = float(np.mean(pred == labels))
    if expected is not None:
        bad = int(np.any(logits != expected, axis=1).sum())
        result["mismatches"] = bad
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for p in result["predictions"]:
            print(f"{p['image']}: {p['class']}")
        t = result["timing"]
        print(f"{len(images)} images, {t['images_per_s']:.2f} images/s (per frame: host "
              f"{1e3 * t['host_s']:.2f} ms, transfer {1e3 * t['transfer_s']:.2f} ms, engine "
              f"{1e3 * t['engine_s']:.2f} ms)"
              + (f"; accuracy {100 * result['accuracy']:.2f} %" if labels is not None else "")
              + (f"; {bad} mismatches against --expected" if expected is not None else ""))
    return 1 if bad else 0
