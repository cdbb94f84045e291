"""`nasbench sweep` on a local Ray: run folders, failures, skip and resume.

One Ray session (2 CPUs) serves the module; a sweep joins it instead of starting its own.
Two DARTS weight learning rates stand in for two methods (the second order would cost four
times as much per step).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from nasbench_suite.cli.main import main
from nasbench_suite.config import resolve_config
from nasbench_suite.errors import UsageError
from nasbench_suite.store.index import load_index, runs
from nasbench_suite.store.runfolder import FAILED, FINISHED, RunFolder
from nasbench_suite.sweep.spec import SweepSpec, expand, load_sweep_file, spec_from_dict
from nasbench_suite.sweep.tune import Resources, run_sweep
from nasbench_suite.training.loop import run_search
from tests.conftest import TINY


def _sweep_file(path: Path, **extra) -> Path:
    data = {"name": "two-lrs", "methods": ["darts"], "spaces": ["restricted"],
            "datasets": ["digits"], "seeds": [0, 1], "grid": {"w_lr": [0.025, 0.05]},
            "set": dict(TINY), **extra}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def sweep4(local_ray, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sweep4")
    file = _sweep_file(root / "two-lrs.yaml")
    out = root / "sweeps"
    outcomes = run_sweep(load_sweep_file(str(file)), out, Resources(cpus_per_trial=1))
    return file, out, out / "two-lrs", outcomes


@pytest.mark.slow
def test_four_trials_write_four_run_folders_and_the_index_matches(sweep4) -> None:
    _, _, sweep_dir, outcomes = sweep4
    assert [o.status for o in outcomes] == [FINISHED] * 4
    assert all(o.trained and o.action == "ran" for o in outcomes)
    folders = sorted(p.name for p in sweep_dir.iterdir() if RunFolder(p).is_run())
    assert folders == sorted(f"darts-restricted-digits-s{s}-w_lr={lr}" for s in (0, 1)
                             for lr in (0.025, 0.05))
    df = runs(load_index([sweep_dir]))
    assert len(df) == 4
    for _, row in df.iterrows():
        run = RunFolder(row["path"])
        summary = run.summary().to_dict()
        config = run.config_dict()
        lr = config["hp"]["w_lr"]
        assert row["run"] == f"darts-restricted-digits-s{row['seed']}-w_lr={lr}"
        assert (row["variant"], row["label"]) == (f"w_lr={lr}", f"darts (w_lr={lr})")
        assert row["sweep"] == "two-lrs"
        for key in ("method", "space", "dataset", "seed", "preset", "search_time_s", "counter"):
            assert row[key] == summary[key], key
        assert row["acc"] == summary["inherited"]["derived_acc"]
        assert (row["macs"], row["params"]) == (summary["derived"]["macs"],
                                                summary["derived"]["params"])
        assert row["supernet_raw_acc_score"] == summary["final"]["supernet_raw_acc_score"]
        assert config["epochs"] == 1 and config["channels"] == 4
    trials = (sweep_dir / "trials.csv").read_text().splitlines()
    assert trials[0].startswith("trial,status,action,epochs,acc,split") and len(trials) == 5


@pytest.mark.slow
def test_running_again_trains_nothing(sweep4, capsys: pytest.CaptureFixture[str]) -> None:
    file, out, sweep_dir, _ = sweep4
    files = [p for p in sweep_dir.rglob("*") if p.is_file() and ".ray" not in p.parts
             and p.name not in ("trials.csv", "sweep.yaml")]
    before = {p: p.stat().st_mtime_ns for p in files}
    assert main(["sweep", str(file), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "0 to run, 4 already done" in printed
    assert printed.count("skipped") == 4 and "4 finished" in printed
    assert {p: p.stat().st_mtime_ns for p in files} == before


@pytest.mark.slow
def test_a_changed_config_is_refused(sweep4) -> None:
    file, out, _, _ = sweep4
    spec = load_sweep_file(str(file))
    spec.fixed["epochs"] = 2
    with pytest.raises(UsageError, match=r"different config \(epochs: 1 there, 2"):
        run_sweep(spec, out)


@pytest.mark.slow
def test_nan_trial_fails_the_others_finish_and_unfinished_trials_resume(
        local_ray, tmp_path: Path) -> None:
    spec = SweepSpec(name="nan", seeds=[0], grid={"w_lr": [0.025, 1e30]},
                     fixed={**TINY, "epochs": 2})
    sweep_dir = tmp_path / "nan"
    good, bad = expand(spec, sweep_dir.resolve(), log=lambda line: None)
    # Interrupt the healthy trial after its first epoch, as a killed sweep would leave it.
    run_search(resolve_config(good.config), run_dir=good.run_dir, stop_after=1,
               progress=False, log=lambda line: None)
    first_epoch = RunFolder(good.run_dir).metrics()
    assert len(first_epoch) == 1

    outcomes = run_sweep(spec, tmp_path, Resources(cpus_per_trial=1))
    by_id = {o.trial.trial_id: o for o in outcomes}
    assert by_id[good.trial_id].status == FINISHED
    assert by_id[good.trial_id].action == "resumed"
    metrics = RunFolder(good.run_dir).metrics()
    assert len(metrics) == 2 and metrics[0] == first_epoch[0]
    failed = by_id[bad.trial_id]
    assert failed.status == FAILED and failed.reason.startswith("diverged: loss became")
    failure = RunFolder(bad.run_dir).failure()
    assert failure is not None
    assert failure.error_type == "Diverged" and failure.epochs_done == 0
    assert not RunFolder(bad.run_dir).finished()

    df = load_index([sweep_dir], include_unfinished=True)
    assert dict(zip(df["variant"], df["status"], strict=True)) == {
        "w_lr=0.025": "finished", "w_lr=1e+30": "failed"}
    # A failure is a result: running again leaves it (and needs no Ray at all).
    again = run_sweep(spec, tmp_path, Resources(cpus_per_trial=1))
    assert [(o.status, o.action, o.trained) for o in again] == [
        (FINISHED, "skipped", False), (FAILED, "skipped", False)]


def test_grid_expansion_is_deterministic_and_validated(tmp_path: Path) -> None:
    spec = spec_from_dict({"methods": {"darts": {"a_lr": 0.001}}, "seeds": [3, 4],
                           "spaces": ["restricted", "relaxed"],
                           "grid": {"order": [1, 2], "a_betas": [[0.5, 0.999]]},
                           "set": {"epochs": 1}}, "test")
    trials = expand(spec, tmp_path, log=lambda line: None)
    assert len(trials) == 8
    assert trials[0].trial_id == "darts-restricted-digits-s3-order=1-a_betas=0.5_0.999"
    assert trials[0].variant == "order=1, a_betas=0.5_0.999"
    assert all(t.config["hp"]["a_lr"] == 0.001 and t.config["epochs"] == 1 for t in trials)
    assert [t.trial_id for t in expand(spec, tmp_path, log=lambda line: None)] == [
        t.trial_id for t in trials]
    bad = spec_from_dict({"grid": {"no_such_field": [1, 2]}}, "test")
    with pytest.raises(UsageError, match="unknown config field 'no_such_field'"):
        expand(bad, tmp_path)


def test_shipped_sweep_files_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sweep file in the package loads by its name from any working directory (no
    checkout folder needed), has a one-line description, and expands."""
    from nasbench_suite.sweep.catalog import describe, sweep_presets

    presets = sweep_presets()
    assert {"smoke", "darts-failure-mini"} <= set(presets)
    monkeypatch.chdir(tmp_path)
    for name, file in presets.items():
        assert describe(file) and "\n" not in describe(file)
        spec = load_sweep_file(name)
        assert spec.name == name == file.stem
        assert load_sweep_file(str(file)).name == name  # a path still works
        assert expand(spec, Path("/nonexistent"), log=lambda line: None)
    with pytest.raises(UsageError, match="choose from darts-failure-mini, smoke"):
        load_sweep_file("no-such-sweep")


