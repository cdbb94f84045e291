"""Run folders for the results tests (index, tables, plots), built once per session.

Real tiny DARTS runs give the schema exactly as run_search writes it; a copy of one, turned
into a run of a series-returning method (GOLD-NAS's point format), covers series rows
without training a second method.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from nasbench_suite.config import resolve_config
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search
from tests.conftest import TINY

_CACHE: dict[str, Path] = {}


def tiny_run(out: Path, **overrides: Any) -> Path:
    cfg = resolve_config({**TINY, "out": str(out), **overrides})
    return run_search(cfg, progress=False, log=lambda line: None)


def series_points(n: int = 3) -> list[dict[str, Any]]:
    """Points as GOLD-NAS records them: cost falling, accuracy mostly falling."""
    genotype = {"space": "relaxed", "cell_groups": ["cell0", "cell1", "cell2"],
                "groups": {f"cell{i}": {"edges": [["skip_connect", 0, 2]],
                                        "concat": [2, 3, 4, 5]} for i in range(3)}}
    return [{"index": i, "epoch": i, "reason": "record", "macs": 90_000.0 - 20_000 * i,
             "params": 6000 - 1500 * i, "acc": [0.30, 0.34, 0.20][i % 3], "lambda": 0.1 * i,
             "genotype": genotype} for i in range(n)]


def make_series_run(src: Path, dst: Path, method: str = "gold", seed: int = 5,
                    in_series_json: bool = True) -> Path:
    """A copy of a finished relaxed-space run, relabelled as ``method`` with a series."""
    shutil.copytree(src, dst)
    run = RunFolder(dst)
    run.drop_checkpoints()
    config = run.config_dict()
    config.update(method=method, seed=seed, hp={})
    run.write_config(yaml.safe_dump(config, sort_keys=False))
    points = series_points()
    summary = dataclasses.replace(
        run.summary(), method=method, seed=seed,
        series=[{k: v for k, v in p.items() if k != "genotype"} for p in points])
    run.write_summary(summary)
    if in_series_json:
        run.write_series(points)
    return dst


def tiny_results(factory: pytest.TempPathFactory) -> Path:
    """``<root>/runs``: darts restricted seeds 0 and 1, darts relaxed seed 0, and one
    series run ("gold", relaxed); built once per test session."""
    key = str(factory.getbasetemp())
    if key not in _CACHE:
        root = factory.mktemp("results")
        runs = root / "runs"
        tiny_run(runs, seed=0)
        tiny_run(runs, seed=1)
        relaxed = tiny_run(runs, space="relaxed", seed=0)
        make_series_run(relaxed, runs / "gold-relaxed-digits-s5-fake")
        _CACHE[key] = root
    return _CACHE[key]
