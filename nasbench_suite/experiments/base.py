"""What an experiment is, and the one driver that runs every experiment.

An experiment is a sweep of searches, trainings from scratch scheduled as each search
finishes, an optional closing step over the finished runs, and a report written from the
experiment's folder alone. Each experiment module defines its config (a subclass of
:class:`ExperimentConfig`) and one :class:`Experiment` value; the registry
(nasbench_suite.experiments) names it; :func:`run_experiment` runs any of them the same way,
so expanding the sweep, checking the folder, starting Ray, writing the manifest and the
report are written once. The folder::

    <out>/<name>/
      reproduce.json                      the manifest: the resolved config, the trials and
                                          the sweeps (as data)
      sweep.yaml, trials.csv, <trial>/    the sweep (nasbench_suite.sweep.tune); an
                                          experiment of several sweeps (arms whose overrides
                                          differ) runs them one after the other in the one Ray
                                          session: trials.csv lists every trial, sweep.yaml
                                          holds the last sweep, the manifest all of them
      evals/<trial>/<label>/              one training from scratch (store.evalfolder)
      report/                             the report, its tables and figures
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from nasbench_suite.errors import UsageError
from nasbench_suite.files import inside, read_json, write_json
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.sweep.spec import SweepSpec, check_name, expand
from nasbench_suite.sweep.trials import write_trials_csv
from nasbench_suite.sweep.tune import TRIALS_CSV, Resources, check_local_fit, run_sweep, worker_env

#: the manifest of an experiment folder: the resolved config and the trials
MANIFEST = "reproduce.json"

Log = Callable[[str], None]
#: upper bounds of experiments' integer flags (the search and evaluation fields have theirs
#: in nasbench_suite.config.INT_LIMITS): a typo of a few digits is refused, not run for ever
EXPERIMENT_INT_LIMITS = {"epochs": 100_000, "eval_epochs": 100_000, "padnas_epochs": 100_000,
                         "rankcorr_archs": 10_000, "resamples": 1_000_000,
                         "hessian_every": 100_000, "hessian_iters": 10_000,
                         "score_every": 100_000, "pdarts_skips": 1000, "threads": 4096,
                         "eval_gpus": 4096}
C = TypeVar("C", bound="ExperimentConfig")


@dataclass
class ExperimentConfig:
    """What every experiment has: its data, its folder, its seeds and how its searches and
    trainings from scratch are resourced. Search and evaluation details come from their
    presets and ``search_set`` / ``eval_set`` overrides."""

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

    def validate(self) -> None:
        """The checks every experiment shares; an experiment's config extends them."""
        if self.name is not None:
            check_name(self.name, "--name")
        if not self.seeds:
            raise UsageError("give at least one seed")
        if any(s < 0 or s >= 2**32 for s in self.seeds):
            raise UsageError("seeds must be in [0, 2^32)")
        if not self.eval_cpus > 0 or self.eval_gpus < 0:
            raise UsageError("--eval-cpus must be positive and --eval-gpus 0 or more")
        for f in fields(self):
            value = getattr(self, f.name)
            limit = EXPERIMENT_INT_LIMITS.get(f.name)
            if limit is not None and isinstance(value, int) and value > limit:
                raise UsageError(f"--{f.name.replace('_', '-')} must be at most {limit:,}, "
                                 f"got {value}")

    def shared_fields(self) -> dict[str, Any]:
        """The run fields that the user gave for every search and training (data folder,
        threads, device)."""
        return {key: getattr(self, key) for key in ("data_dir", "threads", "device")
                if getattr(self, key) is not None}

    @classmethod
    def from_manifest(cls: type[C], manifest: dict[str, Any]) -> C:
        """The config a manifest recorded (fields this version does not know are left out:
        a folder written by an older version still reads)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in manifest["config"].items() if k in known})


@dataclass(frozen=True)
class Experiment:
    """One registry entry: what the driver, the CLI and `nasbench figures` need of it."""

    name: str
    #: one line for --help and `nasbench list`
    summary: str
    config: type[ExperimentConfig]
    #: the `reproduce` flags that only this experiment takes (others refuse them)
    flags: tuple[str, ...]
    sweep_spec: Callable[[Any], SweepSpec]
    #: checks the trainings' settings before any search runs (a UsageError if wrong)
    check_evals: Callable[[Any], None]
    #: the scheduler of trainings from scratch (nasbench_suite.experiments.evals.Launcher)
    launcher: Callable[[Any, Log], Any]
    #: writes report/ from the folder alone; returns the files, report.md first
    write_report: Callable[[Path, Path | None], list[Path]]
    #: a closing step over the finished runs, after the trainings (None: none)
    finish: Callable[[Any, list[RunFolder], Log], None] | None = None
    #: several sweeps into the one folder (arms a single method x space grid cannot hold:
    #: the same method and space with different overrides); None: ``[sweep_spec(cfg)]``.
    #: Every sweep must have the folder's name and trial ids no other sweep has.
    sweep_specs: Callable[[Any], list[SweepSpec]] | None = None

    def specs(self, cfg: Any) -> list[SweepSpec]:
        """The experiment's sweeps for ``cfg``, in the order they run."""
        return self.sweep_specs(cfg) if self.sweep_specs is not None else [self.sweep_spec(cfg)]


