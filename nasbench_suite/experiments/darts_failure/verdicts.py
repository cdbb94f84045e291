"""The verdicts of `nasbench reproduce darts-failure`: does each arm collapse, and which of
the enlarged space's changes carries the difference between the spaces.

Decided per seed from the report's trials table (the ``final`` rows: each search's derived
architecture at its end), with the words of experiments.verdicts and the budget beside each:

* an arm *collapses* when its derived normal cells end above the collapse threshold of
  parameter-free ops in every seed (3 or more seeds); the collapse is *contradicted* when no
  seed ends above it although every supernet fitted its training data (passed the fit
  threshold) and trained at least :data:`PAST_FIT` epochs more, and no seed's share rose
  over its last :data:`PAST_FIT` epochs: the regime where RobustDARTS saw skip connections
  take over was reached and nothing took over or was still taking over. Anything else
  (seeds that disagree, supernets that never fitted, shares still rising at the end, too
  few seeds) is "not observed at this budget".
* the arms that split the space's changes (config.ARM_TABLE) are compared pairwise by
  :data:`CONFOUNDS`: an arm and its variant that differs in one thing. A change *changes the
  outcome* when both arms are decided and their outcomes differ; the paired per-seed
  difference of the final normal-cell parameter-free share is given beside it (an interval
  only from 3 seeds or more, else the seeds' values).
* :func:`space_attribution`: if the restricted and the relaxed arm differ in outcome, the
  identity-skip arm tells whether the stride-1 skip carries it (the relaxed space with an
  identity skip behaves like the restricted one) or the rest of the space does (op set,
  topology, derivation: these arms do not split them further).

Accuracy from scratch is compared only beside the protocol control's verdict (control.py):
an accuracy difference from a protocol that does not separate the all-skip cell from DARTS V2
says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from nasbench_suite.experiments.claims.stats import interval, paired
from nasbench_suite.experiments.darts_failure.control import NOT_SEPARATED, SEPARATED
from nasbench_suite.experiments.verdicts import (
    CONTRADICTED,
    MIN_SEEDS,
    NOT_OBSERVED,
    OBSERVED,
    Verdict,
)

#: epochs a supernet must train past its fit epoch for "no collapse" to count (issue 27:
#: the reference runs at least 10 epochs past 85% training accuracy)
PAST_FIT = 10
#: the collapse indicator: the parameter-free share of the derived normal cells (reduction
#: cells keep pools by design; report._normal_free)
SHARE = "param_free_share_normal"
#: the share a uniform random cell of the arm's ops is expected to have (the chance level)
CHANCE = "param_free_chance"
#: how much that share rose over each run's last PAST_FIT epochs (report._rise)
RISE = "free_normal_rise"
#: the confound table's column of the paired difference
SHIFT = "normal-cell parameter-free share, with - without"
#: outcome of an arm: every seed collapsed, none did although all fitted, or undecided
COLLAPSES, HOLDS, UNDECIDED = "collapses", "does not collapse", "undecided"
_WORD = {COLLAPSES: OBSERVED, HOLDS: CONTRADICTED, UNDECIDED: NOT_OBSERVED}


@dataclass(frozen=True)
class Confound:
    """One change of the enlarged space, isolated by two arms that differ only in it."""

    factor: str
    base: str
    variant: str


#: (what changes, the arm without it, the arm with it): config.ARM_TABLE labels
CONFOUNDS: tuple[Confound, ...] = (
    Confound("the whole space (ops, topology, derivation, stride-1 skip)",
             "darts-restricted", "darts-relaxed"),
    Confound("the stride-1 skip in the relaxed space: GOLD-NAS's BN -> identity",
             "darts-relaxed", "darts-relaxed-identity"),
    Confound("the op set on the restricted topology: DARTS's 8 ops -> RobustDARTS's S2",
             "darts-restricted", "darts-restricted-s2"),
    Confound("the alpha lr, restricted: rescaled -> the paper's 3e-4",
             "darts-restricted", "darts-restricted-paperlr"),
    Confound("the alpha lr, relaxed: rescaled -> the paper's 3e-4",
             "darts-relaxed", "darts-relaxed-paperlr"),
    Confound("the order, relaxed: first -> second", "darts-relaxed", "darts2-relaxed"),
)


def finals(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials table's rows of each search's own final architecture (no remedy rows)."""
    return trials[trials["label"] == "final"]


