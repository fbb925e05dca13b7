"""BatchNorm folding is exact (to float rounding) for conv, depthwise conv and no-bias convs."""

import pytest
import torch
from torch import nn

from filmqnn.quant.bn_fold import fold_bn_into_conv


@pytest.mark.parametrize("groups,bias", [(1, False), (1, True), (6, False)])
def test_folded_conv_equals_conv_then_bn(groups, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 6, 3, padding=1, groups=groups, bias=bias)
    bn = nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.1, 3)
        bn.weight.uniform_(-2, 2)
        bn.bias.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(2, 6, 7, 7, dtype=torch.float64)
    ref = bn.double()(conv.double()(x))
    folded = fold_bn_into_conv(conv, bn)(x)
    assert torch.allclose(folded, ref, atol=1e-12)
