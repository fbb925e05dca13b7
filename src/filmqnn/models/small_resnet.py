"""Torchvision ResNets rebuilt for 28x28 / 32x32 inputs (3x3 stride-1 stem, no max-pool, narrow)."""

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

SMALL_RESNET_WIDTH = 16
"""Output channels of the stem and of ``layer1`` (torchvision uses 64, so this is x0.25)."""


class SmallResNet(ResNet):
    """ResNet using torchvision's blocks, ``_make_layer`` and ``forward``; new stem and width.

    ``ResNet.__init__`` hard-codes a 7x7 stride-2 stem and 64 base channels, so this constructor
    sets the same attributes itself instead of calling it.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int,
        in_channels: int,
        width: int = SMALL_RESNET_WIDTH,
    ) -> None:
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64  # torchvision's width_per_group; BasicBlock only accepts 64
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)
        for m in self.modules():  # same initialisation as torchvision's ResNet
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def small_resnet18(num_classes: int, in_channels: int) -> SmallResNet:
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]) for small images."""
    return SmallResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)


def small_resnet50(num_classes: int, in_channels: int) -> SmallResNet:
    """ResNet-50 (Bottleneck, [3, 4, 6, 3]) for small images."""
    return SmallResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels)
