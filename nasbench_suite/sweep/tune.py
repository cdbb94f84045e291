"""Many runs on Ray Tune: every trial of a sweep (nasbench_suite.sweep.spec) as a Tune trial.

Every trial calls the same :func:`nasbench_suite.training.loop.run_search` as ``nasbench run`` and
writes the same run folder, at a name fixed by its grid point, so that running the sweep
again finds its trials: finished ones are skipped without starting Ray, interrupted ones
resume from their checkpoints, failed ones stay failed unless ``retry_failed``.

The Tune side is idiomatic: the trials' real hyper-parameters (method, space, dataset, seed
and the grid's axes) are Tune's ``param_space``, so Tune's results and its TensorBoard
logs carry them as columns; each epoch is reported with ``tune.report`` together with a
``tune.Checkpoint`` of the run's state, so Tune's ``FailureConfig`` can restart a trial whose
worker died (on this node or another) and the trial resumes from it. A trial that fails
for a reason a retry would repeat (divergence, a bad setting) is recorded in its folder and
ends normally (nasbench_suite.sweep.trials). The last report adds the trial's final results
(the derived network's accuracy, its MACs, nb201's ground truth), so that Tune's
``ResultGrid``, ``ExperimentAnalysis`` and ``get_best_result`` see them; the trainable,
:func:`sweep_trainable`, reads nothing but its config (``Tuner.restore(path,
trainable=sweep_trainable)`` works; docs/usage.md).

The sweep folder::

    <out>/<name>/
      sweep.yaml        the expanded sweep (written at every invocation)
      trials.csv        status of every trial after the last invocation
      <trial>/          a run folder (see results/README.md) plus trial.json
      .ray/             Ray Tune's own experiment state (not read by the results index)
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nasbench_suite.config import requested_config
from nasbench_suite.errors import UsageError
from nasbench_suite.files import atomic_write, inside
from nasbench_suite.store.runfolder import (
    FAILED,
    FINISHED,
    PENDING,
    UNFINISHED,
    RunFolder,
    TrialRecord,
)
from nasbench_suite.sweep.spec import SweepSpec, Trial, comparable, expand
from nasbench_suite.sweep.trials import (
    Outcome,
    record_failure,
    run_trial,
    summary_table,
    write_trials_csv,
)

SWEEP_FILE = "sweep.yaml"
TRIALS_CSV = "trials.csv"


@dataclass
class Resources:
    """What each trial gets and where Ray runs: local by default, or ``address``."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: int = 0
    max_concurrent: int | None = None
    address: str | None = None
    #: Tune restarts a trial whose worker died this many times (it resumes each time)
    max_failures: int = 2
    #: seconds to wait for a cluster at ``address`` to answer
    join_timeout: float = 30.0

    def validate(self) -> None:
        if not self.cpus_per_trial > 0:
            raise UsageError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise UsageError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise UsageError(f"--max-concurrent must be at least 1, got {self.max_concurrent}")
        if self.max_failures < 0:
            raise UsageError(f"--max-failures must be 0 or more, got {self.max_failures}")
        if not self.join_timeout > 0:
            raise UsageError(f"--join-timeout must be positive, got {self.join_timeout}")
        if self.address is None:
            check_local_fit(self.cpus_per_trial, self.gpus_per_trial, "--cpus-per-trial",
                            "--gpus-per-trial")


def check_local_fit(cpus: float, gpus: int, cpus_flag: str, gpus_flag: str) -> None:
    """Refuse, before Ray starts, what a local Ray session could never schedule: more CPUs
    or GPUs per task than this machine has (Ray would start, then wait forever or refuse
    after writing the sweep folder). A cluster (--address) is checked once joined."""
    have_cpus = os.cpu_count() or 1
    if cpus > have_cpus:
        raise UsageError(f"{cpus_flag} {cpus:g} but this machine has {have_cpus} CPUs "
                         "(give --address to run on a larger cluster)")
    if gpus > 0:
        import torch

        have_gpus = torch.cuda.device_count()
        if gpus > have_gpus:
            raise UsageError(f"{gpus_flag} {gpus} but this machine has {have_gpus} visible "
                             "GPUs (give --address to run on a cluster with GPUs)")


