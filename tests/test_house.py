"""The house rules, read from the sources: who may read run folders, what methods import,
and that a finished run's TensorBoard scalars are there for `tensorboard --logdir`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from nasbench_suite.search.loop import run_search
from nasbench_suite.store.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nasbench_suite", "methods", "spaces")
RUN_FILES = ("summary.json", "config.yaml", "trial.json", "failure.json", "run.json",
             "metrics.jsonl", "arch.jsonl", "events.jsonl", "series.json", "result.json",
             "checkpoint.pt")


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _core(module: str) -> bool:
    """A module of the core (not one of the two lower layers that install beneath it)."""
    return module.startswith("nasbench_suite") and not module.startswith(
        ("nasbench_suite.methods", "nasbench_suite.spaces"))


def test_only_the_run_folder_module_names_the_files_of_a_run() -> None:
    """Every reader and writer of run folders goes through nasbench_suite.store.runfolder."""
    offenders = []
    for package in PACKAGES:
        for path in _sources(package):
            if path.name in ("runfolder.py", "evalfolder.py"):
                continue
            text = path.read_text()
            for name in RUN_FILES:
                if re.search(rf"['\"]{re.escape(name)}['\"]", text):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def test_methods_import_nothing_from_the_core_and_name_no_space() -> None:
    for path in _sources("methods"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not _core(node.module or ""), path.name
            elif isinstance(node, ast.Import):
                assert not any(_core(a.name) for a in node.names), path.name
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in ("restricted", "relaxed"), \
                    f"{path.name} names a space: {node.value!r}"
            elif isinstance(node, ast.Attribute) and node.attr == "name":
                owner = node.value
                label = owner.attr if isinstance(owner, ast.Attribute) else getattr(
                    owner, "id", "")
                assert label != "space", f"{path.name} reads space.name"


def test_tensorboard_reads_the_scalars_of_a_finished_run(tiny_config) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = RunFolder(run_search(tiny_config(epochs=2), progress=False, log=lambda _: None))
    board = EventAccumulator(str(run.tensorboard_dir))
    board.Reload()
    tags = set(board.Tags()["scalars"])
    assert {"train_loss", "supernet_raw_acc_score", "alpha_move_median"} <= tags
    losses = board.Scalars("train_loss")
    assert [s.step for s in losses] == [0, 1]
    # TensorBoard stores float32
    assert [s.value for s in losses] == pytest.approx(
        [row["train_loss"] for row in run.metrics()], rel=1e-6)
