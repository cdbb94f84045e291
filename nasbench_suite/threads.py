"""Threads that never spin against other work: OpenMP's wait policy and the thread count.

Why: torch's CPU kernels run in OpenMP (libgomp) parallel regions, and a search step issues
thousands of small ones. By default a libgomp thread that reaches the end of a region
*spins* for a while before it sleeps, waiting for its siblings. When another process holds
the core a sibling was on, every region waits for the scheduler to bring that sibling back,
and the whole step slows down several times. Sweeps put several trials on one machine, so
that is the common case, not the exception.

Measured on the project's 2-core machine (torch 2.14.1, DARTS first-order step, C=8,
5 cells, 16x16x3, batch 64; the same step in every row):

==========================================================  ==========================
machine                                                     step
==========================================================  ==========================
two other single-thread CPU-bound processes, 1 thread       3.27 s
same, 2 threads, default wait policy                        11.06 s median, 22.5 s max
same, 2 threads, ``OMP_WAIT_POLICY=PASSIVE``                3.88 s
==========================================================  ==========================

Whole processes (start-up included: a search of a fixed number of those steps, default
2 threads), the two variants run in turn (A B A B ...), medians of the pairs:

==========================================  ===============  ================  =========
machine                                     PASSIVE          default           ratio
==========================================  ===============  ================  =========
another user's test runs (load 2.2-3.2),    8.35 s           46.5 s            0.16
4 steps                                     (7.5-9.5)        (12.2-106.5)
the same plus two CPU-bound processes       10.7 s           52.5 s            0.17
(load 3-4), 2 steps                         (8.8-11.6)       (11.9-102.4)
==========================================  ===============  ================  =========

On a loaded machine the default policy is 5x slower on the median and unpredictable (one run
in ten as fast as PASSIVE, others 10x slower); PASSIVE costs nothing measurable there. The
idle-machine cost is in :data:`IDLE_COST`.

The wait policy is read once, when libgomp loads (with torch), so
:func:`configure_openmp` must run before ``import torch``; a value the user set is kept.
:func:`default_threads` gives a thread count that fits the CPUs this process may run on
(its affinity mask, and in a Ray worker the CPUs Ray assigned), never more.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import MutableMapping

#: What :func:`configure_openmp` sets when the user has not set it.
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}

#: PASSIVE against the default policy on an idle machine, whole process (module docstring).
#: To measure: the same fixed-step search run in turn with and without the variable, under
#: ``/usr/bin/time -v``, nothing else running; the policy only changes how idle threads wait.
IDLE_COST = "not measured yet: the machine was never idle while this module was written"


def configure_openmp(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Make OpenMP threads sleep, not spin, when they wait: ``OMP_WAIT_POLICY=PASSIVE``.

    Call it before torch is imported (libgomp reads the variable once, when it loads).
    A wait policy the user set (``OMP_WAIT_POLICY``, or libgomp's own ``GOMP_SPINCOUNT``) is
    left alone. Returns the variables it set (empty if none). If torch is already imported
    the variable is still set (child processes inherit it) and a warning says that this
    process keeps the policy it loaded with.
    """
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return {}
    env.update(PASSIVE)
    if environ is None and "torch" in sys.modules:
        warnings.warn("configure_openmp() ran after torch was imported: OMP_WAIT_POLICY=PASSIVE "
                      "applies to child processes only", RuntimeWarning, stacklevel=2)
    return dict(PASSIVE)


def usable_cpus() -> int:
    """How many CPUs this process may run on: its affinity mask (``taskset``, cgroups'
    cpusets, container limits set that way), or the machine's count where the mask is not
    available."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def ray_assigned_cpus() -> float | None:
    """The CPUs Ray assigned to the current task or actor, or None outside a Ray worker
    (Ray is not imported here: a process that has not imported it is not a Ray worker)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # the driver, or an API change: no assignment to honour
        return None
    return float(cpus) if cpus else None


def default_threads(allowed_cpus: float | None = None) -> int:
    """The default number of torch threads: every CPU this process may use, no more.

    ``allowed_cpus``: the CPUs assigned by a scheduler (in a Ray worker, the trial's
    ``num_cpus``, e.g. from :func:`ray_assigned_cpus`; fractions round down, to at least
    1). The result never exceeds the affinity mask, so threads never outnumber the cores
    they can run on.
    """
    threads = usable_cpus()
    if allowed_cpus is not None:
        if allowed_cpus <= 0:
            raise ValueError(f"allowed_cpus must be positive, got {allowed_cpus}")
        threads = min(threads, max(1, int(allowed_cpus)))
    return threads


def worker_environment(cpus: float) -> dict[str, str]:
    """The environment of a Ray worker running a trial or a training from scratch: the wait
    policy this process has (the passive one unless the user set another) and at most
    ``cpus`` OpenMP threads."""
    env = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ}
    configure_openmp(env)  # the passive policy, unless one was set (and is passed on)
    env["OMP_NUM_THREADS"] = str(default_threads(cpus))
    return env
