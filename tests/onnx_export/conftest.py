"""Fixtures of the ONNX export tests: the lowering tests' calibrated models, reordered for
their tiling, and Fashion-MNIST test images quantized as the host does."""

import numpy as np
import pytest
import torch

from filmqnn.lower.reordering import reorder
from filmqnn.lower.requant import quantize_input

MODELS = ("resnet18_small", "resnet50_small", "mobilenet_v2_small", "user_cnn")


@pytest.fixture(autouse=True)
def _single_thread(lower_models):
    with lower_models.one_thread():
        yield


@pytest.fixture(scope="session")
def graph_of(lower_models):
    """`graph_of(name)`: the model's integer graph, reordered for the lowering tests' tiling
    (cached; tests must not modify it)."""
    cache = {}

    def make(name: str):
        if name not in cache:
            cache[name] = reorder(lower_models.build_lowered(name), lower_models.TILING)
        return cache[name]

    return make


@pytest.fixture(scope="session")
def fmnist_images() -> torch.Tensor:
    """64 normalised Fashion-MNIST test images [64, 1, 28, 28]."""
    from filmqnn.data import load_dataset

    ds = load_dataset("fashion-mnist", "test", limit=64).dataset
    return torch.stack([ds[i][0] for i in range(len(ds))])


@pytest.fixture(scope="session")
def frames_for(fmnist_images):
    """`frames_for(graph)`: int8 frames [N, C, H, W]: the Fashion-MNIST images quantized at
    the graph's input scale, 8 random int8 frames and the extremes (all 0, all -128, all 127)."""

    def make(graph, seed: int = 0) -> np.ndarray:
        scale = float(graph.tensors[graph.input].scale)
        q = quantize_input(fmnist_images, scale).numpy()
        rng = np.random.default_rng(seed)
        shape = q.shape[1:]
        extra = [rng.integers(-128, 128, size=(8, *shape))]
        extra += [np.full((1, *shape), v) for v in (0, -128, 127)]
        return np.concatenate([q, *extra]).astype(np.int8)

    return make
