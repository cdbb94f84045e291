"""The auxiliary head is DARTS's at its 8x8 input, and still fits other map sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from nasbench_suite.spaces.supernet import AuxiliaryHead


def darts_formula(head: AuxiliaryHead, x: torch.Tensor) -> torch.Tensor:
    """quark0/darts AuxiliaryHeadCIFAR in training mode, written out with the head's weights:
    ReLU, AvgPool2d(5, stride=3, padding=0, count_include_pad=False), conv1x1, BN, ReLU,
    conv2x2, BN, ReLU, linear."""
    conv1, bn1, conv2, bn2 = (head.features[i] for i in (2, 3, 5, 6))
    y = F.avg_pool2d(F.relu(x), 5, 3, 0, count_include_pad=False)
    assert y.shape[-2:] == (2, 2)
    y = F.conv2d(y, conv1.weight)
    y = F.relu(F.batch_norm(y, None, None, bn1.weight, bn1.bias, True, 0.0, bn1.eps))
    y = F.conv2d(y, conv2.weight)
    y = F.relu(F.batch_norm(y, None, None, bn2.weight, bn2.bias, True, 0.0, bn2.eps))
    return F.linear(y.flatten(1), head.classifier.weight, head.classifier.bias)


def test_head_on_8x8_is_darts_formula() -> None:
    torch.manual_seed(0)
    head = AuxiliaryHead(16, 10).train()
    with torch.no_grad():  # non-trivial BN affine parameters
        for bn in (head.features[3], head.features[6]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(4, 16, 8, 8)
    want = darts_formula(head, x.clone())
    got = head(x.clone())  # the head's first ReLU is in place, as DARTS's
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("size", [1, 2, 4, 7, 16])
def test_head_fits_other_sizes(size: int) -> None:
    """Where the 5x5/3 window does not give 2x2, the adaptive fallback does."""
    head = AuxiliaryHead(8, 10).train()
    out = head(torch.randn(3, 8, size, size))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
