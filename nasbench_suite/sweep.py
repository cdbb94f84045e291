"""Many runs on Ray Tune: a grid of methods x spaces x datasets x seeds x config overrides.

Every trial calls the same :func:`nasbench_suite.search.run_search` as ``nasbench run`` and
writes the same run folder, at a name fixed by its grid point
(``<sweep>/<method>-<space>-<dataset>-s<seed>[-<axis>=<value>...]``), so that running the
sweep again finds its trials: finished ones are skipped without starting Ray, interrupted
ones resume from their checkpoints, failed ones stay failed unless ``retry_failed``.

A trial that diverges or raises is recorded in its folder (``failure.json``, with the
reason) and returns normally, so Ray never cancels the other trials and the failure
survives the Ray session. Ray is imported here only, and only once trials must run.

The sweep folder::

    <out>/<name>/
      sweep.yaml        the expanded sweep (written at every invocation)
      trials.csv        status of every trial after the last invocation
      <trial>/          a run folder (see results/README.md) plus trial.json
      .ray/             Ray Tune's own experiment state (not read by the results index)
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nasbench_suite import rundir
from nasbench_suite.config import RunConfig, read_yaml, resolve_config
from nasbench_suite.errors import UsageError

#: a run folder's record of why its trial failed (the reason, error type, traceback)
FAILURE = "failure.json"
#: a sweep trial's identity: sweep name, trial id, its grid values and variant label
TRIAL = "trial.json"
SWEEP_FILE = "sweep.yaml"
TRIALS_CSV = "trials.csv"
#: where ``nasbench sweep NAME`` looks for NAME.yaml
EXPERIMENTS_DIR = "experiments"

FINISHED, FAILED, UNFINISHED, PENDING = "finished", "failed", "unfinished", "pending"
#: config fields that may differ between a trial's saved config and the sweep that finds it
#: (they move the run, not its result)
_RELOCATABLE = frozenset({"out", "threads", "device", "data_dir"})
_FILE_KEYS = ("name", "preset", "methods", "method_spaces", "spaces", "datasets", "seeds",
              "grid", "set")
_MAX_NAME = 96

Report = Callable[[dict[str, Any]], None]


# -- the sweep as data -----------------------------------------------------------------------
@dataclass
class SweepSpec:
    """What to run. ``methods`` maps a method to overrides that apply to it alone; ``grid``
    axes (any config field or method hyper-parameter) multiply every trial; ``fixed`` holds
    overrides shared by all trials (``set`` in a sweep file). ``method_spaces`` restricts a
    method to some of ``spaces`` (GOLD-NAS on the relaxed space only, beside DARTS on both).
    """

    name: str = "sweep"
    methods: dict[str, dict[str, Any]] = field(default_factory=lambda: {"darts": {}})
    spaces: list[str] = field(default_factory=lambda: ["restricted"])
    datasets: list[str] = field(default_factory=lambda: ["digits"])
    seeds: list[int] = field(default_factory=lambda: [0])
    grid: dict[str, list[Any]] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    method_spaces: dict[str, list[str]] = field(default_factory=dict)

    def spaces_of(self, method: str) -> list[str]:
        only = self.method_spaces.get(method)
        return [s for s in self.spaces if only is None or s in only]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "methods": self.methods,
                "method_spaces": self.method_spaces, "spaces": self.spaces,
                "datasets": self.datasets, "seeds": self.seeds, "grid": self.grid,
                "set": self.fixed}


@dataclass(frozen=True)
class Trial:
    """One grid point: its folder, its resolved config and its label within the sweep."""

    trial_id: str
    run_dir: Path
    config: dict[str, Any]
    axes: dict[str, Any]
    variant: str

    @property
    def epochs(self) -> int:
        return int(self.config["epochs"])


@dataclass
class Outcome:
    """What became of a trial in one invocation of the sweep."""

    trial: Trial
    status: str
    reason: str = ""
    trained: bool = False
    action: str = ""


def _names(value: Any, key: str, where: str, kind: type = str) -> list[Any]:
    """A list of names (or ints), accepting a single bare value for one-element lists."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise UsageError(f"{where}: {key!r} must not be empty")
    for item in items:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise UsageError(f"{where}: {key!r} must be a list of {kind.__name__}s, "
                             f"got {item!r}")
    if len(set(map(repr, items))) != len(items):
        raise UsageError(f"{where}: {key!r} lists a value twice")
    return list(items)


