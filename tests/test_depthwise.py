"""The fast depthwise convolution gives F.conv2d's values and gradients.

Every path of :func:`spaces.depthwise.depthwise_conv` is checked against plain autograd of
``F.conv2d(..., groups=C)``: the forward-conv backward (:class:`DepthwiseConvFn`, forced for
every kernel), the per-kernel choice, kernel cropping on small maps and the 1x1 shortcut.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from nasbench_suite.spaces.depthwise import DepthwiseConvFn, cropped_taps, depthwise_conv
from torch.utils.flop_counter import FlopCounterMode

CASES = list(itertools.product((1, 2), (1, 2), (3, 5, 7), (7, 8)))


def reference(x: torch.Tensor, w: torch.Tensor, stride: int, padding: int, dilation: int,
              grad_out: torch.Tensor | None = None):
    x = x.detach().clone().requires_grad_(True)
    w = w.detach().clone().requires_grad_(True)
    y = F.conv2d(x, w, None, stride, padding, dilation, w.shape[0])
    g = torch.randn_like(y) if grad_out is None else grad_out
    gx, gw = torch.autograd.grad(y, (x, w), g)
    return y.detach(), gx, gw, g


def check(fn, x, w, stride, padding, dilation, atol=1e-5):
    y_ref, gx_ref, gw_ref, g = reference(x, w, stride, padding, dilation)
    xr = x.detach().clone().requires_grad_(True)
    wr = w.detach().clone().requires_grad_(True)
    y = fn(xr, wr, stride, padding, dilation)
    assert y.shape == y_ref.shape
    gx, gw = torch.autograd.grad(y, (xr, wr), g)
    torch.testing.assert_close(y, y_ref, atol=atol, rtol=1e-5)
    torch.testing.assert_close(gx, gx_ref, atol=atol, rtol=1e-5)
    torch.testing.assert_close(gw, gw_ref, atol=atol, rtol=1e-5)


@pytest.mark.parametrize(("stride", "dilation", "kernel", "size"), CASES)
@pytest.mark.parametrize("by_conv", [(True, True), (True, False), (False, True)])
def test_function_matches_conv2d(stride: int, dilation: int, kernel: int, size: int,
                                 by_conv: tuple[bool, bool]) -> None:
    """The forward-conv backward itself, whatever the per-kernel choice would pick."""
    x = torch.randn(3, 4, size, size + 1)  # odd and even, non-square
    w = torch.randn(4, 1, kernel, kernel)
    padding = dilation * (kernel - 1) // 2

    def fn(x, w, s, p, d):
        return DepthwiseConvFn.apply(x, w, s, p, d, by_conv)

    check(fn, x, w, stride, padding, dilation)


@pytest.mark.parametrize(("stride", "dilation", "kernel", "size"), CASES)
def test_function_other_paddings(stride: int, dilation: int, kernel: int, size: int) -> None:
    x = torch.randn(2, 3, size, size)
    w = torch.randn(3, 1, kernel, kernel)
    for padding in (0, 1, dilation * (kernel - 1)):
        if size + 2 * padding < dilation * (kernel - 1) + 1:
            continue  # the kernel does not fit: F.conv2d refuses too
        check(DepthwiseConvFn.apply, x, w, stride, padding, dilation)


@pytest.mark.parametrize(("stride", "dilation", "kernel"),
                         list(itertools.product((1, 2), (1, 2), (3, 5, 7))))
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 9])
def test_entry_point_matches_conv2d(stride: int, dilation: int, kernel: int, size: int) -> None:
    """The public entry: per-kernel choice, cropping on small maps, the 1x1 shortcut."""
    x = torch.randn(4, 6, size, size, dtype=torch.float64)
    w = torch.randn(6, 1, kernel, kernel, dtype=torch.float64)
    check(depthwise_conv, x, w, stride, dilation * (kernel - 1) // 2, dilation, atol=1e-10)


@pytest.mark.parametrize(("stride", "dilation", "kernel"),
                         list(itertools.product((1, 2), (1, 2), (3, 5))))
def test_channels_last(stride: int, dilation: int, kernel: int) -> None:
    x = torch.randn(5, 8, 9, 9).contiguous(memory_format=torch.channels_last)
    w = torch.randn(8, 1, kernel, kernel)
    check(depthwise_conv, x, w, stride, dilation * (kernel - 1) // 2, dilation)
    check(DepthwiseConvFn.apply, x, w, stride, dilation * (kernel - 1) // 2, dilation)


def test_input_grad_only_skips_nothing_it_needs() -> None:
    """Asking for the input gradient alone (the architecture phase) gives the same value."""
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    w = torch.randn(4, 1, 5, 5, requires_grad=True)
    y = DepthwiseConvFn.apply(x, w, 1, 4, 2)
    (gx,) = torch.autograd.grad(y.square().sum(), [x])
    _, gx_ref, _, _ = reference(x, w, 1, 4, 2, grad_out=2 * y.detach())
    torch.testing.assert_close(gx, gx_ref)
    assert w.grad is None


def test_cropping() -> None:
    # dil_conv_5x5 (padding 4, dilation 2) on a 2x2 map: only the centre tap reaches the image.
    assert cropped_taps(2, 2, 5, 1, 4, 2) == 2
    # on a 4x4 map the outer ring (offsets +-4) never does.
    assert cropped_taps(4, 4, 5, 1, 4, 2) == 1
    assert cropped_taps(8, 8, 5, 1, 4, 2) == 0
    assert cropped_taps(2, 2, 3, 1, 1, 1) == 0
    assert cropped_taps(2, 2, 5, 1, 2, 1) == 1


def test_flop_counter_sees_the_full_kernel() -> None:
    """The cost model must count the DARTS op, not the cropped one."""
    x = torch.randn(1, 8, 2, 2)
    w = torch.randn(8, 1, 5, 5)
    with FlopCounterMode(display=False) as counter:
        depthwise_conv(x, w, 1, 4, 2)
    assert counter.get_total_flops() == 2 * 8 * 2 * 2 * 25
