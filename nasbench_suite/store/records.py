"""The typed records of run and evaluation folders: one dataclass per JSON file.

A leaf: it imports nothing of the suite but its error type, so any module (the search loop,
sweeps, experiments, reports) can read a record without pulling in the folder logic. The
folders themselves (nasbench_suite.store.runfolder, .evalfolder) read and write them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from nasbench_suite.errors import UsageError


def record(cls: type, data: Any, where: str) -> Any:
    """A dataclass from a mapping: unknown keys are ignored (newer writers), missing keys
    take the field's default, a missing key without one is a UsageError naming ``where``."""
    if not isinstance(data, dict):
        raise UsageError(f"{where} does not hold a JSON object")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = data[f.name]
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UsageError(f"{where} lacks {f.name!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where} is malformed ({exc})") from None


@dataclass(frozen=True)
class RunInfo:
    """run.json: what a run is, written when it starts (before its first epoch)."""

    layout: int
    suite: str
    created: str
    dataset_id: str
    #: the space's layout, in the order of every (G, E, O) array of the run
    groups: list[str]
    ops: list[str]
    #: per edge, (input node, node it feeds)
    edges: list[list[int]]
    #: per group: whether it drives reduction cells
    reduction: list[bool] = field(default_factory=list)
    #: what the data gave the network: image channels, classes, image size (pixels a side)
    in_channels: int | None = None
    num_classes: int | None = None
    image_size: int | None = None
    #: how the process ran: torch threads and OpenMP's wait policy (nasbench_suite.threads)
    threads: int | None = None
    omp_wait_policy: str | None = None
    #: the thread counts of resumes that overrode the run's own (``--resume --threads``),
    #: in order: the result may differ from an uninterrupted run's in the last bits
    resumed_threads: list[int] = field(default_factory=list)

    def net_shape(self, config: dict[str, Any]) -> Any:
        """The space's NetShape of this run (cost tables, derivations after the fact)."""
        from nasbench_suite.spaces import NetShape

        if None in (self.in_channels, self.num_classes, self.image_size):
            raise UsageError("this run folder (layout 1) does not record its input shape")
        return NetShape(int(config["channels"]), int(config["layers"]), int(self.in_channels),
                        int(self.num_classes), int(self.image_size),
                        int(config.get("nodes", 4)))


@dataclass(frozen=True)
class Inherited:
    """Accuracies with the supernet's weights (batch norm recalibrated) on one split.

    ``supernet_acc`` is the supernet as the method searches it; ``derived_acc`` the derived
    network; ``gap`` their difference. A method whose supernet *is* its derived path
    (PAD-NAS) measures no gap: both are None there, never 0.
    """

    split: str
    derived_acc: float | None
    supernet_acc: float | None = None
    gap: float | None = None


@dataclass(frozen=True)
class DerivedCost:
    """The derived network at the search size (multiply-adds: what papers call FLOPs)."""

    macs: float
    flops: float
    params: int
    param_free_share: float


@dataclass(frozen=True)
class Summary:
    """summary.json, written last: the run's outcome."""

    method: str
    space: str
    dataset: str
    seed: int
    epochs_run: int
    search_time_s: float
    inherited: Inherited
    derived: DerivedCost
    dataset_id: str = ""
    preset: str = ""
    device: str = ""
    stop_reason: str = ""
    final: dict[str, Any] = field(default_factory=dict)
    #: how far the architecture parameters moved (learning stats of the last epoch)
    learning: dict[str, float] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    space_log10_size: float | None = None
    counter: str = ""
    torch: str = ""
    layout: int = 1
    series: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the published ground truth (``gt_*`` columns, nasbench_suite.groundtruth) of the cell
    #: the table scores for the final genotype (``gt_arch``: one op per edge, where the
    #: genotype in genotype.json may keep several); None in a space without a table
    ground_truth: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Summary:
        if not isinstance(data, dict):
            raise UsageError(f"{where} does not hold a JSON object")
        data = dict(data)
        inherited = data.get("inherited") or {}
        data["inherited"] = record(Inherited, {"split": data.get("heldout_split", "?"),
                                                **inherited}, f"{where} (inherited)")
        data["derived"] = record(DerivedCost, data.get("derived"), f"{where} (derived)")
        return record(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RankCorr:
    """rankcorr.json: does one-shot accuracy rank architectures as training them does?

    ``genotypes`` are sampled once (seeded) from the unpruned search space within the cost
    window; ``oneshot[stage]`` their accuracies under that stage's supernet (inherited
    weights, batch norm recalibrated, on ``split``), ``standalone`` their test accuracies
    after one short training from scratch (the same schedule for all), ``tau[stage]``
    scipy.stats.kendalltau of the two (None when undefined: constant accuracies).
    """

    archs: int
    seed: int
    eval_epochs: int
    split: str
    stages: list[str]
    genotypes: list[dict[str, Any]]
    macs: list[float]
    oneshot: dict[str, list[float]]
    standalone: list[float]
    tau: dict[str, float | None]
    p_value: dict[str, float | None] = field(default_factory=dict)
    cost_window: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class TruthCorr:
    """truthcorr.json: does the supernet rank cells as the published table does?

    ``genotypes`` are the space's fixed sample of ``cells`` cells for ``seed``, spread over
    the table's accuracy range (nasbench_suite.groundtruth.SAMPLES: the same cells for every
    method and run); ``truth`` their table accuracy in ``column`` (percent);
    ``oneshot[stage]`` their accuracy under that stage's supernet (``final``: the finished
    run's; PAD-NAS: each kept stage), inherited weights, batch norm recalibrated, on
    ``split`` (a fraction); ``tau``/``rho`` scipy.stats.kendalltau/spearmanr of the two
    (None where undefined: constant accuracies); ``top[stage]`` the indices of the
    supernet's best ``len(top[stage])`` cells (ties in sample order), ``top_truth[stage]``
    their table accuracies.
    """

    cells: int
    seed: int
    split: str
    column: str
    stages: list[str]
    genotypes: list[dict[str, Any]]
    archs: list[str]
    truth: list[float]
    oneshot: dict[str, list[float]]
    tau: dict[str, float | None]
    rho: dict[str, float | None]
    tau_p: dict[str, float | None]
    rho_p: dict[str, float | None]
    top: dict[str, list[int]]
    top_truth: dict[str, list[float]]


@dataclass(frozen=True)
class TrialRecord:
    """trial.json: a sweep trial's identity (its grid values and their label)."""

    sweep: str
    trial: str
    axes: dict[str, Any] = field(default_factory=dict)
    variant: str = ""


@dataclass(frozen=True)
class Failure:
    """failure.json: why a run failed."""

    reason: str
    error_type: str | None = None
    epochs_done: int = 0
    traceback: str | None = None


@dataclass(frozen=True)
class ArchRecord:
    """One row of arch.jsonl: the architecture after an epoch."""

    epoch: int
    weights: list[Any]
    active: list[Any]
    genotype: dict[str, Any]


# -- the run folder ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalResult:
    """result.json of a training from scratch (test split read once, after the last epoch)."""

    label: str
    space: str
    dataset: str
    seed: int
    epochs: int
    channels: int
    layers: int
    test_acc: float
    test_loss: float
    macs: float
    params: int
    train_time_s: float
    counter: str = ""
    dataset_id: str = ""
    #: wall-clock start and end (epoch seconds): when the evaluation ran
    started: float | None = None
    finished: float | None = None
    #: how the process ran: torch threads and OpenMP's wait policy
    threads: int | None = None
    omp_wait_policy: str | None = None
