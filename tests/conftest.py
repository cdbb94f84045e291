"""Shared fixtures: tiny configs that run a whole search on digits in seconds, one intra-op
thread for tiny networks, and one local Ray for every test that only needs *a* session."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from nasbench_suite.config import RunConfig, resolve_config

SHARED_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-10k.npz"

#: A whole search in a few seconds: 3 cells of 4 channels, 128 digits images.
TINY: dict[str, Any] = {
    "epochs": 1, "batch_size": 32, "channels": 4, "layers": 3,
    "max_train_images": 128, "eval_batch_size": 128, "bn_calib_batches": 2, "threads": 1,
}


#: evaluation settings of the tiny experiments (tests/test_claims.py, tests/test_reproduce.py):
#: a 4-channel network trained from scratch, no auxiliary head, no drop path
TINY_EVAL: dict[str, Any] = {"channels": 4, "batch_size": 64, "auxiliary_weight": 0.0,
                             "drop_path": 0.0}


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread for the block: tiny networks are overhead-bound, and threads
    spinning on shared CI cores make them 10-50x slower. Not autouse: the thread tests
    (tests/test_threads.py) must see the process's own setting; modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_experiment(out: Path, search: dict[str, Any], **values: Any) -> dict[str, Any]:
    """The settings both tiny experiments share (2 seeds, 2 search epochs, 1 epoch from
    scratch, one thread per trial), for ``ClaimsConfig(**...)``/``ReproduceConfig(**...)``."""
    return {"seeds": [0, 1], "epochs": 2, "eval_epochs": 1, "search_set": dict(search),
            "eval_set": dict(TINY_EVAL), "out": str(out), "threads": 1, **values}


#: PAD-NAS's constrained NSGA-II in the tiny experiments: a population of 4 over 1 generation
#: (tests/test_rankcorr.py's run). The mini preset's 24 over 4 scores up to 120 architectures
#: per stage with inherited weights: 4 stages of it were most of a tiny experiment's time
#: (PAD-NAS ~330 s of a ~800 s claims experiment on the loaded 2-core machine, DARTS ~17 s),
#: and no assertion reads the search's size (the stages, their checkpoints, the rank
#: correlation and the report's rows are all still made).
TINY_PADNAS: dict[str, Any] = {"hp.population": 4, "hp.generations": 1}


def with_tiny_padnas(experiment: Any) -> Any:
    """``experiment`` (an experiments.base.Experiment) whose sweep gives PAD-NAS
    :data:`TINY_PADNAS`, everything else as the experiment's own ``sweep_spec`` makes it.
    Run it with experiments.base.run_experiment, the driver ``run_claims``/``run_nb201`` call."""

    def sweep_spec(cfg: Any) -> Any:
        spec = experiment.sweep_spec(cfg)
        if "padnas" in spec.methods:
            spec.methods["padnas"] = {**spec.methods["padnas"], **TINY_PADNAS}
        return spec

    return dataclasses.replace(experiment, sweep_spec=sweep_spec)


class SharedRay:
    """One local Ray (2 CPUs, loopback) started on first use and kept while modules use it.

    Why: starting Ray and warming its workers (each imports torch) costs seconds to tens of
    seconds on a loaded 2-core machine, and the sweep and experiment tests only need *a*
    session (``ray_session`` uses one that is already up). A module none of whose tests
    asks for ``local_ray`` gets no Ray running (:func:`_shared_ray_only_where_used`):
    the tests of ``ray_session`` start their own, and the thread tests must not see Ray's
    processes; the next module that uses it starts it again."""

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None

    def start(self) -> None:
        if self._stack is not None:
            return
        from nasbench_suite.sweep.ray_session import ray_session
        from nasbench_suite.sweep.tune import worker_env

        with contextlib.ExitStack() as stack:
            stack.enter_context(ray_session(num_cpus=2, env_vars=worker_env(1)))
            self._stack = stack.pop_all()

    def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules that use ``local_ray`` run last, one after the other, in their collected
    order (every other test keeps its order): the shared Ray then starts once per session
    instead of once per such module, since a module without it between two that use it
    stops it (:func:`_shared_ray_only_where_used`)."""
    users = {item.module for item in items
             if "local_ray" in getattr(item, "fixturenames", ()) and hasattr(item, "module")}
    items.sort(key=lambda item: getattr(item, "module", None) in users)


@pytest.fixture(scope="session")
def shared_ray() -> Iterator[SharedRay]:
    shared = SharedRay()
    yield shared
    shared.stop()


@pytest.fixture(scope="module")
def local_ray(shared_ray: SharedRay) -> None:
    """A local Ray session for the module's tests: the session's shared one."""
    shared_ray.start()


@pytest.fixture(scope="module", autouse=True)
def _shared_ray_only_where_used(request: pytest.FixtureRequest, shared_ray: SharedRay) -> None:
    """Stop the shared Ray before a module that does not use it (see :class:`SharedRay`)."""
    module = request.module
    if not any("local_ray" in item.fixturenames for item in request.session.items
               if getattr(item, "module", None) is module):
        shared_ray.stop()


@pytest.fixture
def tiny_config(tmp_path: Path):
    """``tiny_config(method=..., space=..., **overrides)`` -> a validated RunConfig."""

    def make(**overrides: Any) -> RunConfig:
        return resolve_config({**TINY, "out": str(tmp_path / "runs"), **overrides})

    return make


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (padding stripped)."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.strip().startswith("|")]
