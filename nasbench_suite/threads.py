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
in ten as fast as PASSIVE, others 10x slower). On an idle machine PASSIVE is not free: the
same step, each policy in its own process, in turn, 2 threads, median of a process's 5-6
steps, median over 3-7 processes (``python tests/benchmarks/wait_policy.py``):

==========================================  ========  ===============  ===================
machine                                     PASSIVE   default          ``GOMP_SPINCOUNT``
                                                      (300,000 spins)  10,000 / 30,000
==========================================  ========  ===============  ===================
idle                                        1.55 s    1.19 s           1.26 s / 1.07 s
two CPU-bound single-thread processes       1.93 s    5.05 s (max 42)  3.60 s / 8.60 s
==========================================  ========  ===============  ===================

So PASSIVE costs about 30% of a step (8% of a whole one-epoch search process) on an idle
machine, more than the 5% the suite allows, and no shorter spin keeps its gain under load.
The policy is therefore chosen by what the machine is doing (:func:`configure_openmp`,
``NASBENCH_WAIT_POLICY``); on the idle machine a whole one-epoch search under ``auto`` took
0.98x the default's time (4 pairs; every run had chosen the default):

- ``auto`` (default): PASSIVE when other work is running as the process starts
  (:func:`machine_busy`), libgomp's default when the machine is idle. A process that starts
  on an idle machine keeps the default if work starts beside it later: set ``passive`` for
  long runs on a machine you share.
- ``passive`` / ``default``: always that policy.
- Ray workers (sweep trials, trainings from scratch) are always PASSIVE: a sweep shares its
  machine by construction.

A value the user set (``OMP_WAIT_POLICY``, or libgomp's ``GOMP_SPINCOUNT``) always wins.
The wait policy is read once, when libgomp loads (with torch), so
:func:`configure_openmp` must run before ``import torch``.
:func:`default_threads` gives a thread count that fits the CPUs this process may run on
(its affinity mask, and in a Ray worker the CPUs Ray assigned), never more.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import MutableMapping

#: What :func:`configure_openmp` sets when the user has not set it.
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}

#: The environment variable that chooses how the wait policy is set (module docstring).
POLICY_VARIABLE = "NASBENCH_WAIT_POLICY"
POLICY_MODES = ("auto", "passive", "default")


def other_runnable(samples: int = 5, interval: float = 0.01) -> int | None:
    """How many tasks besides this one are running or ready to run, right now: the median of
    a few reads of the kernel's count (``/proc/loadavg``'s fourth field, which counts the
    reader itself). None where the kernel does not publish it (not Linux).

    Why not the load average: it remembers the last minutes, so a search started right after
    another (a shell loop, a benchmark) would see its predecessor as "other work".
    """
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                counts.append(int(f.read().split()[3].split("/")[0]))
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(interval)
    return max(0, sorted(counts)[len(counts) // 2] - 1)


def machine_busy() -> bool:
    """Is other work competing for the CPUs as this process starts? At least one other
    runnable task (Linux), or a one-minute load average of 0.5 or more elsewhere; a machine
    that cannot tell counts as busy (the safe choice: PASSIVE only costs speed)."""
    others = other_runnable()
    if others is not None:
        return others >= 1
    try:
        return os.getloadavg()[0] >= 0.5
    except (AttributeError, OSError):
        return True


def configure_openmp(environ: MutableMapping[str, str] | None = None,
                     busy: bool | None = None) -> dict[str, str]:
    """Make OpenMP threads sleep, not spin, when they wait (``OMP_WAIT_POLICY=PASSIVE``) if
    the machine is shared; leave libgomp's default on an idle one.

    Call it before torch is imported (libgomp reads the variable once, when it loads).
    A wait policy the user set (``OMP_WAIT_POLICY``, or libgomp's own ``GOMP_SPINCOUNT``) is
    left alone. ``NASBENCH_WAIT_POLICY`` (in ``environ``) chooses: ``auto`` (default) asks
    ``busy``, or :func:`machine_busy` when ``busy`` is None; ``passive`` and ``default`` do
    not ask. Returns the variables it set (empty if none). If torch is already imported the
    variable is still set (child processes inherit it) and a warning says that this process
    keeps the policy it loaded with. A bad ``NASBENCH_WAIT_POLICY`` raises ValueError.
    """
    env = os.environ if environ is None else environ
    mode = env.get(POLICY_VARIABLE, "auto").strip().lower() or "auto"
    if mode not in POLICY_MODES:
        raise ValueError(f"{POLICY_VARIABLE}={env[POLICY_VARIABLE]!r}: expected one of "
                         f"{', '.join(POLICY_MODES)}")
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env or mode == "default":
        return {}
    if mode == "auto" and not (machine_busy() if busy is None else busy):
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
    """The environment of a Ray worker running a trial or a training from scratch: the
    passive wait policy unless the user set one (or ``NASBENCH_WAIT_POLICY=default``), and at
    most ``cpus`` OpenMP threads."""
    env = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", POLICY_VARIABLE)
           if k in os.environ}
    configure_openmp(env, busy=True)  # trials share the machine: passive unless told
    env.pop(POLICY_VARIABLE, None)
    env["OMP_NUM_THREADS"] = str(default_threads(cpus))
    return env
