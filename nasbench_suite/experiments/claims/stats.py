"""Intervals and verdicts of `nasbench reproduce claims`: decided from intervals, never from
a mean alone.

Every measured quantity is a value per seed. Its interval is a percentile bootstrap of the
mean over seeds (scipy.stats.bootstrap, ``method="percentile"``, a fixed random state so a
rebuild gives the same bytes), from :data:`MIN_SEEDS` seeds or more only: with two seeds a
percentile interval is just the smaller and the larger value, so fewer seeds give their
values and no interval, and a claim measured on them is "not observed at this budget".
With three seeds the interval still only spans the values seen: "observed" then needs every
seed to agree. The verdict words are experiments.verdicts'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nasbench_suite.experiments.verdicts import MIN_SEEDS


@dataclass(frozen=True)
class Interval:
    """Mean, standard deviation (ddof 1) and bootstrap interval of per-seed values (the
    interval NaN below MIN_SEEDS values)."""

    n: int
    mean: float
    std: float
    low: float
    high: float
    values: tuple[float, ...] = ()

    @property
    def defined(self) -> bool:
        return self.n >= MIN_SEEDS and math.isfinite(self.low) and math.isfinite(self.high)

    def above(self, threshold: float) -> bool:
        """The whole interval lies strictly above ``threshold``."""
        return self.defined and self.low > threshold

    def at_or_below(self, threshold: float) -> bool:
        return self.defined and self.high <= threshold

    def below(self, threshold: float) -> bool:
        return self.defined and self.high < threshold

    def text(self, fmt: str = "{:.3f}", confidence: float = 0.95) -> str:
        """'mean ± std [low, high]' (the interval only where defined)."""
        if self.n == 0:
            return "no value"
        mean = fmt.format(self.mean)
        if self.n < MIN_SEEDS:
            seen = ", ".join(fmt.format(v) for v in self.values)
            return f"{mean} ({self.n} seed(s), no interval: {seen})"
        interval = (f"[{fmt.format(self.low)}, {fmt.format(self.high)}]" if self.defined
                    else "[undefined]")
        return f"{mean} ± {fmt.format(self.std)}, {confidence:.0%} CI {interval}"


def interval(values: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
             seed: int = 0) -> Interval:
    """The :class:`Interval` of the finite ``values`` (module docstring)."""
    from scipy.stats import bootstrap

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return Interval(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    std = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    seen = tuple(float(x) for x in v)
    if len(v) < MIN_SEEDS:
        return Interval(len(v), mean, std, math.nan, math.nan, seen)
    if float(np.ptp(v)) == 0.0:  # every resample is the same mean
        return Interval(len(v), mean, std, mean, mean, seen)
    result = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=resamples,
                       method="percentile", rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Interval(len(v), mean, std, float(ci.low), float(ci.high), seen)


def paired(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """a - b for every seed both have (a paired comparison: same seed, same data)."""
    return [a[s] - b[s] for s in sorted(set(a) & set(b))
            if math.isfinite(a[s]) and math.isfinite(b[s])]
