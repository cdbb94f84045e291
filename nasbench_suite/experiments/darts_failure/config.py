"""The darts-failure experiment's settings (nasbench_suite.experiments.darts_failure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.base import ExperimentConfig

#: the experiment's registry name
NAME = "darts-failure"

#: per-epoch indicators: (metrics.jsonl column, label)
INDICATORS: tuple[tuple[str, str], ...] = (
    ("param_free_share", "parameter-free share"),
    ("skip_share_normal", "skip share, normal cells"),
    ("derived_mmacs", "derived MFLOPs (mult-adds)"),
    ("hessian_eig", "Hessian eigenvalue (largest)"),
    ("supernet_acc_score", "supernet acc. (score split)"),
    ("derived_acc_score", "derived acc. (score split)"),
    ("edge_spread_median", "median edge spread"),
)


@dataclass
class ReproduceConfig(ExperimentConfig):
    """The darts-failure experiment's knobs."""

    experiment: str = NAME
    #: search epochs of every method (GOLD-NAS: a cap; it stops at its floor)
    epochs: int = 20
    second_order: bool = False
    hessian_every: int = 2
    hessian_iters: int = 20
    eval_preset: str = "mini"
    eval_epochs: int | None = None
    #: "searched": train every architecture at its searched depth (equal terms across the
    #: spaces); "preset": the evaluation preset's depth (DARTS: 20 cells for the restricted
    #: space)
    eval_depth: str = "searched"
    #: evaluate every recorded architecture of the GOLD-NAS series of these seeds
    series_seeds: list[int] = field(default_factory=list)
    #: inherited accuracies on the scoring split every N epochs (0: at the end only)
    score_every: int = 0
    #: the first epoch whose parameter-free share exceeds this is an arm's collapse epoch
    collapse_threshold: float = 0.5
    #: DARTS-ES replayed on every DARTS search (needs the eigenvalue every epoch)
    darts_es: bool = False
    #: P-DARTS's skip limit replayed on every restricted-space DARTS search (None: off)
    pdarts_skips: int | None = None

    def validate(self) -> None:
        super().validate()
        if self.epochs <= 0:
            raise UsageError(f"epochs must be a positive integer, got {self.epochs}")
        if self.eval_epochs is not None and self.eval_epochs <= 0:
            raise UsageError(f"eval epochs must be a positive integer, got {self.eval_epochs}")
        if self.hessian_every < 0:
            raise UsageError(f"hessian-every must be 0 or more, got {self.hessian_every}")
        if self.eval_depth not in ("searched", "preset"):
            raise UsageError(f"eval depth must be 'searched' or 'preset', got "
                             f"{self.eval_depth!r}")
        missing = sorted(set(self.series_seeds) - set(self.seeds))
        if missing:
            raise UsageError(f"series seed {missing[0]} is not among the seeds")
        if self.score_every < 0:
            raise UsageError(f"score-every must be 0 or more, got {self.score_every}")
        if not 0 < self.collapse_threshold < 1:
            raise UsageError(f"collapse threshold must be in (0, 1), got "
                             f"{self.collapse_threshold}")
        if self.darts_es and self.hessian_every not in (1, 2):
            raise UsageError("--darts-es needs the eigenvalue every 2 epochs, as RobustDARTS "
                             "measures it, or every epoch (--hessian-every 2 or 1)")
        if self.pdarts_skips is not None and self.pdarts_skips < 0:
            raise UsageError(f"--pdarts-skips must be >= 0, got {self.pdarts_skips}")
