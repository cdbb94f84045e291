"""The words every experiment's verdict uses, and its one-row-per-claim table.

Three words only: "observed", "not observed at this budget" (the run was too short, too few
seeds, or the seeds disagree) and "contradicted" (the budget was enough and the opposite
happened). Each verdict carries the budget it was reached at, so a reader never meets a
word without the epochs and seeds that stand behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

OBSERVED = "observed"
NOT_OBSERVED = "not observed at this budget"
CONTRADICTED = "contradicted"
#: the fewest seeds a verdict or an interval is decided from: fewer give the seeds' values
MIN_SEEDS = 3


@dataclass(frozen=True)
class Verdict:
    claim: str
    source: str
    verdict: str
    evidence: str
    #: the epochs, seeds and shape the verdict was reached at
    budget: str


def verdict_markdown(found: Sequence[Verdict]) -> str:
    """The verdicts as one Markdown table (claim, source, verdict, budget, evidence)."""
    frame = pd.DataFrame([{"claim": v.claim, "source": v.source, "verdict": v.verdict,
                           "budget": v.budget, "evidence": v.evidence} for v in found],
                         columns=["claim", "source", "verdict", "budget", "evidence"])
    return frame.to_markdown(index=False, disable_numparse=True) + "\n"


__all__ = ["CONTRADICTED", "MIN_SEEDS", "NOT_OBSERVED", "OBSERVED", "Verdict",
           "verdict_markdown"]
