"""The suite from Python: run a search, read runs back, build their networks.

The command line and this module share everything below them (the config resolution, the
search loop, the run folder), so a run started here is the same folder `nasbench show`,
`nasbench plot` and `nasbench table` read. Quiet by default: no progress bar, no config
print-out (``log=print`` brings them back).

    import nasbench_suite as nb

    run = nb.search("darts", "restricted", epochs=2)
    run.genotype              # the searched architecture (a Genotype)
    run.metrics               # one row per epoch (pandas)
    net = run.network()       # the discrete network, ready to train from scratch
    nb.load_runs("results/runs")   # every finished run under a folder, one row each
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from nasbench_suite.config import resolve_config
from nasbench_suite.spaces import Genotype
from nasbench_suite.store.index import load_index
from nasbench_suite.store.records import Summary
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search


@dataclass(frozen=True)
class Run:
    """One run folder, read through the suite's typed readers."""

    path: Path

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.path)

    @property
    def config(self) -> dict[str, Any]:
        """The config the run ran (config.yaml)."""
        return self.folder.config_dict()

    @property
    def genotype(self) -> Genotype:
        """The searched architecture (genotype.json)."""
        return self.folder.genotype()

    @property
    def summary(self) -> Summary:
        """What the run measured at its end (summary.json): accuracies with their split,
        the derived network's cost, how far the architecture weights moved, ..."""
        return self.folder.summary()

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per epoch (metrics.jsonl)."""
        return pd.DataFrame(self.folder.metrics())

    @property
    def ground_truth(self) -> dict[str, Any] | None:
        """The published accuracies of the run's cell where its space has a table
        (NAS-Bench-201), else None."""
        return self.summary.ground_truth

    def network(self, channels: int | None = None, layers: int | None = None,
                auxiliary: bool = False) -> nn.Module:
        """The discrete network of the searched genotype, for training from scratch (by
        default at the search's own width and depth). ``forward`` returns ``(logits,
        auxiliary logits or None)``."""
        return self.folder.space().network(self.genotype, channels=channels, layers=layers,
                                           auxiliary=auxiliary)


def search(method: str = "darts", space: str = "restricted", dataset: str = "digits", *,
           preset: str = "mini", seed: int = 0, epochs: int | None = None,
           out: str | Path = "results/runs", hp: dict[str, Any] | None = None,
           progress: bool = False, log: Callable[[str], None] | None = None,
           **fields: Any) -> Run:
    """Run one search, as `nasbench run` does, and return its run.

    ``fields`` are any config fields (``channels=8``, ``batch_size=32``, ``image_size=16``,
    ``threads=1``...), ``hp`` the method's hyper-parameters (``{"order": 2}``). A bad value
    raises :class:`nasbench_suite.errors.UsageError` with the CLI's one-line message.
    """
    overrides: dict[str, Any] = {"method": method, "space": space, "dataset": dataset,
                                 "preset": preset, "seed": seed, "out": str(out), **fields}
    if epochs is not None:
        overrides["epochs"] = epochs
    overrides.update({f"hp.{k}": v for k, v in (hp or {}).items()})
    path = run_search(resolve_config(overrides), progress=progress,
                      log=log or (lambda _: None))
    return Run(Path(path))


def load_run(path: str | Path) -> Run:
    """A run folder written before (by `nasbench run`, a sweep or :func:`search`)."""
    return Run(RunFolder(path).check().path)


def load_runs(*paths: str | Path) -> pd.DataFrame:
    """Every finished run under ``paths`` (run, sweep or experiment folders), one row per run
    and per recorded architecture: the table `nasbench table` and `nasbench plot` read."""
    return load_index(list(paths) or ["results"])
