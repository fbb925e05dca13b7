"""A deterministic synthetic image data set for tests and distributed-training smoke runs."""

import torch
from torch import Tensor
from torch.nn import functional as F

SYNTHETIC_MEAN = 0.5
SYNTHETIC_STD = 0.2  # prototype/2 + uniform noise/2: std of two U(0, 127.5) terms ~ 0.204


def synthetic_images(
    num_samples: int,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """uint8 images [N, C, H, W] and int64 labels [N]; same arguments give the same tensors.

    Each class has a fixed smooth prototype (a 4x4 random pattern upsampled; independent of
    ``seed``) and each image is its class prototype plus seeded noise, so the task is learnable.
    """
    channels, height, width = image_shape
    proto_gen = torch.Generator().manual_seed(1234)
    coarse = torch.rand(num_classes, channels, 4, 4, generator=proto_gen)
    prototypes = F.interpolate(coarse, size=(height, width), mode="nearest")
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (num_samples,), generator=gen)
    noise = torch.rand(num_samples, channels, height, width, generator=gen)
    images = (prototypes[labels] + noise) * 127.5
    return images.round().to(torch.uint8), labels