def _mapping(value: Any, key: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise UsageError(f"{where}: {key!r} must be a mapping of config fields")
    return dict(value)


def _methods(value: Any, where: str) -> dict[str, dict[str, Any]]:
    if isinstance(value, dict):
        return {str(m): _mapping(o, f"methods.{m}", where) for m, o in value.items()}
    return {m: {} for m in _names(value, "methods", where)}


def _grid(value: Any, where: str) -> dict[str, list[Any]]:
    grid = _mapping(value, "grid", where)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UsageError(f"{where}: grid axis {key!r} must be a non-empty list of values")
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) != len(values):
            raise UsageError(f"{where}: grid axis {key!r} lists a value twice")
        if key in ("method", "space", "dataset", "seed"):
            raise UsageError(f"{where}: give {key!r} as {key}s, not as a grid axis")
    return grid


def spec_from_dict(data: dict[str, Any], where: str, name: str = "sweep") -> SweepSpec:
    """Validate a sweep mapping (a parsed sweep file); every problem is one UsageError."""
    unknown = sorted(set(data) - set(_FILE_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; a sweep file has "
                         f"{', '.join(_FILE_KEYS)}")
    spec = SweepSpec(name=name)
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise UsageError(f"{where}: 'name' must be a non-empty string")
        spec.name = data["name"]
    if "methods" in data:
        spec.methods = _methods(data["methods"], where)
    if "spaces" in data:
        spec.spaces = _names(data["spaces"], "spaces", where)
    for method, spaces in _mapping(data.get("method_spaces"), "method_spaces", where).items():
        if method not in spec.methods:
            raise UsageError(f"{where}: method_spaces names {method!r}, which is not in "
                             "methods")
        spec.method_spaces[method] = _names(spaces, f"method_spaces.{method}", where)
    if "datasets" in data:
        spec.datasets = _names(data["datasets"], "datasets", where)
    if "seeds" in data:
        spec.seeds = _names(data["seeds"], "seeds", where, int)
    spec.grid = _grid(data.get("grid"), where)
    spec.fixed = _mapping(data.get("set"), "set", where)
    if "preset" in data:
        spec.fixed["preset"] = data["preset"]
    for key in ("method", "space", "dataset", "seed"):
        if key in spec.fixed:
            raise UsageError(f"{where}: set {key}s at the top level, not in 'set'")
    return spec


def find_sweep_file(name: str) -> Path:
    """A path, or a name under experiments/ (``darts-failure-mini`` -> experiments/...yaml)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (Path(EXPERIMENTS_DIR) / name, Path(EXPERIMENTS_DIR) / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise UsageError(f"no sweep file {name!r} (nor {EXPERIMENTS_DIR}/{name}.yaml)")


def load_sweep_file(name: str) -> SweepSpec:
    path = find_sweep_file(name)
    return spec_from_dict(read_yaml(path, "sweep file"), f"sweep file {str(path)!r}",
                          name=path.stem)


def parse_axis(item: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2`` or ``KEY=[V1, V2]`` (YAML) -> (KEY, [V1, V2])."""
    if "=" not in item:
        raise UsageError(f"grid axis {item!r} must look like KEY=V1,V2")
    key, raw = (s.strip() for s in item.split("=", 1))
    try:
        value = yaml.safe_load(raw)
        if isinstance(value, list):
            values = value
        elif isinstance(value, str) and "," in raw:
            values = [yaml.safe_load(v) for v in raw.split(",")]
        else:
            values = [value]
    except yaml.YAMLError:
        raise UsageError(f"grid axis {item!r}: values are not valid YAML") from None
    if not key or not values:
        raise UsageError(f"grid axis {item!r} must look like KEY=V1,V2")
    return key, values


# -- expansion ---------------------------------------------------------------------------------
def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "_".join(_value_text(v) for v in value)
    if value is None:
        return "none"
    return str(value)


def _trial_id(cfg: RunConfig, axes: dict[str, Any]) -> str:
    """Deterministic and readable; a hash of the grid values when that would be too long."""
    from nasbench_suite.data import dataset_slug

    base = f"{cfg.method}-{cfg.space}-{dataset_slug(cfg.dataset)}-s{cfg.seed}"
    if not axes:
        return base
    text = "-".join(f"{k}={_value_text(v)}" for k, v in axes.items())
    text = re.sub(r"[^A-Za-z0-9._=+-]", "_", text)
    if len(base) + 1 + len(text) > _MAX_NAME:
        digest = hashlib.sha1(json.dumps(axes, sort_keys=True, default=str).encode())
        text = f"v{digest.hexdigest()[:10]}"
    return f"{base}-{text}"


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(config, default=list))
    return {k: v for k, v in data.items() if k not in _RELOCATABLE}


