"""The CUDA path, end to end, on a machine that has a GPU (`scripts/gpu-check`).

Skipped where CUDA is not available (CI, the project's CPU machines). Every method searches
on every space with and without AMP, a derived architecture trains from scratch on the GPU,
and the paper-size DARTS step is timed against the official network's on the same GPU
(printed, never asserted). A tensor created on the CPU inside a step, or a ``.cpu()`` that
leaves a result on the wrong device, fails here; on a CPU machine (CI) the same path runs on a
fake CUDA device (tests/test_fake_cuda.py), which catches such a mix but not what the GPU's
own kernels, streams and memory do.
"""

from __future__ import annotations

import time
from pathlib import Path

import nasbench_suite.spaces as spaces
import pytest
import torch
from nasbench_suite.methods import list_methods
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.methods.darts import Darts, DartsConfig

from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search
from nasbench_suite.training.scratch import resolve_eval_config, train_from_scratch
from tests.benchmarks.official_darts import darts_step, official_network

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

FAST_HP: dict[str, dict] = {"padnas": {"population": 4, "generations": 1, "stages": 2}}


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "amp"])
@pytest.mark.parametrize("space", spaces.list_spaces())
@pytest.mark.parametrize("method", list_methods())
def test_every_method_searches_on_cuda(tiny_config, method: str, space: str,
                                       amp: bool) -> None:
    cfg = tiny_config(method=method, space=space, epochs=2, device="cuda", amp=amp,
                      **FAST_HP.get(method, {}))
    run = RunFolder(run_search(cfg, progress=False, log=lambda _: None))
    assert run.finished()
    assert run.summary().device.startswith("cuda")


def test_training_from_scratch_on_cuda(tmp_path: Path) -> None:
    """(Training from scratch has no AMP option yet: fp32 only.)"""
    space = spaces.create_space("restricted", spaces.NetShape(4, 3, 1, 10, 8))
    genotype = space.derive(torch.rand(space.layout.shape))
    cfg = resolve_eval_config({"epochs": 1, "channels": 4, "batch_size": 128,
                               "out": str(tmp_path), "device": "cuda"})
    out = train_from_scratch(cfg, "gpu", genotype, progress=False, log=lambda _: None)
    assert 0.0 <= EvalFolder(out).result().test_acc <= 1.0


def test_paper_size_darts_step_against_the_official_network() -> None:
    """The DARTS paper's search size (C=16, 8 cells, 32x32, batch 64) on the GPU: medians of
    5 steps after 2 warm-ups, the two in turn; printed for the README, never asserted."""
    device = torch.device("cuda")
    shape = spaces.NetShape(16, 8, 3, 10, 32)
    gen = torch.Generator().manual_seed(0)
    batch = [(torch.randn(64, 3, 32, 32, generator=gen).to(device),
              torch.randint(0, 10, (64,), generator=gen).to(device)) for _ in range(2)]
    net, which = official_network(shape.channels, shape.num_classes, shape.layers)
    official = darts_step(net.to(device), batch[0], batch[1])
    space = spaces.create_space("restricted", shape)
    supernet = space.supernet().to(device)
    method = Darts(space, supernet, DartsConfig(),
                   SearchContext(device=device, epochs=1, steps_per_epoch=1, seed=0))

    def timed(step) -> float:  # type: ignore[no-untyped-def]
        torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        return time.perf_counter() - start

    def suite() -> object:
        return method.step(batch[0], batch[1])

    for _ in range(2):
        timed(official), timed(suite)
    times = {"official": [], "suite": []}
    for _ in range(5):
        times["official"].append(timed(official))
        times["suite"].append(timed(suite))
    med = {k: sorted(v)[2] for k, v in times.items()}
    print(f"\npaper-size DARTS step on {torch.cuda.get_device_name()}: official ({which}) "
          f"{med['official']:.3f} s, suite {med['suite']:.3f} s, "
          f"ratio {med['official'] / med['suite']:.2f}")
    assert med["suite"] > 0
