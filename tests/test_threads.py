"""OpenMP's wait policy is set before torch loads (passive on a busy machine and in Ray
workers, libgomp's default on an idle one) unless the user set one; thread counts fit the
CPUs the process may use."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from nasbench_suite import threads
from nasbench_suite.threads import (
    configure_openmp,
    default_threads,
    usable_cpus,
    worker_environment,
)

_POLICY_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NASBENCH_WAIT_POLICY")

PROBE = ("import nasbench_suite.threads as t; t.configure_openmp(); import torch, os; "
         "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in __import__('sys').modules)")


def _probe(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in _POLICY_VARS}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    return out.stdout.strip()


def test_passive_is_set_in_a_process_that_imports_the_module_before_torch() -> None:
    assert _probe({"NASBENCH_WAIT_POLICY": "passive"}) == "PASSIVE True"
    assert _probe({"NASBENCH_WAIT_POLICY": "default"}) == "None True"


def test_a_users_value_is_kept() -> None:
    assert _probe({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE True"
    env = {"GOMP_SPINCOUNT": "1000"}
    assert configure_openmp(env) == {} and env == {"GOMP_SPINCOUNT": "1000"}


def test_configure_on_a_mapping_reports_what_it_set() -> None:
    env: dict[str, str] = {}
    assert configure_openmp(env, busy=True) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_auto_is_passive_only_on_a_busy_machine(monkeypatch) -> None:
    idle: dict[str, str] = {}
    assert configure_openmp(idle, busy=False) == {} and idle == {}
    for mode, busy, expected in [("passive", False, "PASSIVE"), ("default", True, None),
                                 ("auto", True, "PASSIVE"), (" AUTO ", False, None)]:
        env = {"NASBENCH_WAIT_POLICY": mode}
        configure_openmp(env, busy=busy)
        assert env.get("OMP_WAIT_POLICY") == expected, (mode, busy)
    # busy=None asks the machine: what it sees decides
    for others, expected in [(0, None), (1, "PASSIVE"), (3, "PASSIVE")]:
        monkeypatch.setattr(threads, "other_runnable", lambda others=others: others)
        env = {}
        configure_openmp(env)
        assert env.get("OMP_WAIT_POLICY") == expected, others
    with pytest.raises(ValueError, match="NASBENCH_WAIT_POLICY='spin': expected one of"):
        configure_openmp({"NASBENCH_WAIT_POLICY": "spin"})


def test_the_machine_is_busy_while_another_process_computes() -> None:
    assert threads.other_runnable() is not None  # Linux publishes the count
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert threads.machine_busy()
    finally:
        burner.kill()
        burner.wait()


def test_ray_workers_are_passive_unless_told(monkeypatch) -> None:
    for var in _POLICY_VARS:
        monkeypatch.delenv(var, raising=False)
    assert worker_environment(1) == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("NASBENCH_WAIT_POLICY", "default")
    assert worker_environment(1) == {"OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert worker_environment(1)["OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_bad_mode_is_one_error_line(tmp_path) -> None:
    proc = _cli(["list", "methods"], tmp_path, {"NASBENCH_WAIT_POLICY": "spin"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "nasbench: error: NASBENCH_WAIT_POLICY='spin': expected one of auto, passive, default"]


def test_thread_count_never_exceeds_the_affinity_mask() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert usable_cpus() == cpus
    assert default_threads() == cpus
    for allowed in (0.5, 1, 1.5, 2, 64):
        n = default_threads(allowed)
        assert 1 <= n <= cpus and n <= max(1, int(allowed))
    with pytest.raises(ValueError):
        default_threads(0)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to narrow the mask")
def test_thread_count_follows_a_narrowed_mask() -> None:
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from nasbench_suite.threads import default_threads; print(default_threads(4))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "1"


# --- The processes that train: the CLI, a sweep trial, an evaluation worker ------------------

_SEARCH = {"batch_size": 32, "channels": 4, "layers": 3, "max_train_images": 128,
           "eval_batch_size": 128, "bn_calib_batches": 2}


def _cli(args: list[str], tmp_path, env_extra: dict[str, str], one_cpu: bool = False):
    """``nasbench ARGS`` in a fresh process whose environment has no wait policy unless
    ``env_extra`` gives one; ``one_cpu`` narrows its affinity mask to one CPU."""
    env = {k: v for k, v in os.environ.items() if k not in (*_POLICY_VARS, "OMP_NUM_THREADS")}
    env.update(env_extra)
    first = min(os.sched_getaffinity(0))
    return subprocess.run(
        [sys.executable, "-m", "nasbench_suite.cli.main", *args], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=900,
        preexec_fn=(lambda: os.sched_setaffinity(0, {first})) if one_cpu else None)


def _sets(values: dict) -> list[str]:
    return [arg for k, v in values.items() for arg in ("--set", f"{k}={v}")]


@pytest.mark.parametrize(("env_extra", "policy"), [
    ({"NASBENCH_WAIT_POLICY": "passive"}, "PASSIVE"),
    ({"NASBENCH_WAIT_POLICY": "default"}, None),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE")])
def test_a_cli_run_has_the_policy_it_was_told_and_fits_its_cpus(tmp_path, env_extra,
                                                                policy) -> None:
    from nasbench_suite.store.runfolder import find_runs

    narrowed = len(os.sched_getaffinity(0)) >= 2
    proc = _cli(["run", "--method", "gold", "--space", "relaxed", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "runs"), *_sets(_SEARCH)], tmp_path, env_extra,
                one_cpu=narrowed)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = find_runs([tmp_path / "runs"])
    info = run.info()
    assert info.omp_wait_policy == policy
    assert info.threads == (1 if narrowed else len(os.sched_getaffinity(0)))


def test_a_cli_run_started_beside_other_work_is_passive(tmp_path) -> None:
    """The default (auto) policy in a real CLI process: a CPU-bound process is running as
    the search starts, so the run is PASSIVE and says so in run.json."""
    from nasbench_suite.store.runfolder import find_runs

    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        proc = _cli(["run", "--method", "darts", "--space", "restricted", "--epochs", "1",
                     "--quiet", "--out", str(tmp_path / "runs"), *_sets(_SEARCH)], tmp_path, {})
    finally:
        burner.kill()
        burner.wait()
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = find_runs([tmp_path / "runs"])
    assert run.info().omp_wait_policy == "PASSIVE"


@pytest.mark.slow
def test_sweep_trials_and_evaluation_workers_are_passive_with_their_cpus(tmp_path) -> None:
    """One tiny `reproduce darts-failure` (its searches are sweep trials, its trainings from
    scratch Ray tasks), started from a shell without a wait policy on a machine the driver
    may find idle, threads left to default: every trial and every training ran with the
    passive policy and one thread per CPU given."""
    from nasbench_suite.store.runfolder import find_runs

    proc = _cli(["reproduce", "darts-failure", "--seeds", "0", "--epochs", "1",
                 "--hessian-every", "0",  # no eigenvalue: not what this test reads
                 "--eval-epochs", "1", "--cpus-per-trial", "1",
                 "--eval-cpus", "1", "--max-concurrent", "2", "--quiet",
                 "--out", str(tmp_path), "--name", "threads", *_sets(_SEARCH),
                 "--eval-set", "channels=4", "--eval-set", "batch_size=64"], tmp_path, {})
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = find_runs([tmp_path / "threads"])
    assert len(runs) == 3
    for run in runs:
        info = run.info()
        assert (info.omp_wait_policy, info.threads) == ("PASSIVE", 1), run.path
        results = run.evaluations()
        assert results, f"no training from scratch for {run.path}"
        for label, result in results.items():
            assert (result.omp_wait_policy, result.threads) == ("PASSIVE", 1), (run.path, label)
