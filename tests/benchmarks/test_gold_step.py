"""GOLD-NAS search step: pruning must make the search cheaper, not just zero a weight.

One run, two measurements: the step of the full supernet, then the step after the pruning
rule has removed ops until at most half of the supernet's multiply-adds remain. Both are
medians of ``ROUNDS`` steps after ``WARMUP`` warm-ups, at the mini preset's network (C=8,
5 cells, batch 64) on digits-sized images (8x8x1) and on CIFAR-sized ones (32x32x3, the
``--dataset npz:...cifar10-10k.npz`` run). The issue's target is a ratio of at most 0.7; it
is recorded in ``extra_info`` and never asserted (times vary from machine to machine). At
8x8 a step is bound by kernel launches, which the batched supernet does not reduce until an
op type leaves a whole wave; at 32x32 the FLOPs dominate.

At CIFAR size the full supernet's step is also timed against a naive sigmoid-gated network
(tests/benchmarks/official_darts.py with ``gate="sigmoid"``: every op of every edge computed
and multiplied by its gate, GOLD-NAS's BN skip and auxiliary head, one-level step), in turn
with the suite's step in the same run: ``extra_info["naive_ratio"] = naive_s / full_s``.
Both networks build skip_connect as GOLD-NAS's search network does (a non-affine BN).

Run with ``pytest tests/benchmarks --benchmark-only``.
"""

from __future__ import annotations

import nasbench_suite.spaces as spaces
import pytest
import torch
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.methods.gold import Gold, GoldConfig
from nasbench_suite.spaces import NetShape
from nasbench_suite.spaces.supernet import SuperNet

from tests.benchmarks.official_darts import SearchNetwork, gold_step
from tests.benchmarks.timing import interleaved_medians, machine_info, median_step

WARMUP, ROUNDS = 3, 10


def _prune_half(method: Gold, seed: int = 0) -> None:
    """Drive the real pruning rule: gates of randomly chosen ops are pushed below eta_min,
    chunk by chunk, until at most half of the full supernet's multiply-adds remain."""
    initial = method.initial_macs
    order = torch.randperm(method.alpha.numel(), generator=torch.Generator().manual_seed(seed))
    flat = method.alpha.detach().view(-1)
    for chunk in order.split(8):
        if method.macs <= initial / 2:
            break
        flat[chunk] = -30.0
        method.prune()


SIZES = {"digits-8x8x1": (1, 8), "cifar-32x32x3": (3, 32)}


@pytest.mark.parametrize("size", list(SIZES))
def test_gold_step_cost_falls_with_pruning(benchmark, size: str) -> None:
    torch.manual_seed(0)
    in_channels, image = SIZES[size]
    space = spaces.create_space("relaxed", NetShape(8, 5, in_channels, 10, image))
    cfg = GoldConfig(min_flops_fraction=0.30887)  # the mini preset's floor
    s = space.shape
    supernet = SuperNet(space.layout, s.channels, s.in_channels, s.num_classes,
                        auxiliary=Gold.uses_auxiliary(cfg), skip_bn=True)
    ctx = SearchContext(device=torch.device("cpu"), epochs=1, steps_per_epoch=1, seed=0)
    method = Gold(space, supernet, cfg, ctx)
    gen = torch.Generator().manual_seed(0)
    batch = (torch.randn(64, in_channels, image, image, generator=gen),
             torch.randint(0, 10, (64,), generator=gen))

    def step() -> object:
        return method.step(batch, None)

    extra: dict[str, object] = {}
    if image >= 32:
        naive_net = SearchNetwork(s.channels, s.num_classes, s.layers, s.in_channels,
                                  ops=space.ops, per_cell=True, gate="sigmoid", skip_bn=True,
                                  auxiliary=True)
        medians = interleaved_medians({"naive": gold_step(naive_net, batch), "full": step},
                                      1, ROUNDS)
        extra = {"naive_s": medians["naive"], "naive_full_s": medians["full"],
                 "naive_ratio": medians["naive"] / medians["full"]}
    first = median_step(step, WARMUP, ROUNDS)
    full_ops = int(method.active.sum())
    _prune_half(method)
    later = median_step(step, WARMUP, ROUNDS)
    benchmark.extra_info.update({
        **machine_info(torch.get_num_threads()), **extra,
        "step_full_s": first, "step_pruned_s": later, "ratio": later / first,
        "macs_full": method.initial_macs, "macs_pruned": method.macs,
        "macs_share": method.macs / method.initial_macs,
        "ops_full": full_ops, "ops_pruned": int(method.active.sum()),
    })
    benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=WARMUP)
