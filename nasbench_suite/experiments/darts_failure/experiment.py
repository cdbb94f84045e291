"""`nasbench reproduce darts-failure`: DARTS in the enlarged space, measured.

The GOLD-NAS paper says differentiable methods fail in the relaxed space but gives no
settings. This experiment runs DARTS (softmax, bi-level, first order unless
``second_order``) on the restricted and on the relaxed space and GOLD-NAS on the relaxed
space, over several seeds, with the same data and the same epoch budget (GOLD-NAS stops
earlier when it passes its FLOPs floor), as one sweep. Optional arms replay the literature's
remedies on the DARTS searches (nasbench_suite.experiments.evals): DARTS-ES (``darts_es``) and
P-DARTS's skip limit (``pdarts_skips``). Every architecture is trained from scratch as a Ray
task as soon as its search finishes, and a report (experiments.darts_failure.report) gathers,
per arm, the collapse indicators over the epochs (parameter-free share, skip connections in
normal cells, derived FLOPs, the Hessian eigenvalue, inherited accuracies on the scoring
split, how far the alphas moved) and at the end, with the accuracy from scratch.

Everything resumes: finished searches and trainings are skipped, interrupted ones resume
from their checkpoints. The folder::

    <out>/<name>/
      sweep.yaml, trials.csv, <trial>/    the sweep (nasbench_suite.sweep.tune)
      reproduce.json                      this experiment's resolved settings
      evals/<trial>/<label>/              one training from scratch (store.evalfolder)
      report/                             report.md, CSVs, figures with their data
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasbench_suite.errors import UsageError
from nasbench_suite.files import read_json, write_json
from nasbench_suite.store.runfolder import inside
from nasbench_suite.sweep.spec import SweepSpec, check_name, expand
from nasbench_suite.sweep.tune import Resources, run_sweep, worker_env

EXPERIMENTS = ("darts-failure",)
MANIFEST = "reproduce.json"


@dataclass
class ExperimentConfig:
    """What every `reproduce` experiment has: its data, its folder, its seeds and how its
    searches and trainings from scratch are resourced. Search and evaluation details come
    from their presets and ``search_set`` / ``eval_set`` overrides."""

    experiment: str = ""
    name: str | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    preset: str = "mini"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    search_set: dict[str, Any] = field(default_factory=dict)
    eval_set: dict[str, Any] = field(default_factory=dict)
    out: str = "results/reproduce"
    threads: int | None = None
    device: str | None = None
    skip_eval: bool = False
    #: resources of each training from scratch (a Ray task)
    eval_cpus: float = 1.0
    eval_gpus: int = 0

    @property
    def sweep_name(self) -> str:
        from nasbench_suite.data.datasets import dataset_slug

        return self.name or f"{self.experiment}-{dataset_slug(self.dataset)}"

    def validate_common(self) -> None:
        """The checks every experiment shares; the experiment's own ``validate`` adds its."""
        if self.name is not None:
            check_name(self.name, "--name")
        if not self.seeds:
            raise UsageError("give at least one seed")
        if any(s < 0 or s >= 2**32 for s in self.seeds):
            raise UsageError("seeds must be in [0, 2^32)")
        if not self.eval_cpus > 0 or self.eval_gpus < 0:
            raise UsageError("--eval-cpus must be positive and --eval-gpus 0 or more")


@dataclass
class ReproduceConfig(ExperimentConfig):
    """The darts-failure experiment's knobs."""

    experiment: str = "darts-failure"
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
        self.validate_common()
        if self.experiment not in EXPERIMENTS:
            raise UsageError(f"unknown experiment {self.experiment!r}; choose from "
                             f"{', '.join(EXPERIMENTS)}")
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
        if self.darts_es and self.hessian_every != 1:
            raise UsageError("--darts-es needs the eigenvalue every epoch (--hessian-every 1)")
        if self.pdarts_skips is not None and self.pdarts_skips < 0:
            raise UsageError(f"--pdarts-skips must be >= 0, got {self.pdarts_skips}")


