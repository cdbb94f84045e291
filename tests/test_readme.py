"""The README's promises, checked: its Python example runs, and every mean ± std it quotes
in "Results" stands in a report that `nasbench figures` rebuilds from the data (a number
typed by hand cannot drift from the experiment's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_the_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)
    assert scope["run"].folder.finished()
    assert len(scope["runs"]) == 1
    assert scope["net"] is not None


def test_every_quoted_result_is_in_a_rebuilt_report() -> None:
    reports = "\n".join(p.read_text() for p in (ROOT / "results" / "figures").glob(
        "*/report.md"))
    quoted = re.findall(r"\d+\.\d+ ± \d+\.\d+", _section("Results"))
    assert quoted, "the Results section quotes no mean ± std"
    missing = [q for q in quoted if q not in reports]
    assert not missing, f"README quotes {missing}, which no report under results/figures has"