def check_existing(trial: Trial) -> None:
    """A folder already at the trial's name must hold the same run, or resuming would mix."""
    folder = RunFolder(trial.run_dir)
    if not folder.is_run():
        return
    saved = comparable(requested_config(folder.config_dict()))  # decided values: as asked
    wanted = comparable(requested_config(trial.config))
    for key in sorted(set(saved) | set(wanted)):
        if saved.get(key) != wanted.get(key):
            raise UsageError(
                f"{trial.run_dir} holds a run with a different config ({key}: "
                f"{saved.get(key)!r} there, {wanted.get(key)!r} in this sweep); "
                "give the sweep another --name or --out")


#: the one key of a trial's Tune config that is not a hyper-parameter: where its run folder
#: goes and how it is named (``out``, ``name``, ``axes``, ``threads``, ``cwd``; ``trial``
#: only where two grid points would share a folder name)
SWEEP_KEY = "sweep"
IDENTITY = ("method", "space", "dataset", "seed")


def trial_params(trial: Trial, sweep_dir: Path, threads: int, cwd: str) -> dict[str, Any]:
    """The trial's Tune config: its real hyper-parameters (method, space, dataset, seed, then
    every override of the sweep, its method and its grid point, as a sweep file writes them)
    and, under :data:`SWEEP_KEY`, where its run folder goes."""
    asked = trial.overrides or {k: trial.config[k] for k in IDENTITY}
    params = {k: asked[k] for k in IDENTITY}
    params.update({k: v for k, v in asked.items() if k not in IDENTITY})
    params[SWEEP_KEY] = {"out": str(sweep_dir), "name": sweep_dir.name, "axes": list(trial.axes),
                         "threads": threads, "cwd": cwd}
    return params


def hyper_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """A Tune config as config overrides: without :data:`SWEEP_KEY`, and without the
    None that stands for "not set" where another trial's method has a hyper-parameter this
    trial's method does not (Tune needs the same keys in every trial of a search)."""
    from nasbench_suite.config import is_field

    method = str(config.get("method", ""))
    return {k: v for k, v in config.items()
            if k != SWEEP_KEY and not (v is None and not is_field(k, method))}


def resolved(config: dict[str, Any]) -> Any:
    """The RunConfig a Tune config asks for (``out``: its sweep folder)."""
    from nasbench_suite.config import resolve_config

    sweep = config.get(SWEEP_KEY) or {}
    values = hyper_parameters(config)
    if sweep.get("out"):
        values["out"] = sweep["out"]
    return resolve_config(values)


def trial_name(config: dict[str, Any]) -> str:
    """The trial's folder name, from its Tune config alone: the name ``expand`` gives it
    (``<method>-<space>-<dataset>-s<seed>-<axis>=<value>...``), so that Tune's trial names,
    its trial folders and the run folders agree and a re-run finds them. A config from a
    user's own search space (no :data:`SWEEP_KEY`) is named by all its non-identity keys."""
    from nasbench_suite.sweep.spec import trial_folder_name

    sweep = config.get(SWEEP_KEY) or {}
    if sweep.get("trial"):
        return str(sweep["trial"])
    names = sweep.get("axes")
    if names is None:
        names = [k for k in config if k not in (*IDENTITY, SWEEP_KEY, "out")]
    return trial_folder_name(resolved(config), {k: config[k] for k in names})


def run_dir_of(config: dict[str, Any]) -> Path:
    """The run folder of a Tune config: ``<sweep out>/<trial name>``."""
    return (Path(resolved(config).out) / trial_name(config)).resolve()


