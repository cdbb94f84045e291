"""Timing shared by the benchmarks that compare steps inside one run."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.methods.darts import Darts, DartsConfig
from nasbench_suite.spaces import NetShape, create_space


def median_step(step: Callable[[], object], warmup: int, rounds: int) -> float:
    """Median wall time of ``rounds`` calls of ``step`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_medians(steps: dict[str, Callable[[], object]], warmup: int,
                        rounds: int) -> dict[str, float]:
    """Median wall time of each step, the steps called in turn (A B A B ...).

    Interleaving keeps a ratio of two medians meaningful when the machine's speed drifts
    during the run (other work starting or stopping on a shared machine).
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


@contextlib.contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block, then back."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def machine_info(threads: int) -> dict[str, object]:
    """What to record next to every timing: threads, load average, wait policy."""
    return {"threads": threads, "load_avg_1min": round(os.getloadavg()[0], 2),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
            "cpus": len(os.sched_getaffinity(0))}


def suite_darts_step(space: str, shape: NetShape, train: tuple[torch.Tensor, torch.Tensor],
                     val: tuple[torch.Tensor, torch.Tensor],
                     ) -> tuple[Callable[[], object], torch.nn.Module]:
    """One first-order DARTS step of the suite in ``space`` at ``shape`` (default config),
    on the CPU, and its supernet (whose weights a comparison counts): the suite's side of
    every comparison with another code's search network."""
    cfg = DartsConfig()
    built = create_space(space, shape)
    net = built.supernet(auxiliary=Darts.uses_auxiliary(cfg))
    ctx = SearchContext(device=torch.device("cpu"), epochs=1, steps_per_epoch=1, seed=0)
    method = Darts(built, net, cfg, ctx)
    return (lambda: method.step(train, val)), net