def expand_all(specs: list[SweepSpec], sweep_dir: Path, log: Log) -> list[Any]:
    """Every trial of every sweep, checked before anything is written: a trial id two sweeps
    share would make one folder of two runs."""
    trials: list[Any] = []
    seen: set[str] = set()
    for spec in specs:
        if spec.name != specs[0].name:
            raise UsageError(f"an experiment's sweeps share one folder name, got {spec.name!r} "
                             f"beside {specs[0].name!r}")
        for trial in expand(spec, sweep_dir, log):
            if trial.trial_id in seen:
                raise UsageError(f"two sweeps of the experiment have trial {trial.trial_id}")
            seen.add(trial.trial_id)
            trials.append(trial)
    return trials


def manifest_of(folder: Path) -> dict[str, Any]:
    """An experiment folder's manifest, or a UsageError naming what is missing."""
    path = folder / MANIFEST
    if not path.is_file():
        raise UsageError(f"{folder} is not a reproduce folder (no {MANIFEST})")
    return read_json(path)


def run_experiment(experiment: Experiment, cfg: ExperimentConfig,
                   resources: Resources | None = None, quiet: bool = False,
                   log: Log = print) -> Path:
    """Searches on Ray Tune, trainings from scratch as Ray tasks scheduled as each search
    finishes (one Ray session, local or ``resources.address``), the closing step, then the
    report; returns the experiment folder. Everything is checked before anything is written;
    a second call skips what is done and resumes what was interrupted."""
    from nasbench_suite.sweep.ray_session import ray_session

    cfg.validate()
    resources = resources or Resources()
    resources.validate()
    if resources.address is None and not cfg.skip_eval:
        check_local_fit(cfg.eval_cpus, cfg.eval_gpus, "--eval-cpus", "--eval-gpus")
    specs = experiment.specs(cfg)
    sweep_dir = (Path(cfg.out) / specs[0].name).resolve()
    if not inside(sweep_dir, Path(cfg.out)):
        raise UsageError(f"experiment name {specs[0].name!r} leads outside {cfg.out}")
    trials = expand_all(specs, sweep_dir, log)  # every config checked before anything is written
    if not cfg.skip_eval:
        experiment.check_evals(cfg)  # and the trainings', before any search runs
    manifest = sweep_dir / MANIFEST
    if manifest.exists() and \
            read_json(manifest).get("config", {}).get("experiment") != experiment.name:
        raise UsageError(f"{sweep_dir} holds another experiment; give --name or --out")
    resolved = asdict(cfg)
    with ray_session(resources.address, join_timeout=resources.join_timeout,
                     env_vars=worker_env(max(resources.cpus_per_trial, cfg.eval_cpus))):
        # printed once Ray is up: a cluster that refuses is the only line the user sees
        log(f"reproduce {experiment.name}: {len(trials)} searches in {sweep_dir}")
        log("resolved config: " + json.dumps(resolved, default=str))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {"config": resolved, "trials": [t.trial_id for t in trials]}
        if len(specs) > 1:
            record["sweeps"] = [s.to_dict() for s in specs]
        write_json(manifest, record)
        launcher = None if cfg.skip_eval else experiment.launcher(cfg, log)
        outcomes = []
        for spec in specs:
            outcomes += run_sweep(spec, cfg.out, resources, quiet=quiet, log=log,
                                  on_finished=launcher.submit if launcher else None)
        if len(specs) > 1:  # each sweep wrote its own trials only
            write_trials_csv(sweep_dir / TRIALS_CSV, outcomes)
        failed = launcher.wait() if launcher else []
    for line in failed:
        log(f"training from scratch failed: {line}")
    if experiment.finish is not None and not cfg.skip_eval:
        experiment.finish(cfg, [RunFolder(t.run_dir) for t in trials], log)
    written = experiment.write_report(sweep_dir, None)
    log(f"report: {written[0]}")
    return sweep_dir