def collapsed(rows: pd.DataFrame, threshold: float) -> pd.Series:
    """Per row: the derived normal cells end above ``threshold`` parameter-free ops."""
    return rows[SHARE] > threshold


def in_regime(rows: pd.DataFrame) -> pd.Series:
    """Per row: the supernet fitted its training data and trained PAST_FIT epochs more."""
    return rows["fit_epoch"].notna() & (rows["epochs_run"] - rows["fit_epoch"] >= PAST_FIT)


def outcome(rows: pd.DataFrame, threshold: float) -> str:
    """COLLAPSES, HOLDS or UNDECIDED for one arm's final rows (module docstring)."""
    if len(rows) < MIN_SEEDS:
        return UNDECIDED
    hit = collapsed(rows, threshold)
    if bool(hit.all()):
        return COLLAPSES
    settled = bool((rows[RISE] <= 0).all())  # NaN (a run too short to tell) is not settled
    if not bool(hit.any()) and bool(in_regime(rows).all()) and settled:
        return HOLDS
    return UNDECIDED


def _values(values: Sequence[float], fmt: str) -> str:
    return ", ".join("–" if not math.isfinite(v) else fmt.format(v) for v in values)


def arm_budget(rows: pd.DataFrame, fit_threshold: float) -> str:
    """The budget an arm's verdict was reached at: seeds, epochs, where each supernet fitted."""
    fits = ", ".join("never" if not math.isfinite(e) else f"{e:.0f}" for e in rows["fit_epoch"])
    runs = sorted({int(e) for e in rows["epochs_run"]})
    return (f"{len(rows)} seed(s), {'/'.join(map(str, runs))} epochs; supernet train acc "
            f">= {fit_threshold:.0%} at epoch {fits}; {int(in_regime(rows).sum())} of "
            f"{len(rows)} trained {PAST_FIT}+ epochs past it")


def arm_verdicts(trials: pd.DataFrame, threshold: float, fit_threshold: float,
                 labels: dict[str, str]) -> list[Verdict]:
    """One verdict per DARTS arm: its derived normal cells collapse to parameter-free ops
    (``labels``: arm label -> the arm's report name, in report order)."""
    rows = finals(trials)
    out = []
    for key, arm in labels.items():
        mine = rows[(rows["arm_label"] == key) & (rows["method"] == "darts")]
        if mine.empty:
            continue
        hit = collapsed(mine, threshold)
        evidence = (f"{int(hit.sum())}/{len(mine)} seeds end above {threshold:g} "
                    f"parameter-free in normal cells (shares "
                    f"{_values(mine[SHARE], '{:.2f}')}; a uniform random cell "
                    f"{mine[CHANCE].iloc[0]:.2f}; change over the last {PAST_FIT} "
                    f"epochs {_values(mine[RISE], '{:+.2f}')}; "
                    f"normal-cell skip {_values(mine['skip_share_normal'], '{:.2f}')}); "
                    f"timing {', '.join(mine['collapse_timing'])}; eigenvalue end/start "
                    f"{_values(mine['eig_ratio'], '{:.2f}x')}; supernet train acc at the end "
                    f"{_values(mine['train_acc_end'], '{:.2f}')}")
        out.append(Verdict(f"{arm}: its derived normal cells collapse to parameter-free ops",
                           "RobustDARTS (DARTS cells); GOLD-NAS (DARTS in the enlarged space)",
                           _WORD[outcome(mine, threshold)], evidence,
                           arm_budget(mine, fit_threshold)))
    return out


