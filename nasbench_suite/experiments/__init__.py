"""Experiments: a registry plus the one driver (experiments/base.py) that runs them.

An experiment is one module that defines its config and an :class:`Experiment` value, plus
one entry here. The CLI (`nasbench reproduce`), `nasbench figures` and the report writer read
this registry; nothing else names an experiment. Modules are imported on first use, so
parsing a command line stays fast.

``rankcorr`` (PAD-NAS's rank correlation on one run, `nasbench rankcorr`) lives in this
folder as an analysis that experiments share, not as an entry: it has no sweep of its own.
``figures`` (`nasbench figures`) rebuilds every table and figure the docs show: the runs'
(report/) and each experiment's report, so it stands here, above both.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench_suite.errors import UsageError

if TYPE_CHECKING:  # experiments.base loads torch (through the config): not at parse time
    from nasbench_suite.experiments.base import Experiment

#: experiment name -> "module:attribute" of its Experiment
_MODULES: dict[str, str] = {
    "darts-failure": "nasbench_suite.experiments.darts_failure.experiment:EXPERIMENT",
    "claims": "nasbench_suite.experiments.claims.experiment:EXPERIMENT",
    "nb201": "nasbench_suite.experiments.nb201.experiment:EXPERIMENT",
}


def list_experiments() -> list[str]:
    return list(_MODULES)


def get_experiment(name: str) -> Experiment:
    if name not in _MODULES:
        raise UsageError(f"unknown experiment {name!r}; choose from "
                         f"{', '.join(list_experiments())}")
    module, attribute = _MODULES[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def experiment_in(folder: Path) -> Experiment:
    """The experiment whose folder ``folder`` is (its manifest says which)."""
    from nasbench_suite.experiments.base import manifest_of

    return get_experiment(manifest_of(folder).get("config", {}).get("experiment", ""))


def write_report(folder: Path, out: Path | None = None) -> list[Path]:
    """The report of whichever experiment ``folder`` holds; returns the files written."""
    return experiment_in(folder).write_report(folder, out)


def __getattr__(name: str) -> Any:
    """``Experiment`` on first use: `nasbench reproduce`'s parser lists the experiments
    without loading torch."""
    if name == "Experiment":
        from nasbench_suite.experiments.base import Experiment

        return Experiment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Experiment", "experiment_in", "get_experiment", "list_experiments", "write_report"]
