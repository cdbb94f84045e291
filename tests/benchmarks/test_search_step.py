"""One first-order DARTS search step: the suite's supernet against the naive DARTS network.

The naive network is the official DARTS search network (tests/benchmarks/official_darts.py:
every op of every edge computed, the zero op as a multiplication, the architecture phase
backpropagating into every weight as well as the alphas), with the space's op list; in the
relaxed space it has one alpha group per cell, as the suite's. The suite's step is the real
DARTS adapter on the space's supernet (batched ops, inactive and zero ops never computed,
the alpha phase asks autograd for the alpha gradient only, the fast depthwise backward).

Sizes: each space at the mini preset's size (C=8, 5 cells, 8x8x1 digits, batch 64) and at
16x16x3 (batch 64). The two steps are timed in turn in one run (median of ``ROUNDS`` after
``WARMUP``); ``extra_info`` holds both and the speed-up ``naive_s / suite_s``. Timings are
reported, never asserted. CIFAR size and thread counts: test_official_darts.py.

Run with ``pytest tests/benchmarks --benchmark-only``.
"""

from __future__ import annotations

from collections.abc import Callable

import nasbench_suite.spaces as spaces
import pytest
import torch
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.methods.darts import Darts, DartsConfig
from nasbench_suite.spaces import NetShape

from tests.benchmarks.official_darts import SearchNetwork, darts_step
from tests.benchmarks.timing import interleaved_medians, machine_info

WARMUP, ROUNDS = 2, 7


def _batches(shape: NetShape, batch: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    gen = torch.Generator().manual_seed(0)
    return tuple((torch.randn(batch, shape.in_channels, shape.image_size, shape.image_size,
                              generator=gen),
                  torch.randint(0, shape.num_classes, (batch,), generator=gen))
                 for _ in range(2))


def naive_step(space_name: str, shape: NetShape, batch: int) -> Callable[[], object]:
    space = spaces.create_space(space_name, shape)
    net = SearchNetwork(shape.channels, shape.num_classes, shape.layers, shape.in_channels,
                        ops=space.ops, per_cell=space_name == "relaxed")
    train, val = _batches(shape, batch)
    step = darts_step(net, train, val)
    step.params = sum(p.numel() for p in net.parameters())  # type: ignore[attr-defined]
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
    medians = interleaved_medians({"naive": naive, "suite": suite}, WARMUP, ROUNDS)
    benchmark.extra_info.update({
        **machine_info(torch.get_num_threads()), "space": space_name,
        "shape": f"C={shape.channels}, {shape.layers} cells, {shape.image_size}x"
                 f"{shape.image_size}x{shape.in_channels}, batch 64",
        "naive_s": medians["naive"], "suite_s": medians["suite"],
        "speedup": medians["naive"] / medians["suite"],
        # the same network: the same weights
        "naive_params": naive.params, "suite_params": suite.params})  # type: ignore[attr-defined]
    benchmark.pedantic(suite, rounds=ROUNDS, warmup_rounds=WARMUP)
