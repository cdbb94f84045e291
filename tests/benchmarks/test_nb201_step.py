"""The suite's first-order DARTS step in the nb201 space against NAS-Bench-201's own.

Reference: the benchmark authors' DARTS search network, ``TinyNetworkDarts`` of
D-X-Y/AutoDL-Projects (``xautodl/models/cell_searchs/search_model_darts.py`` with
``search_cells.py``, ``cell_operations.py`` and ``genotypes.py``), imported from the folder
that ``NASBENCH_AUTODL`` names (a checkout, or those four files under ``xautodl/models/``,
fetched into a scratch folder and never committed); the test is skipped without it. Its
step is the DARTS-V1 step of ``exps/NAS-Bench-201-algos/DARTS-V1.py``: the weights on a
training batch (SGD lr 0.025, momentum 0.9, Nesterov, weight decay 5e-4, the gradient norm
clipped at 5), then the alphas on a validation batch (a plain ``loss.backward()``; Adam lr
3e-4, betas (0.5, 0.999), weight decay 1e-3), with the search space's five ops, 4 nodes,
non-affine BN with running statistics in the cells (``--track_running_stats 1``). Its cell
convolutions carry a bias (``bias=not affine`` in ``cell_operations.ReLUConvBN``), which the
BN that follows cancels in training: 2C more weights per edge than the suite's supernet.

Suite: the DARTS adapter's ``Darts.step`` on the nb201 space's supernet (its defaults: the
alphas first on the validation batch, the alpha gradient only; fused waves; the zero op
never computed).

Shapes, batch 64, 10 classes, 3-channel images: the benchmark's search shape (C=16, N=5)
at 32x32, and the suite's mini nb201 shape (C=8, N=2) at 16x16; each at 1 and 2 threads.
The two steps are timed in turn in one process (A B A B ..., median of ``ROUNDS`` after
``WARMUP``); ``extra_info`` records both medians, the ratio ``autodl_s / suite_s``, the
threads and the load average. Timings are recorded, never asserted.

    NASBENCH_AUTODL=/path/to/AutoDL-Projects OMP_NUM_THREADS=1 \\
        python -m pytest tests/benchmarks/test_nb201_step.py --benchmark-only

Measured 2026-12-06, 1 thread, torch 2.14.1, 2-core machine shared with other jobs (load
average ~5): C=16, N=5, 32x32 AutoDL 18.8 s, suite 7.83 s (2.40x); C=8, N=2, 16x16 AutoDL
1.20 s, suite 0.525 s (2.28x). At load 26-33, before the term-by-term mix of
spaces/fused.py: 1.74x and 1.94x.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from nasbench_suite.spaces import NetShape
from torch import nn

from tests.benchmarks.timing import (
    interleaved_medians,
    machine_info,
    num_threads,
    suite_darts_step,
)

#: a folder holding AutoDL-Projects's ``xautodl/`` package (or the four files it needs)
AUTODL_ENV = "NASBENCH_AUTODL"
#: NAS-Bench-201's op list, in the benchmark's order (``get_search_spaces("cell",
#: "nas-bench-201")``)
NB201_SPACE = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
WARMUP, ROUNDS = 1, 3
BATCH = 64
Batch = tuple[torch.Tensor, torch.Tensor]

#: label -> (C, N, image size)
SHAPES = {"benchmark-C16-N5-32px": (16, 5, 32), "mini-C8-N2-16px": (8, 2, 16)}


def autodl_network_class(folder: str) -> type[nn.Module]:
    """``TinyNetworkDarts`` from ``folder``/xautodl, importing only the modules it needs.

    The packages ``xautodl``, ``xautodl.models`` and ``xautodl.models.cell_searchs`` are
    created empty, so their ``__init__`` files (which import the whole library and its
    dependencies) do not run.
    """
    root = Path(folder) / "xautodl"
    model_file = root / "models" / "cell_searchs" / "search_model_darts.py"
    if not model_file.is_file():
        raise FileNotFoundError(f"${AUTODL_ENV}={folder} holds no {model_file.relative_to(folder)}"
                                " (point it at a checkout of D-X-Y/AutoDL-Projects)")
    for name, path in (("xautodl", root), ("xautodl.models", root / "models"),
                       ("xautodl.models.cell_searchs", root / "models" / "cell_searchs")):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    module = importlib.import_module("xautodl.models.cell_searchs.search_model_darts")
    return module.TinyNetworkDarts


def _batches(size: int) -> tuple[Batch, Batch]:
    gen = torch.Generator().manual_seed(0)
    train, val = ((torch.randn(BATCH, 3, size, size, generator=gen),
                   torch.randint(0, 10, (BATCH,), generator=gen)) for _ in range(2))
    return train, val


def autodl_step(net: nn.Module, train: Batch, val: Batch) -> Callable[[], torch.Tensor]:
    """DARTS-V1's ``search_func`` body for one (train, val) pair of batches."""
    w_opt = torch.optim.SGD(net.get_weights(), lr=0.025, momentum=0.9, weight_decay=5e-4,
                            nesterov=True)
    a_opt = torch.optim.Adam(net.get_alphas(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def step() -> torch.Tensor:
        net.train()
        w_opt.zero_grad()
        _, logits = net(train[0])
        loss = F.cross_entropy(logits, train[1])
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        w_opt.step()
        a_opt.zero_grad()
        _, logits = net(val[0])
        F.cross_entropy(logits, val[1]).backward()  # fills the weights' grads too
        a_opt.step()
        return loss.detach()

    return step


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("label", list(SHAPES))
def test_suite_step_against_autodl_darts(benchmark, label: str, threads: int) -> None:
    folder = os.environ.get(AUTODL_ENV)
    if not folder:
        pytest.skip(f"${AUTODL_ENV} is not set (a checkout of D-X-Y/AutoDL-Projects)")
    channels, n, size = SHAPES[label]
    torch.manual_seed(0)
    train, val = _batches(size)
    autodl_net = autodl_network_class(folder)(channels, n, 4, 10, NB201_SPACE, False, True)
    autodl = autodl_step(autodl_net, train, val)
    suite, supernet = suite_darts_step("nb201", NetShape(channels, 3 * n, 3, 10, size), train, val)

    with num_threads(threads):
        medians = interleaved_medians({"autodl": autodl, "suite": suite}, WARMUP, ROUNDS)
        benchmark.extra_info.update({
            **machine_info(threads), "official": f"D-X-Y/AutoDL-Projects at {folder}",
            "shape": f"C={channels}, N={n}, {size}x{size}x3, batch {BATCH}",
            "autodl_s": medians["autodl"], "suite_s": medians["suite"],
            "ratio": medians["autodl"] / medians["suite"],
            # the same network: the same weights (the reference's alphas excluded)
            "autodl_params": sum(p.numel() for p in autodl_net.get_weights()),
            "suite_params": sum(p.numel() for p in supernet.parameters()),
        })
        benchmark.pedantic(suite, rounds=ROUNDS, warmup_rounds=0)
