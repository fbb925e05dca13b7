"""Model names known to ``build_model`` and the input sizes each is meant for."""

IMAGENET_MODELS = ("resnet18", "resnet50", "mobilenet_v2")
SMALL_MODELS = ("resnet18_small", "resnet50_small", "mobilenet_v2_small")
MODEL_NAMES = (*IMAGENET_MODELS, *SMALL_MODELS, "tiny_cnn")

_TOTAL_STRIDE = {
    "tiny_cnn": 2,
    **dict.fromkeys(IMAGENET_MODELS, 32),
    **dict.fromkeys(SMALL_MODELS, 8),
}


def default_input_size(name: str) -> int:
    """Side of the square input a model is designed for: 224 for ImageNet shapes, else 32."""
    return 224 if name in IMAGENET_MODELS else 32


def min_input_size(name: str) -> int:
    """Smallest input side that still leaves a feature map of at least 1x1 before pooling."""
    return _TOTAL_STRIDE[name]