def expand(spec: SweepSpec, sweep_dir: Path, log: Callable[[str], None] = print) -> list[Trial]:
    """Every trial of the grid, each config resolved and validated before anything runs.

    A method/space pair the method cannot search is left out with a note (a grid over all
    methods and both spaces is the common case); any other bad value is a UsageError.
    """
    from methods import get_method, list_methods

    axes_names = list(spec.grid)
    trials: list[Trial] = []
    seen: dict[str, Trial] = {}
    from nasbench_suite.data import check_dataset_spec

    for dataset in spec.datasets:  # caught here, not in every trial
        check_dataset_spec(dataset)
        kind, _, path = dataset.partition(":")
        if kind in ("npz", "imagefolder") and not Path(path).exists():
            raise UsageError(f"dataset {dataset!r}: {path} does not exist")
    pairs = [(m, s) for m in spec.methods for s in spec.spaces_of(m)]
    for (method, space), dataset in itertools.product(pairs, spec.datasets):
        if method in list_methods():
            try:
                get_method(method).check_space(space)
            except ValueError as exc:
                log(f"note: leaving out {method} x {space}: {exc}")
                continue
        for values in itertools.product(*(spec.grid[k] for k in axes_names)):
            axes = dict(zip(axes_names, values, strict=True))
            for seed in spec.seeds:
                overrides = {**spec.fixed, **spec.methods[method], **axes, "method": method,
                             "space": space, "dataset": dataset, "seed": seed,
                             "out": str(sweep_dir)}
                try:
                    cfg = resolve_config(overrides)
                except UsageError as exc:
                    raise UsageError(f"sweep trial {method}/{space}/{dataset}/s{seed}"
                                     f"{' ' + str(axes) if axes else ''}: {exc}") from None
                trial_id = _trial_id(cfg, axes)
                if trial_id in seen:
                    digest = hashlib.sha1(json.dumps(cfg.to_dict(), sort_keys=True,
                                                     default=str).encode()).hexdigest()[:8]
                    trial_id = f"{trial_id}-{digest}"
                variant = ", ".join(f"{k}={_value_text(v)}" for k, v in axes.items())
                trial = Trial(trial_id, (sweep_dir / trial_id).resolve(), cfg.to_dict(), axes,
                              variant)
                seen[trial_id] = trial
                trials.append(trial)
    if not trials:
        raise UsageError("the sweep has no trials (every method/space pair was left out)")
    return trials


# -- one trial (in a Ray worker, or directly) ----------------------------------------------------
def trial_status(run_dir: Path) -> str:
    """finished (summary.json), failed (failure.json), unfinished (a checkpoint) or pending."""
    if (run_dir / rundir.SUMMARY).exists():
        return FINISHED
    if (run_dir / FAILURE).exists():
        return FAILED
    if (run_dir / rundir.CHECKPOINT).exists():
        return UNFINISHED
    return PENDING


def read_failure(run_dir: Path) -> str:
    try:
        return str(json.loads((run_dir / FAILURE).read_text()).get("reason", "unknown"))
    except (OSError, ValueError):
        return "unknown (failure.json unreadable)"


def record_failure(run_dir: Path, reason: str, error: BaseException | None = None) -> None:
    epochs = len(rundir.read_jsonl(run_dir / rundir.METRICS))
    rundir.write_json(run_dir / FAILURE, {
        "reason": reason, "error_type": type(error).__name__ if error else None,
        "epochs_done": epochs,
        "traceback": "".join(traceback.format_exception(error)) if error else None})