# -- the Tune trainable (runs in a Ray worker) --------------------------------------------------
def sweep_trainable(config: dict[str, Any]) -> None:
    """Ray Tune function trainable of every sweep: runs (or resumes) the search its config
    asks for in its run folder, reporting each epoch's metrics with a checkpoint of the run
    and, last, the final results (:func:`nasbench_suite.sweep.trials.final_results`).

    It reads nothing but ``config``, so a sweep's experiment can be restored with it
    (``Tuner.restore(path, trainable=sweep_trainable)``) and it can run a search space of
    one's own (``Tuner(sweep_trainable, param_space={"method": "darts", "w_lr":
    tune.loguniform(...), "out": ...})``): hyper-parameters are config fields as in a sweep
    file."""
    from ray import tune

    sweep = config.get(SWEEP_KEY) or {}
    if sweep.get("cwd") and Path(sweep["cwd"]).is_dir():
        os.chdir(sweep["cwd"])  # Tune starts a trial in its own folder
    cfg = resolved(config)
    folder = RunFolder(run_dir_of(config))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None and not folder.has_checkpoint():
        # A restart on a node that has not got the folder: its state comes with Tune.
        with checkpoint.as_directory() as state:
            folder.import_state(Path(state))

    def on_epoch(row: dict[str, Any], run: RunFolder) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            run.export_state(Path(tmp))
            tune.report(row, checkpoint=tune.Checkpoint.from_directory(tmp))

    spec = {"run_dir": str(folder.path), "config": cfg.to_dict(),
            "threads": sweep.get("threads"), "cwd": sweep.get("cwd")}
    run_trial(spec, on_epoch=on_epoch, on_end=tune.report)


def _trainable_with_resources(cpus: float, gpus: int) -> Any:
    """:func:`sweep_trainable` with the resources of each trial, under its own name (what
    ``Tuner.restore`` checks): ``tune.with_resources`` would set them on the module's
    function itself, for every later sweep of the process."""
    from ray import tune

    def trainable(config: dict[str, Any]) -> None:
        sweep_trainable(config)

    trainable.__name__ = trainable.__qualname__ = sweep_trainable.__name__
    return tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus})


def search_space(points: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Tune's ``param_space`` for these trial configs, and the configs Tune must be given
    one by one (``points_to_evaluate``) when they are not a grid.

    A full grid (every combination of the values each key takes, the usual sweep) becomes
    ``tune.grid_search`` per varying key and a constant per shared one: Tune's own
    search space, which its searchers and schedulers can read and drive. A sweep that is not
    a grid (a method's own overrides, method_spaces, a re-run of some trials only) becomes
    ``tune.choice`` per varying key, the trials' exact configs evaluated first and only:
    still one value per hyper-parameter, never a lookup by trial name."""
    from ray import tune

    keys = list(dict.fromkeys(k for p in points for k in p))
    values: dict[str, list[Any]] = {}
    for key in keys:
        seen: dict[str, Any] = {}
        for point in points:
            seen.setdefault(_repr(point.get(key)), point.get(key))
        values[key] = list(seen.values())
    varying = [k for k in keys if len(values[k]) > 1]
    grid = [dict(zip(varying, combo, strict=True))
            for combo in itertools.product(*(values[k] for k in varying))]
    is_grid = all(all(k in p for k in keys) for p in points) and len(grid) == len(points) \
        and {_repr(g) for g in grid} == {_repr({k: p[k] for k in varying}) for p in points}
    space = {k: values[k][0] for k in keys if len(values[k]) == 1}
    if is_grid:
        space.update({k: tune.grid_search(values[k]) for k in varying})
        return space, []
    space.update({k: tune.choice(values[k]) for k in varying})
    return space, points


def _repr(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def tune_configs(todo: Sequence[Trial], sweep_dir: Path, threads: int) -> list[dict[str, Any]]:
    """Every trial's Tune config (:func:`trial_params`), with the same keys in all: a key
    only some trials set (a method's own override) takes, in the others, the value their
    resolved config has, or None where their method has no such field."""
    from nasbench_suite.config import field_value

    cwd = os.getcwd()
    points = [trial_params(t, sweep_dir, threads, cwd) for t in todo]
    keys = list(dict.fromkeys(k for p in points for k in p))
    for trial, point in zip(todo, points, strict=True):
        for key in keys:
            if key not in point:
                point[key] = field_value(trial.config, key)
        ordered = {k: point[k] for k in keys}
        point.clear()
        point.update(ordered)
        if trial_name(point) != trial.trial_id:  # two grid points named alike (spec.expand)
            point[SWEEP_KEY]["trial"] = trial.trial_id
    return points


def _trial_name(trial: Any) -> str:
    """Tune's trial name and folder: the run folder's name (Trial or Result)."""
    return trial_name(trial.config)


def _progress_callback(trials: Sequence[Trial], quiet: bool, log: Callable[[str], None],
                       on_finished: Callable[[Path], None] | None = None) -> Any:
    """A Tune callback that prints one line per trial per epoch and one when it ends, and
    hands every finished trial's folder to ``on_finished``."""
    from ray import tune

    order = {t.trial_id: i + 1 for i, t in enumerate(trials)}
    folders = {t.trial_id: t.run_dir for t in trials}
    epochs = {t.trial_id: t.epochs for t in trials}
    width = max(len(t.trial_id) for t in trials)

    class Progress(tune.Callback):  # type: ignore[misc]
        def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                            result: dict[str, Any], **info: Any) -> None:
            tid = trial.custom_trial_name
            head = f"[{order[tid]}/{len(order)}] {tid:<{width}}"
            status = result.get("status")
            if status == "running":
                if not quiet:
                    log(f"{head}  epoch {int(result['epoch']) + 1}/{epochs[tid]}  "
                        f"loss {result.get('train_loss', float('nan')):.3f}  supernet acc "
                        f"(scoring split) {result.get('supernet_raw_acc_score', float('nan')):.3f}"
                        f"  {result.get('search_time_s', 0.0):.0f} s")
            elif status == FAILED:
                log(f"{head}  FAILED: {result.get('reason', '')}")
            elif status == FINISHED:
                log(f"{head}  finished")

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any,
                              **info: Any) -> None:
            folder = folders[trial.custom_trial_name]
            if on_finished is not None and RunFolder(folder).status() == FINISHED:
                on_finished(folder)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any,
                           **info: Any) -> None:
            log(f"[{order[trial.custom_trial_name]}/{len(order)}] {trial.custom_trial_name}  "
                "worker lost; Tune restarts it from its last checkpoint if retries remain")

    return Progress()


