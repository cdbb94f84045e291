"""Depthwise convolution entry point used by the candidate ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                   dilation: int) -> torch.Tensor:
    """Depthwise 2-D convolution of ``x`` (N, C, H, W) with ``weight`` (C, 1, k, k)."""
    return F.conv2d(x, weight, None, stride, padding, dilation, x.shape[1])
