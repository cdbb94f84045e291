"""The claims experiment's settings (nasbench_suite.experiments.claims)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nasbench_suite.config import check_positive
from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.base import MANIFEST, ExperimentConfig
from nasbench_suite.files import read_json

#: the experiment's registry name
NAME = "claims"
#: the searches: method -> its space
ARMS = {"darts": "restricted", "edas": "restricted", "padnas": "restricted",
        "nse": "restricted", "gold": "relaxed"}
#: the long darts-failure reference, looked for beside the experiment's folder
DARTS_FAILURE_PATTERN = "darts-failure-long-*"


@dataclass
class ClaimsConfig(ExperimentConfig):
    """The claims experiment's knobs."""

    experiment: str = NAME
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    #: search epochs of DARTS, EDAS, NSE and GOLD-NAS (a cap for GOLD-NAS)
    epochs: int = 10
    #: PAD-NAS's epochs, split over its stages (None: the preset's; single-path steps are
    #: cheap and the stages need enough of them to leave chance accuracy)
    padnas_epochs: int | None = None
    #: epochs of every training from scratch (one short schedule for all)
    eval_epochs: int = 2
    #: architectures of PAD-NAS's rank correlation
    rankcorr_archs: int = 10
    #: a `reproduce darts-failure` folder for the DARTS-in-the-relaxed-space row; None: the
    #: committed long reference if there is one (resolved when the experiment runs)
    darts_failure: str | None = None
    #: EDAS's "no drop": its gap's interval must lie below this (accuracy, 0-1)
    gap_tolerance: float = 0.02
    confidence: float = 0.95
    resamples: int = 2000

    def validate(self) -> None:
        super().validate()
        check_positive(self, "epochs", "eval_epochs", "padnas_epochs", flags=True)
        if self.rankcorr_archs < 2:
            raise UsageError(f"--rankcorr-archs must be at least 2, got {self.rankcorr_archs}")
        if not 0 < self.confidence < 1:
            raise UsageError(f"--confidence must be in (0, 1), got {self.confidence}")
        if self.resamples < 100:
            raise UsageError(f"--resamples must be at least 100, got {self.resamples}")
        if not 0 <= self.gap_tolerance < 1:
            raise UsageError(f"--gap-tolerance must be in [0, 1), got {self.gap_tolerance}")
        if self.darts_failure:
            check_darts_failure(Path(self.darts_failure))


def check_darts_failure(folder: Path) -> None:
    """A darts-failure experiment folder, or a UsageError."""
    from nasbench_suite.experiments.darts_failure.config import NAME as DARTS_FAILURE

    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise UsageError(f"--darts-failure {folder} is not a reproduce darts-failure folder "
                         f"(no {MANIFEST})")
    if read_json(manifest).get("config", {}).get("experiment") != DARTS_FAILURE:
        raise UsageError(f"--darts-failure {folder} holds another experiment")


def resolve_darts_failure(cfg: ClaimsConfig, sweep_dir: Path) -> Path | None:
    """The darts-failure folder the report reads: ``darts_failure`` if given (a relative
    path that is not found from here is looked for beside the experiment), else the last
    ``darts-failure-long-*`` beside the experiment (in results/reference/: the committed
    long reference), else None. Resolved when the report is built, so `nasbench figures`
    picks up a long reference committed later."""
    if cfg.darts_failure:
        given = Path(cfg.darts_failure)
        beside = sweep_dir.parent / given.name  # a relative path given from another folder
        return beside if not given.is_absolute() and not given.exists() and beside.is_dir() \
            else given
    found = sorted(p for p in sweep_dir.parent.glob(DARTS_FAILURE_PATTERN) if p.is_dir())
    return found[-1] if found else None
