"""A very small plain CNN for fast tests of the quantization and hardware stages."""

import torch
from torch import Tensor, nn


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TinyCNN(nn.Module):
    """conv-bn-relu x3 (8, 16, 32 channels), 2x2 max-pool, global average pool, linear."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, 8),
            _conv_bn_relu(8, 16),
            _conv_bn_relu(16, 32),
            nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of shape [N, num_classes]."""
        x = self.avgpool(self.features(x))
        return self.fc(torch.flatten(x, 1))
