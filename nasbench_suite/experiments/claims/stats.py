"""Intervals and verdicts of `nasbench reproduce claims`: decided from intervals, never from
a mean alone.

Every measured quantity is a value per seed. Its interval is a percentile bootstrap of the
mean over seeds (scipy.stats.bootstrap, ``method="percentile"``, a fixed random state so a
rebuild gives the same bytes). With two or three seeds such an interval is wide and only
spans the values seen (with two seeds: from the smaller to the larger): a verdict of
"reproduced" then needs every seed to agree. One seed gives no interval, and a claim
measured on one seed is "not measurable at this budget".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURABLE = "not measurable at this budget"


@dataclass(frozen=True)
class Interval:
    """Mean, standard deviation (ddof 1) and bootstrap interval of per-seed values."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    @property
    def defined(self) -> bool:
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)

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
        if self.n == 1:
            return f"{mean} (1 seed: no interval)"
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
    if len(v) == 1:
        return Interval(1, mean, std, math.nan, math.nan)
    if float(np.ptp(v)) == 0.0:  # every resample is the same mean
        return Interval(len(v), mean, std, mean, mean)
    result = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=resamples,
                       method="percentile", rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Interval(len(v), mean, std, float(ci.low), float(ci.high))


def paired(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """a - b for every seed both have (a paired comparison: same seed, same data)."""
    return [a[s] - b[s] for s in sorted(set(a) & set(b))
            if math.isfinite(a[s]) and math.isfinite(b[s])]