@pytest.mark.parametrize("text, message", [
    ("methods: [darts\n", "is not valid YAML"),
    ("- darts\n", "must hold a mapping"),
    ("method: darts\n", "unknown key 'method'"),
    ("grid: {order: 2}\n", "grid axis 'order' must be a non-empty list"),
    ("seeds: [zero]\n", "'seeds' must be a list of ints"),
    ("set: {seed: 1}\n", "set seeds at the top level"),
    ("methods: [nope]\n", "unknown method 'nope'"),
])
def test_malformed_sweep_file_is_one_line_exit_2(tmp_path: Path, text: str, message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    assert main(["sweep", str(file), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_bad_sweep_options_are_one_line_exit_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path)]
    for argv, message in [(["--seeds", "a"], "--seeds"),
                          (["--grid", "order"], "must look like KEY=V1,V2"),
                          (["--cpus-per-trial", "0"], "--cpus-per-trial must be positive"),
                          (["--max-concurrent", "0"], "--max-concurrent must be at least 1"),
                          (["no-such-sweep"], "no sweep file 'no-such-sweep'")]:
        assert main(["sweep", *argv, *out]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err


def test_dry_run_lists_trials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--seeds", "0-2", "--grid", "order=1,2", "--dry-run", "--name", "d",
                 "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sweep d: 6 trials"
    assert lines[1].endswith("d/darts-restricted-digits-s0-order=1")
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_tune_results_carry_the_hyper_parameters_and_every_metric(sweep4) -> None:
    """Tune's documented calls on a sweep's experiment: the ResultGrid's configs are the
    trials' hyper-parameters, the last result of each trial holds its epoch metrics and its
    final results (the dataframe has no NaN there), and ``Tuner.restore`` with the public
    trainable gives the best trial with its metrics."""
    from ray import tune

    from nasbench_suite.sweep.tune import sweep_trainable

    _, _, sweep_dir, _ = sweep4
    (experiment,) = [p for p in (sweep_dir / ".ray").iterdir() if p.is_dir()]
    frame = tune.ExperimentAnalysis(str(experiment)).dataframe()
    for column in ("config/method", "config/space", "config/dataset", "config/seed",
                   "config/w_lr", "config/epochs", "config/channels"):
        assert column in frame.columns, column
    assert sorted(frame["config/w_lr"]) == [0.025, 0.025, 0.05, 0.05]
    assert sorted(frame["config/seed"]) == [0, 0, 1, 1]
    metrics = ("train_loss", "supernet_raw_acc_score", "acc", "supernet_acc", "macs",
               "params", "search_time_s", "epoch")
    assert not frame[list(metrics)].isna().any().any(), frame[list(metrics)]
    assert (frame["status"] == FINISHED).all()

    grid = tune.Tuner.restore(str(experiment), trainable=sweep_trainable).get_results()
    assert len(grid) == 4 and not grid.errors
    assert {(r.config["method"], r.config["seed"], r.config["w_lr"]) for r in grid} == {
        ("darts", s, lr) for s in (0, 1) for lr in (0.025, 0.05)}
    best = grid.get_best_result(metric="acc", mode="max")
    assert best.metrics["acc"] == max(r.metrics["acc"] for r in grid)
    folder = RunFolder(sweep_dir / f"darts-restricted-digits-s{best.config['seed']}-"
                                   f"w_lr={best.config['w_lr']}")
    summary = folder.summary()
    assert best.metrics["acc"] == summary.inherited.derived_acc
    assert best.metrics["macs"] == summary.derived.macs
    assert best.metrics["train_loss"] == folder.metrics()[-1]["train_loss"]
    assert best.checkpoint is not None  # the last epoch's run state


def _worker_pids() -> set[int]:
    """This test's Ray worker processes that run a Tune function trainable: descendants of
    this process only (the local session's raylet is its child), never another Ray on the
    machine (a sweep or experiment running beside the tests)."""
    from tests.ray_cluster import descendants

    pids = set()
    for pid in descendants(os.getpid()):
        try:
            text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "ImplicitFunc" in text:
            pids.add(pid)
    return pids


@pytest.mark.slow
def test_a_killed_worker_is_restarted_by_tune_and_resumes_from_its_checkpoint(
        local_ray, tmp_path: Path) -> None:
    import os
    import signal
    import threading
    import time

    from ray.tune import ExperimentAnalysis

    fixed = {**TINY, "epochs": 3, "max_train_images": 256}
    spec = SweepSpec(name="killed", seeds=[0], fixed=fixed)
    (trial,) = expand(spec, (tmp_path / "killed").resolve(), log=lambda line: None)
    killed: list[int] = []

    def kill_mid_epoch() -> None:
        folder = RunFolder(trial.run_dir)
        deadline = time.time() + 300
        while time.time() < deadline:
            if folder.is_run() and folder.has_checkpoint() and folder.epochs_done() >= 1:
                time.sleep(0.3)  # into the next epoch
                for pid in _worker_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_mid_epoch)
    killer.start()
    (outcome,) = run_sweep(spec, tmp_path, Resources(cpus_per_trial=1, max_failures=1))
    killer.join()
    assert killed, "the trial's worker was never found"
    assert outcome.status == FINISHED
    (experiment,) = [p for p in (tmp_path / "killed" / ".ray").iterdir() if p.is_dir()]
    (tune_trial,) = ExperimentAnalysis(str(experiment)).trials
    assert tune_trial.run_metadata.num_failures == 1
    # The restarted trial resumed: the same result as an uninterrupted run.
    whole = run_search(resolve_config({**fixed, "out": str(tmp_path / "whole")}),
                       progress=False, log=lambda line: None)
    assert RunFolder(trial.run_dir).genotype() == RunFolder(whole).genotype()
    assert [m["train_loss"] for m in RunFolder(trial.run_dir).metrics()] == [
        m["train_loss"] for m in RunFolder(whole).metrics()]


@pytest.mark.slow
def test_a_local_sweep_listens_on_loopback_and_leaves_no_ray_process_when_killed(
        tmp_path: Path) -> None:
    """`nasbench sweep` without --address: while a trial runs, every socket its Ray
    processes listen on is 127.0.0.1; killing the driver (SIGKILL) leaves no Ray process
    10 s later."""
    import os
    import subprocess
    import sys
    import time

    from tests.ray_cluster import (
        descendants,
        kill_driver_and_list_leftovers,
        listeners,
        loopback_violations,
        snapshot,
    )

    repo = Path(__file__).resolve().parents[1]
    fixed = [f"--set={k}={v}" for k, v in {**TINY, "epochs": 50, "max_train_images": 256}.items()]
    driver = subprocess.Popen(
        [sys.executable, "-m", "nasbench_suite.cli.main", "sweep", "--name", "loop", "--out",
         str(tmp_path), "--quiet", *fixed], cwd=repo, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        trial = tmp_path / "loop" / "darts-restricted-digits-s0"
        deadline = time.time() + 240
        while not RunFolder(trial).epochs_done() and time.time() < deadline:
            time.sleep(0.5)
        assert RunFolder(trial).epochs_done(), "the trial never started"
        procs = snapshot(descendants(driver.pid))
        found = listeners(p.pid for p in procs)
        assert found, "a running sweep's Ray processes listen somewhere"
        assert loopback_violations(found) == []
    except BaseException:
        driver.kill()
        driver.wait()
        raise
    assert kill_driver_and_list_leftovers(driver, procs, 10.0) == []


def test_tune_configs_are_the_hyper_parameters_and_name_the_run_folders(tmp_path: Path) -> None:
    """Each trial's Tune config resolves to the trial's own config and names its folder; a
    full grid becomes Tune's grid_search, anything else exact configs (Tune needs the same
    keys in every trial: a method's own override is None for the other method)."""
    from ray import tune

    from nasbench_suite.sweep.tune import (
        SWEEP_KEY,
        resolved,
        run_dir_of,
        search_space,
        trial_name,
        tune_configs,
    )

    sweep_dir = (tmp_path / "s").resolve()
    spec = SweepSpec(name="s", seeds=[0, 1], grid={"w_lr": [0.025, 0.05]}, fixed=dict(TINY))
    trials = expand(spec, sweep_dir, log=lambda line: None)
    points = tune_configs(trials, sweep_dir, threads=1)
    for trial, point in zip(trials, points, strict=True):
        assert {k: point[k] for k in ("method", "space", "dataset", "seed", "w_lr")} == {
            "method": "darts", "space": "restricted", "dataset": "digits",
            "seed": trial.config["seed"], "w_lr": trial.axes["w_lr"]}
        assert resolved(point).to_dict() == trial.config
        assert trial_name(point) == trial.trial_id and run_dir_of(point) == trial.run_dir
    space, given = search_space(points)
    assert given == []
    assert space["seed"] == tune.grid_search([0, 1])
    assert space["w_lr"] == tune.grid_search([0.025, 0.05])
    assert space["epochs"] == 1 and space[SWEEP_KEY]["out"] == str(sweep_dir)
    space, given = search_space(points[1:])  # a re-run of three: not a grid
    assert given == points[1:] and space["epochs"] == 1

    spec = SweepSpec(name="m", methods={"darts": {"hp.order": 2}, "gold": {}},
                     method_spaces={"gold": ["relaxed"]}, spaces=["restricted", "relaxed"],
                     fixed=dict(TINY))
    trials = expand(spec, sweep_dir, log=lambda line: None)
    points = tune_configs(trials, sweep_dir, threads=1)
    assert [p["hp.order"] for p in points] == [2, 2, None]
    for trial, point in zip(trials, points, strict=True):
        assert resolved(point).to_dict() == trial.config
        assert trial_name(point) == trial.trial_id
    assert search_space(points)[1] == points


def test_final_results_hold_the_last_epoch_the_summary_and_the_ground_truth(tiny_config) -> None:
    """What a trial reports to Tune last: its last epoch's metrics, the final results under
    the names of `nasbench table`, and the table's ground truth in nb201."""
    from nasbench_suite.sweep.trials import final_results

    run = RunFolder(run_search(tiny_config(space="nb201"), progress=False,
                               log=lambda line: None))
    row, summary, last = final_results(run), run.summary(), run.metrics()[-1]
    assert row["epoch"] == last["epoch"] and row["train_loss"] == last["train_loss"]
    assert row["acc"] == summary.inherited.derived_acc
    assert (row["macs"], row["params"]) == (summary.derived.macs, summary.derived.params)
    assert summary.ground_truth
    assert {k: row[k] for k in summary.ground_truth} == summary.ground_truth