def run_trial(spec: dict[str, Any], report: Report | None = None,
              log: Callable[[str], None] = print) -> str:
    """Run or resume one trial in its folder; a failure is recorded there, never raised.

    ``spec`` is plain data (it crosses into Ray workers): ``run_dir``, ``config`` (a resolved
    config), ``threads`` (torch threads when the config sets none) and ``cwd`` (the
    driver's folder, so relative paths in the config mean what they meant there).
    Returns the trial's status afterwards.
    """
    from nasbench_suite.search import Diverged, run_search

    report = report or (lambda row: None)
    run_dir = Path(spec["run_dir"])
    if spec.get("cwd") and Path(spec["cwd"]).is_dir():
        os.chdir(spec["cwd"])
    status = trial_status(run_dir)
    if status == FINISHED:
        report({"status": FINISHED, "trained": False})
        return FINISHED
    (run_dir / FAILURE).unlink(missing_ok=True)
    reason, error = "", None
    try:
        cfg = resolve_config(spec["config"])
        if cfg.threads is None and spec.get("threads"):
            import torch

            torch.set_num_threads(int(spec["threads"]))
        resume = run_dir if (run_dir / rundir.CHECKPOINT).exists() else None

        def on_epoch(row: dict[str, Any]) -> None:
            report({**row, "status": "running", "epochs": cfg.epochs})

        run_search(cfg, resume_dir=resume, run_dir=None if resume else run_dir,
                   progress=False, on_epoch=on_epoch, log=log)
    except Diverged as exc:
        reason, error = f"diverged: {exc}", exc
    except UsageError as exc:
        reason, error = f"bad input: {exc}", exc
    except Exception as exc:
        reason, error = f"{type(exc).__name__}: {exc}", exc
    if error is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        record_failure(run_dir, reason, error)
        report({"status": FAILED, "reason": reason, "trained": True})
        return FAILED
    status = trial_status(run_dir)
    report({"status": status, "trained": True})
    return status


def _tune_trainable(config: dict[str, Any], specs: dict[str, dict[str, Any]]) -> None:
    """The Ray Tune function trainable: one trial, its epochs reported with tune.report."""
    from ray import tune

    run_trial(specs[config["trial"]], tune.report)


def _trial_name(trial: Any) -> str:
    return str(trial.config["trial"])


# -- the driver ------------------------------------------------------------------------------
@dataclass
class Resources:
    """What each trial gets and where Ray runs: local by default, or ``address``."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: int = 0
    max_concurrent: int | None = None
    address: str | None = None

    def validate(self) -> None:
        if not self.cpus_per_trial > 0:
            raise UsageError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise UsageError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise UsageError(f"--max-concurrent must be at least 1, got {self.max_concurrent}")


def _check_existing(trial: Trial) -> None:
    """A folder already at the trial's name must hold the same run, or resuming would mix."""
    if not (trial.run_dir / rundir.CONFIG).is_file():
        return
    saved = _comparable(rundir.read_run_config(trial.run_dir))
    wanted = _comparable(trial.config)
    for key in sorted(set(saved) | set(wanted)):
        if saved.get(key) != wanted.get(key):
            raise UsageError(
                f"{trial.run_dir} holds a run with a different config ({key}: "
                f"{saved.get(key)!r} there, {wanted.get(key)!r} in this sweep); "
                "give the sweep another --name or --out")


def _write_trial_file(trial: Trial, sweep_name: str) -> None:
    trial.run_dir.mkdir(parents=True, exist_ok=True)
    rundir.write_json(trial.run_dir / TRIAL, {"sweep": sweep_name, "trial": trial.trial_id,
                                              "axes": trial.axes, "variant": trial.variant})