def confound_table(trials: pd.DataFrame, threshold: float, labels: dict[str, str],
                   confidence: float = 0.95, resamples: int = 2000) -> pd.DataFrame:
    """One row per :data:`CONFOUNDS` pair present: each arm's outcome, the paired per-seed
    difference of the final normal-cell parameter-free share (variant - base), and whether
    the change changes the outcome ("yes", "no", or undecided at this budget)."""
    rows = finals(trials)
    out = []
    for c in CONFOUNDS:
        base, variant = (rows[rows["arm_label"] == k] for k in (c.base, c.variant))
        if base.empty or variant.empty:
            continue
        ob, ov = outcome(base, threshold), outcome(variant, threshold)
        diffs = paired(dict(zip(variant["seed"], variant[SHARE], strict=True)),
                       dict(zip(base["seed"], base[SHARE], strict=True)))
        if len(diffs) >= MIN_SEEDS:
            shift = interval(diffs, confidence, resamples).text("{:.2f}", confidence)
        else:
            shift = f"{len(diffs)} paired seed(s), no interval: {_values(diffs, '{:+.2f}')}"
        changes = ("undecided at this budget" if UNDECIDED in (ob, ov)
                   else "yes" if ob != ov else "no")
        out.append({"change": c.factor, "without": labels.get(c.base, c.base),
                    "outcome without": ob, "with": labels.get(c.variant, c.variant),
                    "outcome with": ov, SHIFT: shift, "changes the outcome": changes})
    return pd.DataFrame(out, columns=["change", "without", "outcome without", "with",
                                      "outcome with", SHIFT, "changes the outcome"])


def space_attribution(trials: pd.DataFrame, threshold: float) -> str:
    """One sentence: which change (if any) carries the difference between the spaces."""
    rows = finals(trials)

    def of(key: str) -> str | None:
        mine = rows[rows["arm_label"] == key]
        return None if mine.empty else outcome(mine, threshold)

    restricted, relaxed, identity = (of(k) for k in ("darts-restricted", "darts-relaxed",
                                                     "darts-relaxed-identity"))
    if restricted is None or relaxed is None:
        return ("Not measured: the attribution needs DARTS on both spaces "
                "(darts-restricted and darts-relaxed).")
    if UNDECIDED in (restricted, relaxed):
        return (f"Undecided at this budget: DARTS restricted {restricted}, relaxed {relaxed} "
                "(an arm is decided when all its seeds collapse, or none does although every "
                f"supernet fitted and trained {PAST_FIT}+ epochs more and no share was still "
                "rising).")
    if restricted == relaxed:
        return (f"No change of the space carries a difference: DARTS {relaxed} in both "
                "spaces at this budget, so the enlarged space is not what makes it "
                + ("collapse." if relaxed == COLLAPSES else "hold."))
    head = f"The spaces differ: DARTS {restricted} restricted and {relaxed} relaxed. "
    if identity is None or identity == UNDECIDED:
        return head + ("Which change carries it is undecided: the identity-skip arm is "
                       + ("missing." if identity is None else "undecided at this budget."))
    if identity == restricted:
        return head + ("The stride-1 skip carries it: with an identity skip the relaxed space "
                       f"{identity}, as the restricted one does.")
    return head + ("Not the stride-1 skip: with an identity skip the relaxed space still "
                   f"{identity}; the op set, topology and derivation carry it (these arms do "
                   "not split them further).")


def _shift(share: dict[str, dict[int, float]], a: str, b: str,
           seeds: list[int]) -> tuple[str, str]:
    """a - b of the share on ``seeds``: the mean, and on how many seeds it has that sign."""
    diffs = [share[a][s] - share[b][s] for s in seeds]
    mean = sum(diffs) / len(diffs)
    sign = sum(d > 0 for d in diffs) if mean >= 0 else sum(d < 0 for d in diffs)
    return f"{mean:+.2f}", f"{'higher' if mean >= 0 else 'lower'} in {sign} of {len(diffs)} seeds"


