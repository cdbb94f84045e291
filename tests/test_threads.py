"""OpenMP's wait policy is set before torch loads unless the user set one; thread counts fit
the CPUs the process may use."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nasbench_suite.threads import configure_openmp, default_threads, usable_cpus

PROBE = ("import nasbench_suite.threads as t; t.configure_openmp(); import torch, os; "
         "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in __import__('sys').modules)")


def _probe(env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    return out.stdout.strip()


def test_passive_is_set_in_a_process_that_imports_the_module_before_torch() -> None:
    assert _probe({}) == "PASSIVE True"


def test_a_users_value_is_kept() -> None:
    assert _probe({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE True"
    env = {"GOMP_SPINCOUNT": "1000"}
    assert configure_openmp(env) == {} and env == {"GOMP_SPINCOUNT": "1000"}


def test_configure_on_a_mapping_reports_what_it_set() -> None:
    env: dict[str, str] = {}
    assert configure_openmp(env) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


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
