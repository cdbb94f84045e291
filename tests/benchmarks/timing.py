"""Timing shared by the benchmarks that compare two steps inside one run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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