def _init_ray(resources: Resources) -> bool:
    """Start (or join) Ray unless this process already has; True if we must shut it down."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    try:
        if resources.address:
            ray.init(address=resources.address, log_to_driver=False,
                     logging_level="ERROR")
        else:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot join the Ray cluster at {resources.address}: {exc}") from None
    return True


def _check_cluster(resources: Resources) -> None:
    """Refuse what Ray would otherwise wait for forever: more per trial than the cluster has."""
    import ray

    have = ray.cluster_resources()
    if resources.cpus_per_trial > have.get("CPU", 0):
        raise UsageError(f"--cpus-per-trial {resources.cpus_per_trial} but the Ray cluster has "
                         f"{have.get('CPU', 0):g} CPUs")
    if resources.gpus_per_trial > have.get("GPU", 0):
        raise UsageError(f"--gpus-per-trial {resources.gpus_per_trial} but the Ray cluster has "
                         f"{have.get('GPU', 0):g} GPUs")


def _progress_callback(trials: Sequence[Trial], quiet: bool, log: Callable[[str], None]) -> Any:
    """A Tune callback that prints one line per trial per epoch and one when it ends."""
    from ray import tune

    order = {t.trial_id: i + 1 for i, t in enumerate(trials)}
    epochs = {t.trial_id: t.epochs for t in trials}
    width = max(len(t.trial_id) for t in trials)

    class Progress(tune.Callback):  # type: ignore[misc]
        def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                            result: dict[str, Any], **info: Any) -> None:
            tid = trial.config["trial"]
            head = f"[{order[tid]}/{len(order)}] {tid:<{width}}"
            status = result.get("status")
            if status == "running":
                if not quiet:
                    log(f"{head}  epoch {int(result['epoch']) + 1}/{epochs[tid]}  "
                        f"loss {result.get('train_loss', float('nan')):.3f}  held-out acc "
                        f"{result.get('heldout_acc', float('nan')):.3f}  "
                        f"{result.get('search_time_s', 0.0):.0f} s")
            elif status == FAILED:
                log(f"{head}  FAILED: {result.get('reason', '')}")
            elif status == FINISHED:
                log(f"{head}  finished")

    return Progress()


def _summary_row(outcome: Outcome) -> dict[str, Any]:
    run_dir = outcome.trial.run_dir
    row: dict[str, Any] = {"trial": outcome.trial.trial_id, "status": outcome.status,
                           "action": outcome.action,
                           "epochs": len(rundir.read_jsonl(run_dir / rundir.METRICS))}
    summary_path = run_dir / rundir.SUMMARY
    if outcome.status == FINISHED and summary_path.exists():
        summary = json.loads(summary_path.read_text())
        row.update(acc=summary["inherited"]["derived_acc"],
                   macs=summary["derived"]["macs"], params=summary["derived"]["params"],
                   search_time_s=summary["search_time_s"])
    row["reason"] = outcome.reason
    return row


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """The end-of-sweep table: one aligned line per trial."""
    heads = ["trial", "status", "this run", "epochs", "acc", "MMACs", "params (k)",
             "search (s)", "reason"]
    lines = []
    for outcome in outcomes:
        row = _summary_row(outcome)

        def num(key: str, scale: float, fmt: str, row: dict[str, Any] = row) -> str:
            return format(row[key] * scale, fmt) if key in row else "-"

        lines.append([row["trial"], row["status"], row["action"], str(row["epochs"]),
                      num("acc", 1, ".3f"), num("macs", 1e-6, ".2f"),
                      num("params", 1e-3, ".1f"), num("search_time_s", 1, ".1f"),
                      row["reason"]])
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(heads)]
    out = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    for r in lines:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(out)


def _write_trials_csv(sweep_dir: Path, outcomes: Sequence[Outcome]) -> None:
    rows = [_summary_row(o) for o in outcomes]
    keys = ["trial", "status", "action", "epochs", "acc", "macs", "params", "search_time_s",
            "reason"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    rundir.atomic_write(sweep_dir / TRIALS_CSV, buf.getvalue())


def _ray_reason(error: BaseException) -> str:
    """The last line of a Ray error (the original exception), not Ray's whole traceback."""
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(error).__name__


def run_sweep(spec: SweepSpec, out: str | Path = "results/sweeps",
              resources: Resources | None = None, retry_failed: bool = False,
              quiet: bool = False, log: Callable[[str], None] = print) -> list[Outcome]:
    """Run every trial of ``spec`` that is not finished (nor failed, unless ``retry_failed``)
    and return what became of each. Uses this process's Ray session if it has one."""
    resources = resources or Resources()
    resources.validate()
    sweep_dir = (Path(out) / spec.name).resolve()
    trials = expand(spec, sweep_dir, log)
    for trial in trials:
        _check_existing(trial)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    rundir.atomic_write(sweep_dir / SWEEP_FILE, yaml.safe_dump(spec.to_dict(), sort_keys=False))

    outcomes: dict[str, Outcome] = {}
    todo: list[Trial] = []
    for trial in trials:
        status = trial_status(trial.run_dir)
        if status == FINISHED:
            outcomes[trial.trial_id] = Outcome(trial, FINISHED, action="skipped")
        elif status == FAILED and not retry_failed:
            outcomes[trial.trial_id] = Outcome(trial, FAILED, read_failure(trial.run_dir),
                                               action="skipped")
        else:
            todo.append(trial)
    log(f"sweep {spec.name}: {len(trials)} trials in {sweep_dir}; {len(todo)} to run, "
        f"{len(trials) - len(todo)} already done")
    if todo:
        _run_on_ray(spec, todo, sweep_dir, resources, quiet, log, outcomes)
    ordered = [outcomes[t.trial_id] for t in trials]
    _write_trials_csv(sweep_dir, ordered)
    log(summary_table(ordered))
    counts = {s: sum(o.status == s for o in ordered) for s in (FINISHED, FAILED, UNFINISHED,
                                                               PENDING)}
    log(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; table in "
        f"{sweep_dir / TRIALS_CSV}")
    return ordered