def _ray_reason(error: BaseException) -> str:
    """The last line of a Ray error (the original exception), not Ray's whole traceback."""
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(error).__name__


# -- the driver ------------------------------------------------------------------------------
def run_sweep(spec: SweepSpec, out: str | Path = "results/sweeps",
              resources: Resources | None = None, retry_failed: bool = False,
              quiet: bool = False, log: Callable[[str], None] = print,
              on_finished: Callable[[Path], None] | None = None) -> list[Outcome]:
    """Run every trial of ``spec`` that is not finished (nor failed, unless ``retry_failed``)
    and return what became of each. Uses this process's Ray session if it has one.

    ``on_finished`` is called with the folder of every finished trial: at once for those
    finished before, as soon as Tune completes it for the others (experiments start their
    trainings from scratch there)."""
    resources = resources or Resources()
    resources.validate()
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    sweep_dir = (out_dir / spec.name).resolve()
    if not inside(sweep_dir, out_dir):
        raise UsageError(f"sweep name {spec.name!r} leads outside {out}")
    trials = expand(spec, sweep_dir, log)
    for trial in trials:
        check_existing(trial)
        writer = RunFolder(trial.run_dir).writer()
        if writer is not None:  # a resume of it, or another sweep: refused before Ray starts
            raise UsageError(f"{trial.run_dir} is being written by another process "
                             f"(pid {writer})")

    outcomes: dict[str, Outcome] = {}
    todo: list[Trial] = []
    for trial in trials:
        folder = RunFolder(trial.run_dir)
        status = folder.status()
        if status == FINISHED:
            outcomes[trial.trial_id] = Outcome(trial, FINISHED, action="skipped")
            if on_finished is not None:
                on_finished(trial.run_dir)
        elif status == FAILED and not retry_failed:
            failure = folder.failure()
            outcomes[trial.trial_id] = Outcome(trial, FAILED, failure.reason if failure else "",
                                               action="skipped")
        else:
            todo.append(trial)
    log(f"sweep {spec.name}: {len(trials)} trials in {sweep_dir}; {len(todo)} to run, "
        f"{len(trials) - len(todo)} already done")
    if todo:
        # Nothing is written before Ray is up: a cluster that refuses leaves no folder.
        _run_on_ray(spec, todo, sweep_dir, resources, quiet, log, outcomes, on_finished)
    else:
        write_sweep_file(spec, sweep_dir)
    ordered = [outcomes[t.trial_id] for t in trials]
    write_trials_csv(sweep_dir / TRIALS_CSV, ordered)
    log(summary_table(ordered))
    counts = {s: sum(o.status == s for o in ordered) for s in (FINISHED, FAILED, UNFINISHED,
                                                               PENDING)}
    log(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; table in "
        f"{sweep_dir / TRIALS_CSV}")
    return ordered


