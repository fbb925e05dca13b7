"""``Accelerator``: the board driver. Loads a bundle's DDR image once, then classifies frames.

Per frame the host quantizes the image to the signed 8-bit input (``host_io``), writes it into
the image (two 5-bit planes, or the raw bytes when the engine unrolls the first conv on chip),
starts the engine, waits for ap_done and reads the int32 logits.
In a batch the host prepares frame i+1 and decodes frame i-1 while the engine runs frame i.
Numpy only, Python 3.8 syntax: copied into the deploy bundle.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import host_io
from .bundle import Bundle, BundleError
from .device import Device, kernel_args, register_map


class InputError(ValueError):
    """Images of the wrong shape, dtype or range for the bundle's network."""


class DesignMismatch(BundleError):
    """The bundle was laid out for another kernel than the device runs."""


class Accelerator:
    """The network of a bundle on a device: ``infer`` (int logits), ``classify`` (labels)."""

    def __init__(self, bundle: Bundle, device: Device, timeout: float = 60.0) -> None:
        meta = bundle.meta
        if device.design_id is not None and device.design_id != bundle.design_id:
            raise DesignMismatch(
                f"the bundle was deployed for kernel {bundle.design_id[:12]} (project "
                f"{meta.get('source', {}).get('project', '?')}), the device runs kernel "
                f"{device.design_id[:12]}: deploy against the HLS project the device's "
                "bitstream / C-sim library was built from")
        ports = getattr(device, "ports", bundle.ports)
        if ports != bundle.ports:
            raise DesignMismatch(f"the bundle's kernel has {bundle.ports} AXI ports, the device "
                                 f"{ports}: deploy against the device's own HLS project")
        self.bundle, self.device, self.timeout = bundle, device, float(timeout)
        lay = meta["layout"]
        self.layout = lay
        self.g, self.axi_bits = int(lay["g"]), int(lay["axi_bits"])
        self.act_bits, self.tm = int(meta["act_bits"]), int(meta["engine"]["Tm"])
        self.planes = [int(r["addr"]) for r in lay["input_planes"]]
        self.im2col = lay.get("input_im2col")
        self.raw = lay.get("input_raw")  # padding of the raw input (on-chip im2col)
        inp = meta["input"]
        self.input_shape = bundle.input_shape
        self.mean, self.std = inp["mean"], inp["std"]
        self.scale = float(inp["scale"])
        out = meta["outputs"][0]
        self.out_region = lay["tensors"][out["name"]]
        self.out_order = out.get("order")
        self.out_scale = np.asarray(out["scale"], np.float64)
        bb = self.axi_bits // 8
        self.out_span = (int(self.out_region["addr"]) * bb, int(self.out_region["beats"]) * bb)
        t0 = time.perf_counter()
        self.buf = device.allocate(bundle.ddr.size)
        device.write(self.buf, 0, bundle.ddr)
        self.load_seconds = time.perf_counter() - t0
        addr = int(getattr(self.buf, "physical_address", None) or self.buf.device_address)
        regs = register_map(kernel_args(bundle.ports))
        for p in range(bundle.ports):
            device.write_reg(regs[f"mem{p}"], addr & 0xFFFFFFFF)
            device.write_reg(regs[f"mem{p}"] + 4, addr >> 32)
        device.write_reg(regs["queue"], int(lay["queue"]))
        device.write_reg(regs["n_layers"], int(lay["n_layers"]))
        self.timings = []  # type: list[dict[str, float]]
        self.batch_seconds = 0.0

    # ------------------------------------------------------------ host pre / post
    def check_images(self, images: Any) -> np.ndarray:
        """uint8 images as [N, C, H, W]; [N, H, W] is taken for one-channel networks."""
        x = np.asarray(images)
        if x.dtype != np.uint8:
            raise InputError(f"images must be uint8 pixel values 0..255, got dtype {x.dtype}; "
                             "pass raw images (or signed 8-bit frames to infer_frames)")
        c, h, w = self.input_shape
        if x.ndim == 3 and c == 1:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != (c, h, w):
            raise InputError(f"images of shape {x.shape}; the network takes a batch "
                             f"[N, {c}, {h}, {w}]" + (f" (or [N, {h}, {w}])" if c == 1 else ""))
        return x

    def quantize(self, images: Any) -> np.ndarray:
        """uint8 images -> the network's signed 8-bit input frames (int64 [N, C, H, W])."""
        return host_io.quantize_images(self.check_images(images), self.mean, self.std,
                                       self.scale)

    def _pack(self, frame: np.ndarray) -> list[tuple[int, np.ndarray]]:
        return host_io.input_writes(frame, self.planes, self.g, self.axi_bits, self.act_bits,
                                    self.im2col, self.raw)

    def _decode(self, raw: np.ndarray) -> np.ndarray:
        y = host_io.decode_region(raw, self.out_region, self.g, self.axi_bits, self.act_bits,
                                  self.tm)
        return host_io.restore_order(y, self.out_order)

    # ------------------------------------------------------------ runs
    def infer(self, images: Any) -> np.ndarray:
        """int64 logits [N, classes] of uint8 images [N, C, H, W] (host quantizes)."""
        x = self.check_images(images)
        return self._run([x[i:i + 1] for i in range(len(x))], quantized=False)

    def infer_frames(self, frames: Any) -> np.ndarray:
        """int64 logits of already quantized signed 8-bit frames [N, C, H, W]."""
        f = np.asarray(frames)
        if not np.issubdtype(f.dtype, np.integer):
            raise InputError(f"frames must be integers -128..127, got dtype {f.dtype}")
        if f.ndim != 4 or f.shape[1:] != self.input_shape:
            raise InputError(f"frames of shape {f.shape}; the network takes "
                             f"[N, {', '.join(str(s) for s in self.input_shape)}]")
        if f.size and (int(f.min()) < -128 or int(f.max()) > 127):
            raise InputError(f"frames span {f.min()}..{f.max()}; the input is signed 8-bit")
        return self._run([f[i] for i in range(len(f))], quantized=True)

    def dequantize(self, logits: np.ndarray) -> np.ndarray:
        """Real-valued (float64) logits: int logits times each class's scale."""
        return np.asarray(logits, np.int64) * self.out_scale

    def classify(self, images: Any) -> np.ndarray:
        """Labels [N]: argmax of the dequantized logits (first maximum on ties)."""
        return self.dequantize(self.infer(images)).argmax(axis=1)

    def _run(self, items: list[np.ndarray], quantized: bool) -> np.ndarray:
        """Runs frames back to back: the host prepares frame i+1 and decodes frame i-1 while
        the engine runs frame i; records per-frame timing in ``self.timings``."""
        n = len(items)
        dev, buf = self.device, self.buf
        out = []  # type: list[np.ndarray]
        timings = [{"host_s": 0.0, "transfer_s": 0.0, "engine_s": 0.0} for _ in range(n)]

        def prepare(i: int) -> list[tuple[int, np.ndarray]]:
            t0 = time.perf_counter()
            frame = items[i] if quantized else host_io.quantize_images(
                items[i], self.mean, self.std, self.scale)[0]
            writes = self._pack(frame)
            timings[i]["host_s"] += time.perf_counter() - t0
            return writes

        def finish(i: int, raw: np.ndarray) -> None:
            t0 = time.perf_counter()
            out.append(self._decode(raw))
            timings[i]["host_s"] += time.perf_counter() - t0

        t_batch = time.perf_counter()
        writes = prepare(0) if n else []
        pending = None  # type: tuple[int, np.ndarray] | None
        for i in range(n):
            t0 = time.perf_counter()
            for off, raw in writes:
                dev.write(buf, off, raw)
            t1 = time.perf_counter()
            timings[i]["transfer_s"] += t1 - t0
            dev.start()
            if i + 1 < n:
                writes = prepare(i + 1)  # overlapped with the engine's run of frame i
            if pending is not None:
                finish(*pending)
                pending = None
            dev.wait(self.timeout)
            t2 = time.perf_counter()
            timings[i]["engine_s"] = t2 - t1
            raw = dev.read(buf, *self.out_span)
            timings[i]["transfer_s"] += time.perf_counter() - t2
            pending = (i, raw)
        if pending is not None:
            finish(*pending)
        self.batch_seconds = time.perf_counter() - t_batch
        self.timings = timings
        if not out:
            return np.zeros((0, int(self.bundle.meta["outputs"][0]["shape"][0])), np.int64)
        return np.stack(out)

    def timing_summary(self) -> dict[str, float]:
        """Totals of the last batch: per-frame means of host, transfer and engine seconds
        (engine: start to ap_done as the host saw it) and images per second of the batch."""
        n = max(len(self.timings), 1)
        s = {k: sum(t[k] for t in self.timings) / n for k in ("host_s", "transfer_s", "engine_s")}
        s["frames"] = len(self.timings)
        s["images_per_s"] = len(self.timings) / self.batch_seconds if self.timings else 0.0
        return s

    def close(self) -> None:
        """Release the device."""
        self.device.close()