def _run_on_ray(spec: SweepSpec, todo: list[Trial], sweep_dir: Path, resources: Resources,
                quiet: bool, log: Callable[[str], None], outcomes: dict[str, Outcome]) -> None:
    import logging

    before = {t.trial_id: trial_status(t.run_dir) for t in todo}
    # Ray Tune's own tables would interleave with our progress lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    owned = _init_ray(resources)
    try:
        from ray import tune

        logging.getLogger("ray.tune").setLevel(logging.ERROR)
        _check_cluster(resources)
        for trial in todo:
            _write_trial_file(trial, spec.name)
        specs = {t.trial_id: {"run_dir": str(t.run_dir), "config": t.config,
                              "threads": max(1, int(resources.cpus_per_trial)),
                              "cwd": os.getcwd()} for t in todo}
        trainable = tune.with_resources(
            tune.with_parameters(_tune_trainable, specs=specs),
            {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial})
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([t.trial_id for t in todo])},
            tune_config=tune.TuneConfig(max_concurrent_trials=resources.max_concurrent,
                                        reuse_actors=True,
                                        trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(
                name=time.strftime("%Y%m%d-%H%M%S"), storage_path=str(sweep_dir / ".ray"),
                verbose=0, callbacks=[_progress_callback(todo, quiet, log)],
                failure_config=tune.FailureConfig(max_failures=0)))
        results = tuner.fit()
        errors = {r.config["trial"]: r.error for r in results
                  if r.config is not None and r.error is not None}
    finally:
        if owned:
            import ray

            ray.shutdown()
    for trial in todo:
        status = trial_status(trial.run_dir)
        reason = ""
        if status != FINISHED and trial.trial_id in errors:
            # The worker died (killed, out of memory): record it as run_trial would have.
            reason = f"ray: {_ray_reason(errors[trial.trial_id])}"
            record_failure(trial.run_dir, reason)
            status = FAILED
        elif status == FAILED:
            reason = read_failure(trial.run_dir)
        if status == PENDING:
            action = "not run"
        else:
            action = "resumed" if before[trial.trial_id] in (UNFINISHED, FAILED) else "ran"
        outcomes[trial.trial_id] = Outcome(trial, status, reason, status != PENDING, action)


def spec_with_cli(spec: SweepSpec, methods: Iterable[str] | None = None,
                  spaces: Iterable[str] | None = None, datasets: Iterable[str] | None = None,
                  seeds: Iterable[int] | None = None, grid: Iterable[str] = (),
                  fixed: dict[str, Any] | None = None, name: str | None = None) -> SweepSpec:
    """Command-line values replace a sweep file's lists and extend its grid and fixed fields."""
    if methods:
        spec.methods = {m: spec.methods.get(m, {}) for m in _names(list(methods), "methods",
                                                                    "--methods")}
    if spaces:
        spec.spaces = _names(list(spaces), "spaces", "--spaces")
    if datasets:
        spec.datasets = _names(list(datasets), "datasets", "--datasets")
    if seeds:
        spec.seeds = _names(list(seeds), "seeds", "--seeds", int)
    for item in grid:
        key, values = parse_axis(item)
        spec.grid = spec_from_dict({"grid": {**spec.grid, key: values}}, "--grid").grid
    if fixed:
        spec.fixed.update(fixed)
        for key in ("method", "space", "dataset", "seed"):
            if key in spec.fixed:
                raise UsageError(f"--set {key}=...: use --{key}s for a sweep")
    if name:
        spec.name = name
    if not re.fullmatch(r"[A-Za-z0-9._=+-]+", spec.name):
        raise UsageError(f"sweep name {spec.name!r} may hold only letters, digits and ._=+-")
    return spec
