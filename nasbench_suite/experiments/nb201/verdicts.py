"""The verdicts of `nasbench reproduce nb201`: what the literature says of these methods on
NAS-Bench-201, decided from per-seed values with the budget stated beside each (the words:
experiments.verdicts). A comparison between methods is decided from a bootstrap interval
of the per-seed paired differences (experiments.claims.stats) and only with 3 or more
seeds: fewer give no interval worth the name.
"""

from __future__ import annotations

import math

import pandas as pd

from nasbench_suite.experiments.claims.stats import interval, paired
from nasbench_suite.experiments.nb201.config import TAKEOVER_BAND, TAKEOVER_SHARE
from nasbench_suite.experiments.verdicts import (
    CONTRADICTED,
    MIN_SEEDS,
    NOT_OBSERVED,
    OBSERVED,
    Verdict,
)


def takeover(epochs: pd.DataFrame) -> pd.DataFrame:
    """Per DARTS seed: the first epoch whose derived cell is at least TAKEOVER_SHARE skip
    connections (NaN: never) and the supernet's training accuracy at that epoch."""
    rows = []
    darts = epochs[epochs["method"] == "darts"]
    for seed, run in darts.groupby("seed", sort=True):
        run = run[run["epoch"] >= 0]
        hit = run[run["skip_share"] >= TAKEOVER_SHARE]
        first = hit.iloc[0] if len(hit) else None
        rows.append({"seed": seed,
                     "takeover_epoch": math.nan if first is None else float(first["epoch"] + 1),
                     "train_acc_at_takeover": math.nan if first is None
                     else float(first["train_acc"]),
                     "train_acc_best": float(run["train_acc"].max())})
    return pd.DataFrame(rows, columns=["seed", "takeover_epoch", "train_acc_at_takeover",
                                       "train_acc_best"])


def collapse_verdict(runs: pd.DataFrame, target: float, budget: str) -> Verdict | None:
    """NAS-Bench-201 (Dong and Yang 2020): DARTS ends at the all-skip cell (39.77)."""
    darts = runs[runs["method"] == "darts"]
    if darts.empty:
        return None
    taken = int((darts["skip_share"] >= TAKEOVER_SHARE).sum())
    all_skip = int((darts["skip_share"] == 1.0).sum())
    trained = bool((darts["train_acc_best"] >= target).all())
    if taken == len(darts):
        verdict = OBSERVED
    elif taken == 0 and trained:
        verdict = CONTRADICTED
    else:
        verdict = NOT_OBSERVED
    return Verdict(
        "DARTS's derived cell collapses to skip connections",
        "NAS-Bench-201 paper (DARTS: the all-skip cell, 39.77 CIFAR-10 valid)", verdict,
        f"{taken}/{len(darts)} seeds end with skip connections >= {TAKEOVER_SHARE:.0%} of "
        f"the kept ops ({all_skip} exactly all-skip); supernet training accuracy passed "
        f"{target:.0%} in {int((darts['train_acc_best'] >= target).sum())}/{len(darts)} "
        f"seeds", budget)


def band_verdict(epochs: pd.DataFrame, budget: str) -> Verdict | None:
    """RobustDARTS (Zela et al. 2020): the skip takeover starts once the supernet's training
    accuracy reaches 84-90%."""
    seeds = takeover(epochs)
    if seeds.empty:
        return None
    low, high = TAKEOVER_BAND
    at = seeds["train_acc_at_takeover"]
    took = at.notna()
    inside = took & (at >= low) & (at <= high)
    early = took & (at < low)
    late = ~took & (seeds["train_acc_best"] > high)  # passed the band, no takeover
    if bool(inside.all()):
        verdict = OBSERVED
    elif bool((early | late).all()):
        verdict = CONTRADICTED
    else:
        verdict = NOT_OBSERVED
    details = ", ".join(
        f"seed {int(r.seed)}: " + (f"epoch {r.takeover_epoch:.0f} at "
                                   f"{r.train_acc_at_takeover:.1%}" if r.takeover_epoch
                                   == r.takeover_epoch else
                                   f"no takeover (best {r.train_acc_best:.1%})")
        for r in seeds.itertuples())
    return Verdict(
        "the skip takeover starts when the supernet's training accuracy reaches 84-90%",
        "RobustDARTS (Zela et al., ICLR 2020)", verdict,
        f"first epoch with skip >= {TAKEOVER_SHARE:.0%}: {details}", budget)


def beats_darts(runs: pd.DataFrame, method: str, arm: str, confidence: float,
                resamples: int, budget: str) -> Verdict | None:
    """Each newer method's paper: its search finds better cells than DARTS (here: the
    table's CIFAR-10 validation accuracy of the final cells, paired by seed)."""
    mine = runs[runs["method"] == method].set_index("seed")["cifar10_valid"].to_dict()
    base = runs[runs["method"] == "darts"].set_index("seed")["cifar10_valid"].to_dict()
    diffs = paired(mine, base)
    if not mine or not base:
        return None
    claim = f"{arm} finds a better cell than DARTS"
    source = f"{arm}'s paper (compared here on the table's CIFAR-10 validation accuracy)"
    if len(diffs) < MIN_SEEDS:
        return Verdict(claim, source, NOT_OBSERVED,
                       f"{len(diffs)} paired seed(s): fewer than {MIN_SEEDS}, no interval; "
                       f"differences {', '.join(f'{d:+.2f}' for d in diffs)}", budget)
    iv = interval(diffs, confidence, resamples)
    verdict = OBSERVED if iv.above(0.0) else CONTRADICTED if iv.below(0.0) else NOT_OBSERVED
    return Verdict(claim, source, verdict,
                   f"paired difference (points) {iv.text('{:+.2f}', confidence)} over "
                   f"{len(diffs)} seeds", budget)


__all__ = ["CONTRADICTED", "NOT_OBSERVED", "OBSERVED", "Verdict", "band_verdict",
           "beats_darts", "collapse_verdict", "takeover"]
