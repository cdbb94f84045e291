"""The darts-failure experiment's settings (nasbench_suite.experiments.darts_failure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nasbench_suite.errors import UsageError
from nasbench_suite.experiments.base import ExperimentConfig

#: the experiment's registry name
NAME = "darts-failure"

#: RobustDARTS's S2 (automl/RobustDARTS src/spaces.py, ``s2``): every edge of the DARTS cell
#: chooses between these two ops only, no ``none``. The arm gives them as one comma-separated
#: string (a sweep's grid axis must be a scalar for Ray Tune; resolve_config splits it).
S2_OPS = ("skip_connect", "sep_conv_3x3")


@dataclass(frozen=True)
class Arm:
    """One search arm: a method on a space with the run-config overrides that make it what it
    is. The overrides go into the sweep as one-value grid axes, so an arm's trial folders say
    what differs (``...-s0-skip=identity``) and every arm runs at the same data and budget;
    ``qualifier`` is what the report adds to the method-and-space name."""

    label: str
    method: str
    space: str
    qualifier: str = ""
    overrides: tuple[tuple[str, Any], ...] = ()


#: every arm the experiment knows, in report order. The confounds they split (issue 27): the
#: space (restricted vs relaxed), the relaxed space's stride-1 skip in the search supernet
#: (GOLD-NAS's non-affine BN, the relaxed space's own, vs DARTS's identity), the op set
#: (RobustDARTS's S2 on the restricted topology), the alpha learning rate (the mini preset's
#: rescaling to the paper's alpha displacement, ``hp.alpha_budget_steps``, vs the paper's Adam
#: lr 3e-4 as it is: ``alpha_budget_steps`` null) and the order.
ARM_TABLE: tuple[Arm, ...] = (
    Arm("darts-restricted", "darts", "restricted"),
    Arm("darts-restricted-s2", "darts", "restricted", "S2 ops {skip_connect, sep_conv_3x3}",
        (("ops", ",".join(S2_OPS)),)),
    Arm("darts-restricted-paperlr", "darts", "restricted", "alpha lr 3e-4 (no rescaling)",
        (("hp.alpha_budget_steps", None),)),
    Arm("darts-relaxed", "darts", "relaxed"),
    Arm("darts-relaxed-identity", "darts", "relaxed", "identity skip",
        (("skip", "identity"),)),
    Arm("darts-relaxed-paperlr", "darts", "relaxed", "alpha lr 3e-4 (no rescaling)",
        (("hp.alpha_budget_steps", None),)),
    Arm("darts2-relaxed", "darts", "relaxed", "", (("hp.order", 2),)),
    Arm("gold-relaxed", "gold", "relaxed"),
)
ARMS_BY_LABEL: dict[str, Arm] = {a.label: a for a in ARM_TABLE}
#: the experiment's first three arms (the committed references ran these)
BASE_ARMS = ("darts-restricted", "darts-relaxed", "gold-relaxed")
#: every arm: ``--arms all``
ALL_ARMS = tuple(a.label for a in ARM_TABLE)


def arm_of(method: str, space: str, config: dict[str, Any]) -> Arm:
    """The arm a trial's saved config belongs to: the known arm whose overrides it holds
    (the most specific first), or the plain method-on-space arm."""
    hp = config.get("hp") or {}

    def holds(key: str, value: Any) -> bool:
        got = hp.get(key[3:]) if key.startswith("hp.") else config.get(key)
        if key == "ops" and isinstance(value, str):  # the sweep's scalar spelling of a list
            return list(got or []) == value.split(",")
        return got == value

    candidates = [a for a in ARM_TABLE if a.method == method and a.space == space]
    for arm in sorted(candidates, key=lambda a: -len(a.overrides)):
        if arm.overrides and all(holds(k, v) for k, v in arm.overrides):
            return arm
    return next((a for a in candidates if not a.overrides), Arm(f"{method}-{space}", method,
                                                                  space))

#: per-epoch indicators: (column, label): metrics.jsonl's, and the normal cells'
#: parameter-free share (the collapse indicator), which the report reads from arch.jsonl
INDICATORS: tuple[tuple[str, str], ...] = (
    ("param_free_share_normal", "parameter-free share, normal cells"),
    ("train_acc", "supernet training accuracy"),
    ("train_loss", "supernet training loss"),
    ("param_free_share", "parameter-free share, all cells"),
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
    #: the first epoch whose normal cells' parameter-free share exceeds this is an arm's
    #: collapse epoch
    collapse_threshold: float = 0.5
    #: DARTS-ES replayed on every DARTS search (needs the eigenvalue every epoch)
    darts_es: bool = False
    #: P-DARTS's skip limit replayed on every restricted-space DARTS search (None: off)
    pdarts_skips: int | None = None
    #: the search arms (ARM_TABLE labels; ``all``: every arm)
    arms: list[str] = field(default_factory=lambda: list(BASE_ARMS))
    #: supernet training accuracy that counts as fitted: the report gives the epoch each search
    #: passed it and says whether a collapse came before it (early), after it (late) or not
    fit_threshold: float = 0.85
    #: the protocol control (experiments/darts_failure/control.py): this many seeded random
    #: cells per space trained from scratch beside the all-skip cells and DARTS V2, each over
    #: the seeds, under the experiment's protocol (0: no control)
    control_cells: int = 0

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
        if isinstance(self.arms, str):
            self.arms = [a.strip() for a in self.arms.split(",") if a.strip()]
        if list(self.arms) == ["all"]:
            self.arms = list(ALL_ARMS)
        if not self.arms:
            raise UsageError("give at least one arm")
        unknown = [a for a in self.arms if a not in ARMS_BY_LABEL]
        if unknown:
            raise UsageError(f"unknown arm {unknown[0]!r}; choose from all, "
                             f"{', '.join(ALL_ARMS)}")
        if len(set(self.arms)) != len(self.arms):
            raise UsageError("--arms lists an arm twice")
        self.arms = [a.label for a in ARM_TABLE if a.label in self.arms]  # report order
        if self.second_order and "darts2-relaxed" in self.arms:
            raise UsageError("--second-order makes every DARTS arm second order: leave out "
                             "the darts2-relaxed arm")
        if not 0 < self.fit_threshold < 1:
            raise UsageError(f"fit threshold must be in (0, 1), got {self.fit_threshold}")
        if not 0 <= self.control_cells <= 1000:
            raise UsageError(f"--control-cells must be in [0, 1000], got {self.control_cells}")
