"""Fold a BatchNorm2d into the convolution before it (exact in float)."""

import torch
from torch import nn


@torch.no_grad()
def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv computing bn(conv(x)) with BN's running statistics (eval-mode semantics)."""
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
    ).to(conv.weight.device, conv.weight.dtype)
    inv_std = torch.rsqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.affine else torch.ones_like(inv_std)
    beta = bn.bias if bn.affine else torch.zeros_like(inv_std)
    factor = gamma * inv_std
    folded.weight.copy_(conv.weight * factor.reshape(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    folded.bias.copy_((bias - bn.running_mean) * factor + beta)
    return folded
