"""Deploy mode (torch) and the integer reference executor agree bit for bit, on random and real
images, through reordered and unreordered artifacts, on the float32 and the float64 path; and
deploy mode stays close to the fake-quantized model it was lowered from."""

import pytest
import torch

import filmqnn.ref.executor as executor_mod
from filmqnn.data import load_dataset
from filmqnn.data.errors import DatasetError
from filmqnn.data.fashion_mnist import FASHION_MNIST_ROOT
from filmqnn.lower.artifact import load_artifact, save_artifact
from filmqnn.lower.deploy import to_deploy
from filmqnn.lower.reordering import index_bits, mark_unreordered, reorder
from filmqnn.lower.requant import dequantize
from filmqnn.ref.executor import ReferenceExecutor

# (name, input size, channels); the 1 x 28 x 28 ones also run on Fashion-MNIST images.
SPECS = [
    ("resnet18_small", 28, 1),
    ("resnet50_small", 28, 1),
    ("mobilenet_v2_small", 28, 1),
    ("mobilenet_v2_small", 32, 3),
    ("resnet18", 32, 3),  # torchvision's 7x7 stride-2 stem and padded 3x3 max pool
    ("user_cnn", 28, 1),
]
FMNIST_SPECS = [s for s in SPECS if s[1:] == (28, 1)]
IDS = [f"{n}-{c}x{s}" for n, s, c in SPECS]
FMNIST_IDS = [f"{n}-{c}x{s}" for n, s, c in FMNIST_SPECS]
BATCH = 6


def random_images(size: int, channels: int, seed: int = 1) -> torch.Tensor:
    """Normal images, a few scaled up so the 8-bit input quantizer saturates on some pixels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, channels, size, size, generator=gen)
    x[: BATCH // 3] *= 4.0
    return x


@pytest.fixture(scope="module")
def fmnist_images() -> torch.Tensor:
    if not (FASHION_MNIST_ROOT / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION_MNIST_ROOT}")
    try:
        info = load_dataset("fashion-mnist", "test", limit=BATCH)
    except DatasetError as exc:
        pytest.skip(f"Fashion-MNIST unreadable: {exc}")
    ds = info.dataset
    x, _ = ds.batch(torch.arange(len(ds)))
    assert x.shape == (BATCH, 1, 28, 28)
    return x


def _spec_inputs(spec, fmnist: torch.Tensor | None) -> torch.Tensor:
    return fmnist if fmnist is not None else random_images(spec[1], spec[2])


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_deploy_equals_reference_on_random_images(spec, lowered):
    g = lowered(*spec)
    x = random_images(spec[1], spec[2])
    with torch.no_grad():
        d = to_deploy(g).int_logits(x)
    r = ReferenceExecutor(g).int_logits(x)
    assert d.dtype == r.dtype == torch.int64
    assert d.shape == (BATCH, 10)
    assert torch.equal(d, r)
    assert len(set(d.flatten().tolist())) > 10  # not a degenerate (constant) network


@pytest.mark.parametrize("spec", FMNIST_SPECS, ids=FMNIST_IDS)
def test_deploy_equals_reference_on_fashion_mnist(spec, lowered, fmnist_images):
    g = lowered(*spec)
    with torch.no_grad():
        d = to_deploy(g).int_logits(fmnist_images)
    assert torch.equal(d, ReferenceExecutor(g).int_logits(fmnist_images))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_reordered_and_unreordered_artifacts_equal_deploy(spec, lowered, tiling, tmp_path):
    g = lowered(*spec)
    x = random_images(spec[1], spec[2], seed=2)
    ga = reorder(g, tiling)
    # every inner layer has mixed precisions, so reordering must store some indices
    assert index_bits(ga) > 0
    assert any(not (n.params["bits"] == g.nodes[i].params["bits"]).all()
               for i, n in enumerate(ga.nodes) if "bits" in n.params)
    save_artifact(ga, tmp_path / "a")
    save_artifact(mark_unreordered(g, tiling), tmp_path / "u")
    ra, ru = load_artifact(tmp_path / "a"), load_artifact(tmp_path / "u")
    assert ra.reordered and not ru.reordered
    with torch.no_grad():
        dm = to_deploy(g)
        d = dm.int_logits(x)
        d_real = dm(x)
    ea, eu = ReferenceExecutor(ra), ReferenceExecutor(ru)
    a, u = ea.int_logits(x), eu.int_logits(x)
    assert torch.equal(a, u)
    assert torch.equal(a, d)
    # dequantized logits: int logits times each class's scale, identical in both
    assert torch.equal(ea.logits(x), d_real)
    assert torch.equal(d_real, dequantize(d, g.tensors[g.outputs[0]].scale))


@pytest.mark.parametrize("spec", FMNIST_SPECS, ids=FMNIST_IDS)
def test_reordered_artifact_on_fashion_mnist(spec, lowered, tiling, tmp_path, fmnist_images):
    g = lowered(*spec)
    save_artifact(reorder(g, tiling), tmp_path / "a")
    a = ReferenceExecutor(load_artifact(tmp_path / "a")).int_logits(fmnist_images)
    with torch.no_grad():
        assert torch.equal(a, to_deploy(g).int_logits(fmnist_images))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_float64_path_gives_the_same_integers(spec, lowered, tiling, monkeypatch):
    g = reorder(lowered(*spec), tiling)
    x = random_images(spec[1], spec[2], seed=3)
    ex = ReferenceExecutor(g)
    if executor_mod._ieee_fp32():
        # the fast path really runs some convolutions in float32 here
        assert any(getattr(op, "dtype", None) == torch.float32 for op in ex.ops)
    fast = ex.int_logits(x)
    calls = []
    real_conv = torch.nn.functional.conv2d

    def spy(inp, w, *args):
        calls.append(inp.dtype)
        return real_conv(inp, w, *args)

    monkeypatch.setattr(executor_mod, "_ieee_fp32", lambda: False)
    monkeypatch.setattr(executor_mod.F, "conv2d", spy)
    slow = ex.int_logits(x)
    assert calls and set(calls) == {torch.float64}
    assert torch.equal(fast, slow)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_deploy_stays_close_to_fake_quant(spec, quantized, lowered, fmnist_images_or_none):
    q, g = quantized(*spec), lowered(*spec)
    x = _spec_inputs(spec, fmnist_images_or_none if spec[1:] == (28, 1) else None)
    with torch.no_grad():
        fq = q.eval()(x).double()
        dep = to_deploy(g)(x)
    agree = (fq.argmax(1) == dep.argmax(1)).float().mean().item()
    assert agree >= 0.66, f"argmax agreement {agree:.2f}"
    spread = (fq.max(1).values - fq.min(1).values).mean()
    assert (fq - dep).abs().mean() < 0.25 * spread


@pytest.fixture(scope="module")
def fmnist_images_or_none(request):
    try:
        return request.getfixturevalue("fmnist_images")
    except pytest.skip.Exception:
        return None
