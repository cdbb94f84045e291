"""What `--resume` may change: the config a resumed run continues with.

A resumed run must end as the uninterrupted one would have, so it keeps its own config,
its thread count included: torch's CPU kernels split their reductions by thread, so two
thread counts give results that differ in the last bits, and a search amplifies that into
another architecture. Only where it runs may change (device, output and data folders) and,
when the user asks, the thread count: then the run records the override (run.json's
``resumed_threads``) and the user is told, in one line, that the result may differ from an
uninterrupted run. An override that would change the result otherwise is refused before
anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nasbench_suite.config import (
    RunConfig,
    requested_config,
    resolve_config,
    resume_values,
    saved_config,
)
from nasbench_suite.errors import UsageError
from nasbench_suite.store.runfolder import RunFolder

#: overrides that cannot change a run's result
RESUME_SAFE = frozenset({"threads", "device", "out", "data_dir"})


def resume_config(folder: RunFolder, overrides: dict[str, Any],
                  warn: Callable[[str], None]) -> RunConfig:
    """The saved config of ``folder`` with the resume-safe ``overrides`` applied; a
    UsageError naming every override that would change the result. The run's own thread
    count is kept unless ``overrides`` names another one: then ``warn`` gets one line and
    run.json records the override."""
    saved = saved_config(folder)
    asked = requested_config(saved)  # an override may repeat the decided value or the ask
    changed = sorted(k for k, v in overrides.items()
                     if k not in RESUME_SAFE and v not in (saved.get(k), asked.get(k))
                     and not (k.startswith("hp.") and (saved.get("hp") or {}).get(k[3:]) == v))
    if changed:
        raise UsageError(f"--resume keeps the run's config; {', '.join(changed)} would "
                         f"change its result (start a new run instead)")
    ran_with = saved.get("threads") or folder.info().threads  # older runs: run.json's
    threads = overrides.get("threads")
    if threads is None and ran_with:
        overrides = {**overrides, "threads": ran_with}
    elif threads is not None and ran_with and threads != ran_with:
        with folder.lock():  # another writer: refused here, before run.json changes
            folder.record_resume_threads(int(threads))
        warn(f"resuming with {threads} threads where the run used {ran_with}: the result may "
             "differ from an uninterrupted run's in the last bits (recorded in run.json)")
    return resolve_config({**resume_values(saved), **{k: v for k, v in overrides.items()
                                                      if k in RESUME_SAFE}})