def _run_on_ray(spec: SweepSpec, todo: list[Trial], sweep_dir: Path, resources: Resources,
                quiet: bool, log: Callable[[str], None], outcomes: dict[str, Outcome],
                on_finished: Callable[[Path], None] | None = None) -> None:
    import logging

    from nasbench_suite.sweep.ray_session import ray_session

    before = {t.trial_id: RunFolder(t.run_dir).status() for t in todo}
    # Ray Tune's own tables would interleave with our progress lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune's own Ctrl-C handling stops fit() and returns as if the sweep were done, so an
    # experiment went on to its next sweep and its trainings; and after a normal fit() its
    # handler stays installed and swallows a later Ctrl-C. Without it Ctrl-C raises
    # KeyboardInterrupt here and the command stops (every trial resumes from its checkpoint).
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    with ray_session(resources.address, join_timeout=resources.join_timeout,
                     env_vars=worker_env(resources.cpus_per_trial)):
        from ray import tune
        from ray.tune.search.basic_variant import BasicVariantGenerator

        logging.getLogger("ray.tune").setLevel(logging.ERROR)
        _check_cluster(resources)
        write_sweep_file(spec, sweep_dir)
        for trial in todo:
            RunFolder(trial.run_dir).write_trial(TrialRecord(spec.name, trial.trial_id,
                                                             trial.axes, trial.variant))
        points = tune_configs(todo, sweep_dir, max(1, int(resources.cpus_per_trial)))
        param_space, given = search_space(points)
        tuner = tune.Tuner(
            _trainable_with_resources(resources.cpus_per_trial, resources.gpus_per_trial),
            param_space=param_space,
            tune_config=tune.TuneConfig(
                num_samples=len(given) if given else 1,
                search_alg=BasicVariantGenerator(points_to_evaluate=given) if given else None,
                max_concurrent_trials=resources.max_concurrent,
                # A new actor per trial is a new process importing torch (~20 s of a
                # 4-trial smoke sweep on 2 loaded cores): a finished trial's actor runs the
                # next one (every trial sets its own threads, seeds and folder).
                reuse_actors=True, trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(
                name=time.strftime("%Y%m%d-%H%M%S"), storage_path=str(sweep_dir / ".ray"),
                verbose=0, callbacks=[_progress_callback(todo, quiet, log, on_finished)],
                failure_config=tune.FailureConfig(max_failures=resources.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
        results = tuner.fit()
        errors = {_trial_name(r): r.error for r in results
                  if r.config is not None and r.error is not None}
    for trial in todo:
        folder = RunFolder(trial.run_dir)
        status = folder.status()
        reason = ""
        if status != FINISHED and trial.trial_id in errors:
            # The worker died (killed, out of memory) more often than Tune may retry.
            reason = f"ray: {_ray_reason(errors[trial.trial_id])}"
            record_failure(folder, reason)
            status = FAILED
        elif status == FAILED:
            failure = folder.failure()
            reason = failure.reason if failure else ""
        if status == PENDING:
            action = "not run"
        else:
            action = "resumed" if before[trial.trial_id] in (UNFINISHED, FAILED) else "ran"
        outcomes[trial.trial_id] = Outcome(trial, status, reason, status != PENDING, action)


def write_sweep_file(spec: SweepSpec, sweep_dir: Path) -> None:
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(sweep_dir / SWEEP_FILE, yaml.safe_dump(spec.to_dict(), sort_keys=False))
    except OSError as exc:
        raise UsageError(f"cannot write the sweep folder {sweep_dir}: "
                         f"{exc.strerror or exc}") from None


def worker_env(cpus: float) -> dict[str, str]:
    """Environment of every Ray worker: OpenMP threads that never spin against other work
    and a thread count that fits the CPUs a trial is given (nasbench_suite.threads)."""
    from nasbench_suite.threads import worker_environment

    return worker_environment(max(1, int(cpus)))


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