# -- the sweep ---------------------------------------------------------------------------------
def sweep_spec(cfg: ReproduceConfig) -> SweepSpec:
    """DARTS on both spaces and GOLD-NAS on the relaxed one, the same epochs and data."""
    fixed: dict[str, Any] = {"preset": cfg.preset, "epochs": cfg.epochs,
                             "hessian_every": cfg.hessian_every,
                             "hessian_iters": cfg.hessian_iters,
                             "score_every": cfg.score_every, **cfg.search_set}
    for key in ("data_dir", "threads", "device"):
        if getattr(cfg, key) is not None:
            fixed[key] = getattr(cfg, key)
    return SweepSpec(
        name=cfg.sweep_name,
        methods={"darts": {"hp.order": 2 if cfg.second_order else 1}, "gold": {}},
        method_spaces={"darts": ["restricted", "relaxed"], "gold": ["relaxed"]},
        spaces=["restricted", "relaxed"], datasets=[cfg.dataset], seeds=list(cfg.seeds),
        fixed=fixed)


def run_reproduce(cfg: ReproduceConfig, resources: Resources | None = None,
                  quiet: bool = False, log: Callable[[str], None] = print) -> Path:
    """Searches on Ray Tune, trainings from scratch as Ray tasks scheduled as each search
    finishes (one Ray session, local or ``resources.address``), then the report; returns the
    experiment folder."""
    from nasbench_suite.experiments.darts_failure.report import write_report
    from nasbench_suite.experiments.evals import Launcher
    from nasbench_suite.sweep.ray_session import ray_session

    cfg.validate()
    resources = resources or Resources()
    resources.validate()
    spec = sweep_spec(cfg)
    sweep_dir = (Path(cfg.out) / spec.name).resolve()
    if not inside(sweep_dir, Path(cfg.out)):
        raise UsageError(f"experiment name {spec.name!r} leads outside {cfg.out}")
    trials = expand(spec, sweep_dir, log)  # every config checked before anything is written
    resolve_eval_settings(cfg)  # and the evaluation's, before any search runs
    manifest = sweep_dir / MANIFEST
    if manifest.exists():
        before = read_json(manifest)
        if before.get("config", {}).get("experiment") != cfg.experiment:
            raise UsageError(f"{sweep_dir} holds another experiment; give --name or --out")
    log(f"reproduce {cfg.experiment}: {len(trials)} searches in {sweep_dir}")
    log("resolved config: " + json.dumps(asdict(cfg), default=str))
    with ray_session(resources.address, join_timeout=resources.join_timeout,
                     env_vars=worker_env(max(resources.cpus_per_trial, cfg.eval_cpus))):
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_json(manifest, {"config": asdict(cfg),
                              "trials": [t.trial_id for t in trials]})
        launcher = None if cfg.skip_eval else Launcher(
            eval_settings(cfg), lambda run: eval_overrides(cfg, run.config_dict()), log)
        run_sweep(spec, cfg.out, resources, quiet=quiet, log=log,
                  on_finished=launcher.submit if launcher else None)
        failed = launcher.wait() if launcher else []
    for line in failed:
        log(f"training from scratch failed: {line}")
    written = write_report(sweep_dir)
    log(f"report: {written[0]}")
    return sweep_dir


def eval_settings(cfg: ReproduceConfig) -> Any:
    from nasbench_suite.experiments.evals import Settings

    return Settings(series_seeds=tuple(cfg.series_seeds),
                    darts_es=cfg.darts_es, pdarts_skips=cfg.pdarts_skips,
                    eval_cpus=cfg.eval_cpus, eval_gpus=cfg.eval_gpus)


# -- training from scratch ---------------------------------------------------------------------
def eval_overrides(cfg: ReproduceConfig, run_cfg: dict[str, Any]) -> dict[str, Any]:
    """The evaluation config of one trial's architectures (its dataset and seed)."""
    overrides: dict[str, Any] = {"preset": cfg.eval_preset, "dataset": run_cfg["dataset"],
                                 "seed": run_cfg["seed"], **cfg.eval_set}
    for key in ("data_dir", "threads", "device"):
        if getattr(cfg, key) is not None:
            overrides.setdefault(key, getattr(cfg, key))
    if cfg.eval_epochs is not None:
        overrides["epochs"] = cfg.eval_epochs
    if cfg.eval_depth == "searched":
        overrides["restricted_layers"] = run_cfg["layers"]
    return overrides


def resolve_eval_settings(cfg: ReproduceConfig) -> None:
    """Check ``--eval-set`` and the evaluation preset before any search runs."""
    from nasbench_suite.search.scratch import resolve_eval_config

    if cfg.skip_eval:
        return
    resolve_eval_config(eval_overrides(cfg, {"dataset": cfg.dataset, "seed": cfg.seeds[0],
                                             "layers": 5}))
