"""darts-failure's verdicts (issue 27): an arm collapses only when every seed does, "no
collapse" counts only in the regime where collapse is known to happen, the space's changes
are compared pair by pair, and an accuracy from scratch is judged only beside a protocol
control that separates cells. Fast: synthetic trials tables, no search runs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nasbench_suite.experiments.darts_failure.control import (
    NOT_MEASURED,
    NOT_SEPARATED,
    SEPARATED,
)
from nasbench_suite.experiments.darts_failure.verdicts import (
    COLLAPSES,
    HOLDS,
    PAST_FIT,
    SHIFT,
    UNDECIDED,
    arm_verdicts,
    confound_table,
    outcome,
    scratch_verdict,
    share_decomposition,
    space_attribution,
)
from nasbench_suite.experiments.verdicts import CONTRADICTED, NOT_OBSERVED, OBSERVED

THRESHOLD, FIT = 0.5, 0.85
EPOCHS = 40


def _rows(label: str, shares: list[float], *, method: str = "darts",
          fit: float | None = 15.0, scratch: list[float] | None = None,
          remedy: str = "", rise: float = 0.0) -> list[dict]:
    """Final rows of one arm, one per seed (plus a remedy row when ``remedy``)."""
    out = []
    for seed, share in enumerate(shares):
        out.append({"arm": f"title of {label}", "arm_label": label, "method": method,
                    "seed": seed, "label": remedy or "final", "param_free_share_normal": share,
                    "param_free_chance": 0.5 if "relaxed" in label else 3 / 7,
                    "skip_share_normal": share, "fit_epoch": math.nan if fit is None else fit,
                    "epochs_run": EPOCHS, "free_normal_rise": rise,
                    "collapse_timing": "late" if share > 0.5 else "not at all",
                    "eig_ratio": 2.0, "train_acc_end": 0.95,
                    "scratch_acc": (scratch or [0.5] * len(shares))[seed]})
    return out


def _trials(*arms: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for arm in arms for row in arm])


def _labels(trials: pd.DataFrame) -> dict[str, str]:
    final = trials[trials["label"] == "final"]
    return dict(zip(final["arm_label"], final["arm"], strict=False))


@pytest.mark.parametrize(("shares", "fit", "rise", "expected"), [
    ([0.75, 0.6, 0.9], 15.0, 0.0, COLLAPSES),     # every seed above the threshold
    ([0.75, 0.6, 0.9], None, 0.0, COLLAPSES),     # early collapse: no fit needed to see it
    ([0.2, 0.3, 0.4], 15.0, 0.0, HOLDS),          # none, 25 epochs past the fit, settled
    ([0.2, 0.3, 0.4], 15.0, -0.1, HOLDS),         # falling is settled too
    ([0.2, 0.3, 0.4], 15.0, 0.12, UNDECIDED),     # still rising at the end: not yet
    ([0.2, 0.3, 0.4], 15.0, math.nan, UNDECIDED),  # a run too short to tell the trend
    ([0.2, 0.3, 0.4], EPOCHS - PAST_FIT + 1, 0.0, UNDECIDED),  # fitted too close to the end
    ([0.2, 0.3, 0.4], None, 0.0, UNDECIDED),      # never fitted: the regime was not reached
    ([0.2, 0.7, 0.4], 15.0, 0.0, UNDECIDED),      # the seeds disagree
    ([0.7, 0.8], 15.0, 0.0, UNDECIDED),           # two seeds decide nothing
    ([0.5, 0.5, 0.5], 15.0, 0.0, HOLDS),          # at the threshold is not above it
])
def test_an_arm_is_decided_only_by_every_seed_in_the_regime(shares, fit, rise,
                                                            expected) -> None:
    trials = _trials(_rows("darts-restricted", shares, fit=fit, rise=rise))
    assert outcome(trials, THRESHOLD) == expected
    [verdict] = arm_verdicts(trials, THRESHOLD, FIT, _labels(trials))
    assert verdict.verdict == {COLLAPSES: OBSERVED, HOLDS: CONTRADICTED,
                               UNDECIDED: NOT_OBSERVED}[expected]
    assert f"{len(shares)} seed(s), {EPOCHS} epochs" in verdict.budget


def test_only_darts_arms_and_final_architectures_get_a_collapse_verdict() -> None:
    trials = _trials(_rows("darts-relaxed", [0.2, 0.2, 0.2]),
                     _rows("darts-relaxed", [0.9, 0.9, 0.9], remedy="darts-es"),
                     _rows("gold-relaxed", [0.9, 0.9, 0.9], method="gold"))
    verdicts = arm_verdicts(trials, THRESHOLD, FIT, _labels(trials))
    assert [v.claim.split(":")[0] for v in verdicts] == ["title of darts-relaxed"]
    assert verdicts[0].verdict == CONTRADICTED  # the DARTS-ES replay's row is not the search's
    assert "0/3 seeds end above 0.5 parameter-free in normal cells" in verdicts[0].evidence
    assert "a uniform random cell 0.50" in verdicts[0].evidence  # the chance level beside it


COLLAPSE, HOLD = [0.8, 0.7, 0.9], [0.2, 0.3, 0.25]


@pytest.mark.parametrize(("restricted", "relaxed", "identity", "says"), [
    (HOLD, COLLAPSE, HOLD, "The stride-1 skip carries it"),
    (HOLD, COLLAPSE, COLLAPSE, "Not the stride-1 skip"),
    (COLLAPSE, COLLAPSE, COLLAPSE, "No change of the space carries a difference"),
    (HOLD, HOLD, None, "No change of the space carries a difference"),
    (HOLD, COLLAPSE, None, "the identity-skip arm is missing"),
    (HOLD, [0.2, 0.9, 0.3], HOLD, "Undecided at this budget"),
])
def test_the_identity_skip_arm_tells_which_change_carries_the_difference(
        restricted, relaxed, identity, says) -> None:
    arms = [_rows("darts-restricted", restricted), _rows("darts-relaxed", relaxed)]
    if identity is not None:
        arms.append(_rows("darts-relaxed-identity", identity))
    assert says in space_attribution(_trials(*arms), THRESHOLD)


def test_the_share_shift_between_the_spaces_splits_at_the_identity_skip_arm() -> None:
    trials = _trials(_rows("darts-restricted", [0.5, 0.0, 0.0, 0.1]),
                     _rows("darts-relaxed", [0.62, 0.5, 0.76]),
                     _rows("darts-relaxed-identity", [0.57, 0.24, 0.48]))
    text = share_decomposition(trials)
    # seeds all three arms share; the parts add up: +0.46 = +0.20 (skip) + +0.26 (rest)
    assert "paired on seeds 0, 1, 2:" in text
    assert "end +0.46 parameter-free" in text and "higher in 3 of 3 seeds" in text
    assert "BN skip carries +0.20" in text and "the rest of the space" in text
    assert "derivation) +0.26" in text
    assert "0.50 relaxed, 0.43 restricted" in text and "chance level by +0.07" in text
    lower = _trials(_rows("darts-restricted", [0.5, 0.5, 0.5]),
                    _rows("darts-relaxed", [0.2, 0.6, 0.3]),
                    _rows("darts-relaxed-identity", [0.2, 0.6, 0.3]))
    assert "end -0.13 parameter-free" in share_decomposition(lower)
    assert "lower in 2 of 3 seeds" in share_decomposition(lower)
    assert share_decomposition(_trials(_rows("darts-restricted", HOLD),
                                       _rows("darts-relaxed", COLLAPSE))) == ""


def test_each_change_is_compared_on_its_own_pair_paired_by_seed() -> None:
    trials = _trials(_rows("darts-restricted", HOLD), _rows("darts-relaxed", COLLAPSE),
                     _rows("darts-relaxed-identity", COLLAPSE),
                     _rows("darts-relaxed-paperlr", [0.2, 0.9, 0.3]),
                     _rows("darts2-relaxed", [0.6, 0.6], fit=None))
    table = confound_table(trials, THRESHOLD, _labels(trials)).set_index("with")
    whole = table.loc["title of darts-relaxed"]
    assert whole["changes the outcome"] == "yes"
    # paired by seed: relaxed - restricted = +0.6, +0.4, +0.65
    assert whole[SHIFT].startswith("0.55 ±")
    assert table.loc["title of darts-relaxed-identity", "changes the outcome"] == "no"
    assert table.loc["title of darts-relaxed-paperlr", "changes the outcome"] == \
        "undecided at this budget"
    second = table.loc["title of darts2-relaxed"]
    assert second[SHIFT].startswith("2 paired seed(s)")
    # no S2 arm in this folder: its pair is left out, not reported empty
    assert len(table) == 4


@pytest.mark.parametrize(("control", "gold", "expected"), [
    (SEPARATED, [0.60, 0.62, 0.61], OBSERVED),
    (SEPARATED, [0.40, 0.42, 0.41], CONTRADICTED),
    (NOT_SEPARATED, [0.60, 0.62, 0.61], NOT_OBSERVED),  # the protocol cannot tell cells apart
    (NOT_MEASURED, [0.60, 0.62, 0.61], NOT_OBSERVED),
])
def test_accuracy_from_scratch_is_judged_only_beside_a_separating_control(
        control, gold, expected) -> None:
    trials = _trials(_rows("darts-relaxed", COLLAPSE, scratch=[0.50, 0.51, 0.49]),
                     _rows("gold-relaxed", HOLD, method="gold", scratch=gold))
    verdict = scratch_verdict(trials, control, _labels(trials), "budget")
    assert verdict is not None and verdict.verdict == expected
    assert f"protocol control (relaxed all-skip vs DARTS V2): {control}" in verdict.evidence


def test_no_gold_arm_no_scratch_verdict() -> None:
    trials = _trials(_rows("darts-relaxed", COLLAPSE))
    assert scratch_verdict(trials, SEPARATED, _labels(trials), "budget") is None


def test_the_collapse_indicator_counts_normal_cells_only() -> None:
    """DARTS V2, the published good cell, keeps pools and skips in its reduction cell: over
    both cells it is 0.625 parameter-free and would read as collapsed at 0.5; its normal cell
    is 0.25. The all-skip cell is 1.0 either way."""
    from nasbench_suite.spaces import DARTS_V2

    from nasbench_suite.experiments.darts_failure.control import ALL_SKIP, control_genotypes

    assert DARTS_V2.parameter_free_share() == 0.625
    assert DARTS_V2.parameter_free_share(reduction=False) == 0.25
    for space in ("restricted", "relaxed"):
        cells = dict(control_genotypes(space, 5, 0))
        assert cells[ALL_SKIP].parameter_free_share(reduction=False) == 1.0


def test_the_rise_is_over_the_runs_last_epochs_and_unknown_for_a_short_run() -> None:
    from nasbench_suite.experiments.darts_failure.report import _rise

    shares = {e: 0.1 * (e >= 5) + 0.05 * (e >= 11) for e in range(-1, 13)}
    assert _rise(shares, 12) == pytest.approx(shares[12] - shares[12 - PAST_FIT])
    assert _rise(shares, 12) == pytest.approx(0.15)
    assert math.isnan(_rise(shares, PAST_FIT - 2))  # no share PAST_FIT epochs earlier


def test_a_scratch_verdict_without_trained_cells_says_so() -> None:
    trials = _trials(_rows("darts-relaxed", COLLAPSE, scratch=[math.nan] * 3),
                     _rows("gold-relaxed", HOLD, method="gold", scratch=[0.6, 0.6, 0.6]))
    verdict = scratch_verdict(trials, SEPARATED, _labels(trials), "budget")
    assert verdict is not None and verdict.verdict == NOT_OBSERVED
    assert verdict.evidence.startswith("no seed has both arms' cells trained from scratch")
