"""One first-order DARTS search step: the suite's supernet against a naive mixed op.

The naive network is the DARTS search network as its paper describes it, written with plain
torch modules: every op of every edge computed (the zero op as a multiplication by 0), no
mask, and the architecture phase backpropagating into every weight as well as the alphas
(a plain ``loss.backward()``). The suite's step is the real DARTS adapter on the space's
supernet (batched ops, inactive and zero ops never computed, the alpha phase asks autograd
for the alpha gradient only, the fast depthwise backward).

Sizes: each space at the mini preset's size (C=8, 5 cells, 8x8x1 digits, batch 64) and the
issue's reference size (C=8, 5 cells, 16x16x3, batch 64), where the official DARTS search
network takes about 4 s per first-order step on 2 CPU cores. Both steps are timed in the
same run (median of ``ROUNDS`` after ``WARMUP``); ``extra_info`` holds both and the speed-up
``naive_s / suite_s``. Timings are reported, never asserted.

Run with ``pytest tests/benchmarks --benchmark-only``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spaces
from methods.base import SearchContext
from methods.darts import Darts, DartsConfig
from spaces import NetShape
from tests.benchmarks.timing import median_step

WARMUP, ROUNDS = 2, 7
NODES = 4


# -- the naive DARTS search network ------------------------------------------------------------
def _relu_conv_bn(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out, affine=False))


def _sep(c: int, k: int, stride: int) -> nn.Module:
    pad = k // 2
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(c, c, k, stride, pad, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False),
        nn.ReLU(), nn.Conv2d(c, c, k, 1, pad, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False))


def _dil(c: int, k: int, stride: int) -> nn.Module:
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(c, c, k, stride, k - 1, dilation=2, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False))


class _Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class _FactorizedReduce(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.b = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.a(x), self.b(x[:, :, 1:, 1:])], 1))


def _op(name: str, c: int, stride: int) -> nn.Module:
    pools = {"max_pool_3x3": nn.MaxPool2d(3, stride, 1),
             "avg_pool_3x3": nn.AvgPool2d(3, stride, 1, count_include_pad=False)}
    if name in pools:
        return nn.Sequential(pools[name], nn.BatchNorm2d(c, affine=False))
    if name == "none":
        return _Zero(stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else _FactorizedReduce(c, c)
    kind, _, k = name.rpartition("_")
    size = int(k.split("x")[0])
    return _sep(c, size, stride) if kind == "sep_conv" else _dil(c, size, stride)


class _MixedOp(nn.Module):
    def __init__(self, ops: tuple[str, ...], c: int, stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(_op(name, c, stride) for name in ops)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return sum(wi * op(x) for wi, op in zip(w, self.ops, strict=True))  # type: ignore


class _Cell(nn.Module):
    def __init__(self, ops: tuple[str, ...], c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.pre0 = _FactorizedReduce(c_pp, c) if reduction_prev else _relu_conv_bn(c_pp, c)
        self.pre1 = _relu_conv_bn(c_p, c)
        self.reduction = reduction
        self.edges = nn.ModuleList(
            _MixedOp(ops, c, 2 if reduction and j < 2 else 1)
            for i in range(NODES) for j in range(2 + i))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        e = 0
        for _ in range(NODES):
            node = sum(self.edges[e + j](h, w[e + j]) for j, h in enumerate(states))
            e += len(states)
            states.append(node)  # type: ignore[arg-type]
        return torch.cat(states[2:], 1)


class NaiveSearchNet(nn.Module):
    """The DARTS search network; ``groups`` alpha groups: 2 shared cell types (restricted)
    or one per cell (relaxed)."""

    def __init__(self, ops: tuple[str, ...], shape: NetShape, per_cell: bool) -> None:
        super().__init__()
        c = shape.channels
        c_curr = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(shape.in_channels, c_curr, 3, padding=1,
                                            bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        self.group: list[int] = []
        reduction_prev = False
        for i in range(shape.layers):
            reduction = i in (shape.layers // 3, 2 * shape.layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(_Cell(ops, c_pp, c_p, c_curr, reduction, reduction_prev))
            self.group.append(i if per_cell else int(reduction))
            reduction_prev = reduction
            c_pp, c_p = c_p, NODES * c_curr
        self.classifier = nn.Linear(c_p, shape.num_classes)
        groups = shape.layers if per_cell else 2
        edges = sum(2 + i for i in range(NODES))
        self.alpha = nn.Parameter(1e-3 * torch.randn(groups, edges, len(ops)))

    def weights(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.alpha, -1)
        s0 = s1 = self.stem(x)
        for cell, g in zip(self.cells, self.group, strict=True):
            s0, s1 = s1, cell(s0, s1, w[g])
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


# -- the two steps -----------------------------------------------------------------------------
def _batches(shape: NetShape, batch: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    gen = torch.Generator().manual_seed(0)
    return tuple((torch.randn(batch, shape.in_channels, shape.image_size, shape.image_size,
                              generator=gen),
                  torch.randint(0, shape.num_classes, (batch,), generator=gen))
                 for _ in range(2))


def naive_step(space_name: str, shape: NetShape, batch: int) -> Callable[[], object]:
    space = spaces.create_space(space_name, shape)
    net = NaiveSearchNet(space.ops, shape, per_cell=space_name == "relaxed")
    cfg = DartsConfig()
    w_opt = torch.optim.SGD(net.weights(), lr=cfg.w_lr, momentum=cfg.w_momentum,
                            weight_decay=cfg.w_weight_decay)
    a_opt = torch.optim.Adam([net.alpha], lr=cfg.a_lr, betas=cfg.a_betas,
                             weight_decay=cfg.a_weight_decay)
    (x, y), (xv, yv) = _batches(shape, batch)

    def step() -> object:
        a_opt.zero_grad()
        F.cross_entropy(net(xv), yv).backward()  # every weight's gradient too, as in DARTS
        a_opt.step()
        w_opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.weights(), cfg.grad_clip)
        w_opt.step()
        return loss

    step.params = sum(p.numel() for p in net.weights())  # type: ignore[attr-defined]
    return step


def suite_step(space_name: str, shape: NetShape, batch: int) -> Callable[[], object]:
    space = spaces.create_space(space_name, shape)
    cfg = DartsConfig()
    supernet = space.supernet(auxiliary=Darts.uses_auxiliary(cfg))
    ctx = SearchContext(device=torch.device("cpu"), epochs=1, steps_per_epoch=1, seed=0)
    method = Darts(space, supernet, cfg, ctx)
    train, val = _batches(shape, batch)
    step = lambda: method.step(train, val)  # noqa: E731
    step.params = sum(p.numel() for p in supernet.parameters())  # type: ignore[attr-defined]
    return step


SIZES = {
    "restricted-mini": ("restricted", NetShape(8, 5, 1, 10, 8)),
    "relaxed-mini": ("relaxed", NetShape(8, 5, 1, 10, 8)),
    "restricted-reference": ("restricted", NetShape(8, 5, 3, 10, 16)),
    "relaxed-reference": ("relaxed", NetShape(8, 5, 3, 10, 16)),
}


@pytest.mark.parametrize("size", list(SIZES))
def test_search_step_against_naive_mixed_op(benchmark, size: str) -> None:
    torch.manual_seed(0)
    space_name, shape = SIZES[size]
    suite = suite_step(space_name, shape, 64)
    naive = naive_step(space_name, shape, 64)
    naive_s = median_step(naive, WARMUP, ROUNDS)
    suite_s = median_step(suite, WARMUP, ROUNDS)
    benchmark.extra_info.update({
        "threads": torch.get_num_threads(), "space": space_name,
        "shape": f"C={shape.channels}, {shape.layers} cells, {shape.image_size}x"
                 f"{shape.image_size}x{shape.in_channels}, batch 64",
        "naive_s": naive_s, "suite_s": suite_s, "speedup": naive_s / suite_s,
        # the same network: the same weights (the suite's supernet may add an auxiliary head)
        "naive_params": naive.params, "suite_params": suite.params})  # type: ignore[attr-defined]
    benchmark.pedantic(suite, rounds=ROUNDS, warmup_rounds=WARMUP)
