"""The house rules, read from the sources: who may read run folders, what methods import,
and that a finished run's TensorBoard scalars are there for `tensorboard --logdir`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nasbench_suite", "methods", "spaces")
RUN_FILES = ("summary.json", "config.yaml", "trial.json", "failure.json", "run.json",
             "metrics.jsonl", "arch.jsonl", "events.jsonl", "series.json", "result.json",
             "checkpoint.pt", "writer.lock")


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


# -- the import graph --------------------------------------------------------------------------
#: installed package -> its folder in the checkout (pyproject.toml's package-dir)
FOLDERS = {"nasbench_suite.spaces": ROOT / "spaces", "nasbench_suite.methods": ROOT / "methods",
           "nasbench_suite": ROOT / "nasbench_suite"}


def _module_files() -> dict[str, Path]:
    """Every module of the suite by its import name (``pkg.__init__`` as ``pkg``)."""
    modules = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            modules.setdefault(name, path)
    return modules


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The suite's modules that ``path`` imports anywhere: at the top, inside functions, under
    TYPE_CHECKING (a circle hidden in a function is still a circle)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
    return {m for m in found if m in modules and m != name}


def test_no_import_circles() -> None:
    """No module reaches itself through imports (Tarjan's strongly connected components)."""
    modules = _module_files()
    graph = {name: _imports(path, name, modules) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    assert not circles, circles


def test_every_package_is_installed() -> None:
    """pyproject.toml lists its packages by hand (two of them live outside the package
    folder): none may be missing, or an install lacks it."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {name for name, path in _module_files().items() if path.name == "__init__.py"}
    assert found == listed


def test_no_generic_top_level_package_is_installed(tmp_path: Path) -> None:
    """`spaces` and `methods` install as nasbench_suite.spaces and nasbench_suite.methods:
    outside the checkout a generic `import spaces` finds nothing of this project (another
    distribution's `spaces` stays importable, untouched)."""
    import subprocess
    import sys

    code = ("import importlib.util as u, nasbench_suite.spaces as s, nasbench_suite.methods as m;"
            "print(u.find_spec('spaces') is None, u.find_spec('methods') is None);"
            "print(s.__file__); print(m.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout.split()
    assert out[:2] == ["True", "True"]
    assert Path(out[2]) == ROOT / "spaces" / "__init__.py"
    assert Path(out[3]) == ROOT / "methods" / "__init__.py"
