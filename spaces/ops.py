"""Candidate operations of the DARTS family of cell spaces.

The definitions follow the official DARTS code (quark0/darts, ``operations.py``) so that
parameter and FLOP counts match the published cells. Two flags cover the difference between
a search supernet and a network trained from scratch:

* ``affine``: DARTS searches with ``BatchNorm2d(affine=False)`` and evaluates with affine BN.
* ``pool_bn``: the DARTS search cell follows each pooling op with a non-affine BN so that the
  pools' outputs are on the scale of the convolutions'; the discrete network has no such BN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from nasbench_suite.spaces.depthwise import depthwise_conv
from torch import nn

ZERO = "none"


class ReLUConvBN(nn.Module):
    """ReLU -> conv -> BN: the cell's input pre-processing (1x1) in DARTS."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DepthwiseConv(nn.Conv2d):
    """A depthwise convolution whose backward may use the fast forward-only formulation.

    oneDNN's depthwise backward is 5-25x slower than its forward on the project's CPUs;
    :func:`nasbench_suite.spaces.depthwise.depthwise_conv` computes the same gradients with
    forward convolutions where that is faster. The module stays an ``nn.Conv2d`` so that
    state dicts, FLOP counting and parameter counts are those of the reference code.
    """

    def __init__(self, channels: int, kernel: int, stride: int, padding: int,
                 dilation: int = 1) -> None:
        super().__init__(channels, channels, kernel, stride=stride, padding=padding,
                         dilation=dilation, groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv(x, self.weight, self.stride[0], self.padding[0], self.dilation[0])


class DilConv(nn.Module):
    """ReLU -> depthwise (dilated) conv -> pointwise conv -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 dilation: int, affine: bool) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            DepthwiseConv(c_in, kernel, stride, padding, dilation),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked DilConv blocks without dilation, as DARTS's separable convolution."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            DepthwiseConv(c_in, kernel, stride, padding),
            nn.Conv2d(c_in, c_in, 1, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            DepthwiseConv(c_in, kernel, 1, padding),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset 1x1 stride-2 convs (DARTS's skip at stride 2)."""

    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # Pad odd sizes so that both branches have the same output size.
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            x = nn.functional.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class Pool(nn.Sequential):
    """Max or average pooling, optionally followed by the search cell's non-affine BN."""

    def __init__(self, kind: str, channels: int, stride: int, bn: bool) -> None:
        pool: nn.Module
        if kind == "max":
            pool = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        layers = [pool] + ([nn.BatchNorm2d(channels, affine=False)] if bn else [])
        super().__init__(*layers)


OpFactory = Callable[[int, int, bool, bool], nn.Module]

#: name -> factory(channels, stride, affine, pool_bn). ``none`` has no module: the supernet
#: never computes it, and a derived cell never contains it.
OPS: dict[str, OpFactory] = {
    "max_pool_3x3": lambda c, s, affine, pool_bn: Pool("max", c, s, pool_bn),
    "avg_pool_3x3": lambda c, s, affine, pool_bn: Pool("avg", c, s, pool_bn),
    "skip_connect": lambda c, s, affine, pool_bn: (
        nn.Identity() if s == 1 else FactorizedReduce(c, c, affine)),
    "sep_conv_3x3": lambda c, s, affine, pool_bn: SepConv(c, c, 3, s, 1, affine),
    "sep_conv_5x5": lambda c, s, affine, pool_bn: SepConv(c, c, 5, s, 2, affine),
    "sep_conv_7x7": lambda c, s, affine, pool_bn: SepConv(c, c, 7, s, 3, affine),
    "dil_conv_3x3": lambda c, s, affine, pool_bn: DilConv(c, c, 3, s, 2, 2, affine),
    "dil_conv_5x5": lambda c, s, affine, pool_bn: DilConv(c, c, 5, s, 4, 2, affine),
    "conv_1x1": lambda c, s, affine, pool_bn: ReLUConvBN(c, c, 1, s, 0, affine),
    "conv_3x3": lambda c, s, affine, pool_bn: ReLUConvBN(c, c, 3, s, 1, affine),
    # NAS-Bench-201's names for the same ReLU-conv-BN (D-X-Y/AutoDL-Projects cell_operations)
    "nor_conv_1x1": lambda c, s, affine, pool_bn: ReLUConvBN(c, c, 1, s, 0, affine),
    "nor_conv_3x3": lambda c, s, affine, pool_bn: ReLUConvBN(c, c, 3, s, 1, affine),
}

#: Ops without parameters at stride 1: the ones DARTS collapses to (RobustDARTS's failure mode).
PARAMETER_FREE = frozenset({ZERO, "max_pool_3x3", "avg_pool_3x3", "skip_connect"})


def chance_parameter_free_share(ops: tuple[str, ...]) -> float:
    """The parameter-free share a uniform random cell over ``ops`` is expected to have: the
    share of its non-zero ops that are parameter-free (3/7 with DARTS's ops, 1/2 with
    GOLD-NAS's and RobustDARTS's S2 {skip_connect, sep_conv_3x3}). A collapse means a share
    above this level: a collapse threshold below it would call chance a collapse, and one at
    it (0.5 in the relaxed space) means no more than "above chance". Exact, not
    sampled: a uniform draw treats the ops alike (one uniform op per edge, or each op of an
    edge kept with the same probability), so each op is expected to hold 1/k of the kept
    ops whatever the cell's topology."""
    kept = [o for o in ops if o != ZERO]
    return sum(o in PARAMETER_FREE for o in kept) / len(kept)


DARTS_OPS: tuple[str, ...] = (
    ZERO, "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
GOLD_OPS: tuple[str, ...] = ("skip_connect", "sep_conv_3x3")


def check_ops(ops: tuple[str, ...]) -> None:
    """Reject unknown or repeated op names with one clear message."""
    unknown = [o for o in ops if o != ZERO and o not in OPS]
    if unknown:
        raise ValueError(f"unknown op(s) {unknown}; known: {sorted([ZERO, *OPS])}")
    if len(set(ops)) != len(ops):
        raise ValueError(f"op list has repeats: {list(ops)}")
    if not [o for o in ops if o != ZERO]:
        raise ValueError("op list needs at least one op other than 'none'")


class SkipBN(nn.BatchNorm2d):
    """skip_connect at stride 1 as GOLD-NAS's search network builds it: a non-affine BN.

    (sunsmarterjie/GOLD_NAS, cifar_search/operations.py, whose ``Identity`` holds a
    ``BatchNorm2d(C, affine=False)``.) It puts the skip's output on the scale of the
    convolutions' outputs, as the pools' BN does in DARTS. No parameters, no FLOPs in
    FlopCounterMode: the cost tables do not change.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=False)


def create_op(name: str, channels: int, stride: int, affine: bool, pool_bn: bool,
              skip_bn: bool = False) -> nn.Module:
    """Build candidate op ``name``; ``none`` is never built (it is never computed).

    ``skip_bn``: skip_connect at stride 1 becomes :class:`SkipBN` instead of an identity
    (GOLD-NAS's search flavour); at stride 2 it stays a FactorizedReduce either way.
    """
    if name == ZERO:
        raise ValueError("the zero op has no module: it is skipped, not computed")
    if skip_bn and name == "skip_connect" and stride == 1:
        return SkipBN(channels)
    return OPS[name](channels, stride, affine, pool_bn)
