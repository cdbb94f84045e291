"""Run folders of layout 1 (written before run.json existed): their RunInfo, rebuilt.

Such a folder has a config and an architecture log but no record of its dataset's identity
or its space's layout; both are derived here from the config, as the suite of that time
would have written them. Kept apart from the run folder so that the folder logic does not
depend on the data and space modules.
"""

from __future__ import annotations

from typing import Any

from nasbench_suite.data.datasets import dataset_id
from nasbench_suite.spaces import SPACES
from nasbench_suite.spaces.layout import cell_edges
from nasbench_suite.store.records import ArchRecord, RunInfo


def rebuild_info(config: dict[str, Any], arch: list[ArchRecord]) -> RunInfo:
    """The RunInfo of a layout-1 folder from its config and architecture log."""
    space = SPACES.get(str(config.get("space")))
    ops = list(config.get("ops") or (space.default_ops if space else []))
    groups = list(arch[0].genotype["groups"]) if arch else []
    edges = [[e.input, e.node] for e in cell_edges(int(config.get("nodes", 4)))]
    return RunInfo(layout=1, suite="", created="",
                   dataset_id=dataset_id(str(config.get("dataset"))), groups=groups,
                   ops=ops, edges=edges)