def share_decomposition(trials: pd.DataFrame) -> str:
    """The whole space's shift of the final normal-cell parameter-free share (relaxed -
    restricted, paired by seed), split at the identity-skip arm into the stride-1 skip's
    part (relaxed - relaxed with an identity skip) and the rest of the space's (relaxed with
    an identity skip - restricted), on the seeds all three arms share, so that the parts add
    up to the whole. Shares, not outcomes: it says where the share moves even where no arm
    is decided; the chance levels beside it say how much of the rest the op set's own
    chance level accounts for. Empty without the three arms."""
    rows = finals(trials)
    keys = ("darts-restricted", "darts-relaxed", "darts-relaxed-identity")
    arms = {k: rows[rows["arm_label"] == k] for k in keys}
    if any(a.empty for a in arms.values()):
        return ""
    share = {k: {int(s): float(v) for s, v in zip(a["seed"], a[SHARE], strict=True)
                 if math.isfinite(v)} for k, a in arms.items()}
    seeds = sorted(set.intersection(*(set(v) for v in share.values())))
    if not seeds:
        return ""
    restricted, relaxed, identity = keys
    chance = {k: float(a[CHANCE].iloc[0]) for k, a in arms.items()}
    whole, whole_sign = _shift(share, relaxed, restricted, seeds)
    skip, skip_sign = _shift(share, relaxed, identity, seeds)
    rest, rest_sign = _shift(share, identity, restricted, seeds)
    return (f"In shares, paired on seeds {', '.join(map(str, seeds))}: the relaxed space's "
            f"normal cells end {whole} parameter-free against the restricted space's "
            f"({whole_sign}; a uniform random cell: {chance[relaxed]:.2f} relaxed, "
            f"{chance[restricted]:.2f} restricted). Of it, GOLD-NAS's BN skip carries {skip} "
            f"(relaxed - relaxed with an identity skip; {skip_sign}) and the rest of the "
            f"space (op set, topology, derivation) {rest} (relaxed with an identity skip - "
            f"restricted; {rest_sign}; the op set moves the chance level by "
            f"{chance[identity] - chance[restricted]:+.2f}).")


def scratch_verdict(trials: pd.DataFrame, control: str, labels: dict[str, str],
                    budget: str, confidence: float = 0.95,
                    resamples: int = 2000) -> Verdict | None:
    """GOLD-NAS's paper: in the enlarged space its cells beat DARTS's (here: accuracy from
    scratch, paired by seed), decided only where the protocol control separated the all-skip
    cell from DARTS V2 (``control``: its verdict for the relaxed space)."""
    rows = finals(trials)
    gold, darts = (rows[rows["arm_label"] == k] for k in ("gold-relaxed", "darts-relaxed"))
    if gold.empty or darts.empty:
        return None
    diffs = paired(dict(zip(gold["seed"], gold["scratch_acc"], strict=True)),
                   dict(zip(darts["seed"], darts["scratch_acc"], strict=True)))
    claim = (f"{labels['gold-relaxed']} finds cells that train better from scratch than "
             f"{labels['darts-relaxed']}")
    source = "GOLD-NAS (DARTS fails in the enlarged space)"
    where = f"protocol control (relaxed all-skip vs DARTS V2): {control}"
    if control == NOT_SEPARATED:
        where += ", so this protocol cannot tell a good cell from a bad one"
    elif control != SEPARATED:
        where += ", so nothing shows this protocol tells a good cell from a bad one"
    if not diffs:
        return Verdict(claim, source, NOT_OBSERVED, "no seed has both arms' cells trained "
                       f"from scratch; {where}", budget)
    if len(diffs) < MIN_SEEDS:
        return Verdict(claim, source, NOT_OBSERVED,
                       f"{len(diffs)} paired seed(s), fewer than {MIN_SEEDS}: no interval; "
                       f"differences {_values(diffs, '{:+.3f}')}; {where}", budget)
    iv = interval(diffs, confidence, resamples)
    evidence = f"paired difference {iv.text('{:.3f}', confidence)}; {where}"
    if control != SEPARATED:
        return Verdict(claim, source, NOT_OBSERVED, evidence, budget)
    verdict = OBSERVED if iv.above(0.0) else CONTRADICTED if iv.below(0.0) else NOT_OBSERVED
    return Verdict(claim, source, verdict, evidence, budget)


__all__ = ["CHANCE", "COLLAPSES", "CONFOUNDS", "HOLDS", "PAST_FIT", "UNDECIDED", "Confound",
           "arm_verdicts", "collapsed", "confound_table", "finals",
           "in_regime", "outcome", "scratch_verdict", "share_decomposition",
           "space_attribution"]
