"""The board driver end to end over the C-simulation: the driver's bytes and registers reach
the kernel's code, and its int logits equal the integer reference's."""

import numpy as np
import pytest

from filmqnn.pynq.bundle import Bundle
from filmqnn.pynq.csim_device import CsimDevice
from filmqnn.pynq.device import AP_CTRL, AP_DONE, DeviceError, DeviceTimeout
from filmqnn.pynq.driver import Accelerator, DesignMismatch, InputError

#: Frames per model (C-sim takes 0.5 to 3 s a frame here).
FRAMES = {"resnet18_small": 4, "resnet50_small": 2, "mobilenet_v2_small": 3}


@pytest.fixture(scope="module")
def r18(deployed):
    """An Accelerator on resnet18_small's bundle and C-sim, with its graph."""
    graph, _, prj, bundle = deployed("resnet18_small")
    acc = Accelerator(Bundle.load(bundle), CsimDevice.from_project(prj))
    return acc, graph


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_int_logits_equal_the_reference(deployed, fmnist, reference_logits, name):
    graph, _, prj, bundle = deployed(name)
    images, x, labels = fmnist
    n = FRAMES[name]
    acc = Accelerator(Bundle.load(bundle), CsimDevice.from_project(prj))
    got = acc.infer(images[:n])
    want = reference_logits(graph, x[:n])
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert len(acc.timings) == n
    assert all(t["engine_s"] > 0 and t["host_s"] > 0 for t in acc.timings)
    s = acc.timing_summary()
    assert s["frames"] == n and s["images_per_s"] > 0


def test_classify_and_frames_api(r18, fmnist, reference_logits):
    acc, graph = r18
    images, x, _ = fmnist
    want = reference_logits(graph, x[4:6])
    frames = acc.quantize(images[4:6])
    assert np.array_equal(acc.infer_frames(frames), want)
    # [N, H, W] is accepted for a one-channel network
    assert np.array_equal(acc.infer(images[4:6, 0]), want)
    scale = np.asarray(graph.tensors[graph.outputs[0]].scale, np.float64)
    assert np.array_equal(acc.classify(images[4:6]), (want * scale).argmax(1))


def test_host_quantization_equals_torch_on_the_test_set():
    """The driver's numpy quantization = the training pipeline's torch ops, on 10k images."""
    import torch

    from filmqnn.data import load_dataset
    from filmqnn.data.registry import FASHION_MNIST_MEAN, FASHION_MNIST_STD
    from filmqnn.lower.requant import quantize_input
    from filmqnn.pynq.host_io import quantize_images

    ds = load_dataset("fashion-mnist", "test").dataset
    x, _ = ds.batch(torch.arange(len(ds)))
    for scale in (0.0241, 1 / 37.0):
        want = quantize_input(x, scale).numpy()
        got = quantize_images(ds.images.numpy(), FASHION_MNIST_MEAN, FASHION_MNIST_STD, scale)
        assert np.array_equal(got, want)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 1, 28, 28), np.float32), "must be uint8"),
    (np.zeros((2, 1, 28, 28), np.int8), "must be uint8"),
    (np.zeros((1, 28, 28), np.uint8)[0], r"shape \(28, 28\)"),
    (np.zeros((2, 3, 28, 28), np.uint8), r"takes a batch \[N, 1, 28, 28\]"),
    (np.zeros((2, 1, 32, 32), np.uint8), r"takes a batch \[N, 1, 28, 28\]"),
])
def test_bad_images_are_refused_before_the_engine_runs(r18, bad, match):
    acc, _ = r18
    before = acc.device.read(acc.buf, 0, acc.buf.size).copy()
    with pytest.raises(InputError, match=match):
        acc.infer(bad)
    assert np.array_equal(acc.device.read(acc.buf, 0, acc.buf.size), before)


def test_out_of_range_frames_are_refused(r18):
    acc, _ = r18
    with pytest.raises(InputError, match="signed 8-bit"):
        acc.infer_frames(np.full((1, 1, 28, 28), 128))
    with pytest.raises(InputError, match="integers"):
        acc.infer_frames(np.zeros((1, 1, 28, 28), np.float64))


def test_bundle_of_another_design_is_refused(deployed):
    _, _, _, bundle18 = deployed("resnet18_small")
    _, _, prj_mv2, _ = deployed("mobilenet_v2_small")
    with pytest.raises(DesignMismatch, match="deploy against the HLS project"):
        Accelerator(Bundle.load(bundle18), CsimDevice.from_project(prj_mv2))


class _Hangs(CsimDevice):
    """A device whose engine never reports ap_done."""

    def start(self) -> None:
        pass


def test_device_that_never_finishes_times_out(deployed, fmnist):
    _, _, prj, bundle = deployed("resnet18_small")
    dev = _Hangs(CsimDevice.from_project(prj).lib._name)
    acc = Accelerator(Bundle.load(bundle), dev, timeout=0.05)
    with pytest.raises(DeviceTimeout, match=r"did not finish within 0.05 s"):
        acc.infer(fmnist[0][:1])
    assert acc.timings == []  # no partial batch recorded


def test_wrong_register_values_reach_the_csim(r18):
    """CsimDevice decodes the registers the driver wrote: a bad port address is an error."""
    acc, _ = r18
    dev = acc.device
    mem1 = dev.regmap["mem1"]
    good = dev.read_reg(mem1)
    dev.write_reg(mem1, good + 4)  # not beat aligned
    with pytest.raises(DeviceError, match="mem1.s address .* not 8-byte aligned"):
        dev.start()
    dev.write_reg(mem1, 0x100)  # outside every buffer
    with pytest.raises(DeviceError, match="outside mem0's buffer"):
        dev.start()
    dev.write_reg(mem1, good)
    dev.start()
    dev.wait(60)
    assert not dev.read_reg(AP_CTRL) & AP_DONE  # ap_done clears on read
