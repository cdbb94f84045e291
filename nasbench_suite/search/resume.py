"""What `--resume` may change: the config a resumed run continues with.

A resumed run must end as the uninterrupted one would have, so it keeps its own config.
Only where it runs may change (threads, device, output and data folders); an override that
would change the result is refused before anything runs.
"""

from __future__ import annotations

from typing import Any

from nasbench_suite.config import RunConfig, resolve_config
from nasbench_suite.errors import UsageError
from nasbench_suite.store.runfolder import RunFolder

#: overrides that cannot change a run's result
RESUME_SAFE = frozenset({"threads", "device", "out", "data_dir"})


def resume_config(folder: RunFolder, overrides: dict[str, Any]) -> RunConfig:
    """The saved config of ``folder`` with the resume-safe ``overrides`` applied; a
    UsageError naming every override that would change the result."""
    saved = folder.config_dict()
    changed = sorted(k for k, v in overrides.items()
                     if k not in RESUME_SAFE and saved.get(k) != v
                     and not (k.startswith("hp.") and (saved.get("hp") or {}).get(k[3:]) == v))
    if changed:
        raise UsageError(f"--resume keeps the run's config; {', '.join(changed)} would "
                         f"change its result (start a new run instead)")
    return resolve_config({**saved, **{k: v for k, v in overrides.items()
                                       if k in RESUME_SAFE}})
