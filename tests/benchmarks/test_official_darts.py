"""The suite's first-order DARTS step against the official DARTS search network's.

Official: the search network and step of quark0/darts, written in
tests/benchmarks/official_darts.py from the paper code's definitions (every op computed, the
zero op as ``x.mul(0.)``, a plain ``loss.backward()`` in the architecture phase). Suite: the
DARTS adapter's ``Darts.step`` on the restricted space's supernet (its defaults: fused
waves, channels_last on the CPU, zero and inactive ops never computed, the alpha gradient
only in the architecture phase, the fast depthwise backward).

C=8, 5 cells, batch 64, 10 classes, at 16x16x3 and 32x32x3 (CIFAR), each at 1 and 2 threads
(``torch.set_num_threads``). The two steps are timed in turn in one process (A B A B ...,
median of ``ROUNDS`` after ``WARMUP``), so their ratio holds on a machine whose speed drifts.
``extra_info`` records both medians, the ratio ``official_s / suite_s``, the threads and the
load average. Timings are recorded, never asserted.

Run with ``python -m pytest tests/benchmarks/test_official_darts.py --benchmark-only``
(about 6 minutes on the project's 2-core machine). With ``NASBENCH_OFFICIAL_DARTS`` set to a
checkout of quark0/darts's ``cnn/`` folder (fetched into a scratch folder, never committed)
the official code itself is timed instead of the rewrite; ``extra_info["official"]`` says
which ran.
"""

from __future__ import annotations

import pytest
import torch
from nasbench_suite.spaces import NetShape

from tests.benchmarks.official_darts import darts_step, official_network
from tests.benchmarks.timing import (
    interleaved_medians,
    machine_info,
    num_threads,
    suite_darts_step,
)

WARMUP, ROUNDS = 1, 3
BATCH = 64


def _batches(shape: NetShape) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    gen = torch.Generator().manual_seed(0)
    size = shape.image_size
    return tuple((torch.randn(BATCH, shape.in_channels, size, size, generator=gen),
                  torch.randint(0, shape.num_classes, (BATCH,), generator=gen))
                 for _ in range(2))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("size", [16, 32])
def test_suite_step_against_official_darts(benchmark, size: int, threads: int) -> None:
    torch.manual_seed(0)
    shape = NetShape(8, 5, 3, 10, size)
    train, val = _batches(shape)
    official_net, which = official_network(shape.channels, shape.num_classes, shape.layers)
    official = darts_step(official_net, train, val)
    suite, supernet = suite_darts_step("restricted", shape, train, val)

    with num_threads(threads):
        medians = interleaved_medians({"official": official, "suite": suite}, WARMUP, ROUNDS)
        benchmark.extra_info.update({
            **machine_info(threads),
            "shape": f"C=8, 5 cells, {size}x{size}x3, batch {BATCH}", "official": which,
            "official_s": medians["official"], "suite_s": medians["suite"],
            "ratio": medians["official"] / medians["suite"],
            # the same network: the same weights
            "official_params": sum(p.numel() for p in official_net.parameters()),
            "suite_params": sum(p.numel() for p in supernet.parameters()),
        })
        benchmark.pedantic(suite, rounds=ROUNDS, warmup_rounds=0)
