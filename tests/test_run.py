"""End to end: `nasbench run`, determinism per seed, resume equals no interruption."""

from __future__ import annotations

from pathlib import Path

import pytest
from nasbench_suite.methods import list_methods
from nasbench_suite.spaces import list_spaces

from nasbench_suite.config import run_config
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search

#: Fields that measure the machine, not the search.
TIMING = {"epoch_time_s", "search_time_s"}


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _outcome(run_dir: Path) -> dict:
    """Everything a run decides, without wall times."""
    run = RunFolder(run_dir)
    summary = run.summary().to_dict()
    for key in ("search_time_s",):
        summary.pop(key)
    summary["final"] = _strip([summary["final"]])[0]
    return {
        "summary": summary,
        "metrics": _strip(run.metrics()),
        "events": run.events(),
        "arch": run.arch(),
        "genotype": run.genotype().to_dict(),
    }


def test_same_seed_same_result(tiny_config) -> None:
    cfg = tiny_config(epochs=2)
    a = _outcome(run_search(cfg, progress=False, log=lambda _: None))
    b = _outcome(run_search(cfg, progress=False, log=lambda _: None))
    assert a == b
    c = _outcome(run_search(tiny_config(epochs=2, seed=1), progress=False, log=lambda _: None))
    assert c["arch"] != a["arch"]


#: Method settings that keep a tiny run tiny (their searches score architectures).
FAST_HP: dict[str, dict] = {"padnas": {"population": 4, "generations": 1, "stages": 2}}


def _pairs() -> list[tuple[str, str]]:
    return [(m, s) for m in list_methods() for s in list_spaces()]


@pytest.mark.slow  # two whole runs of every method on every space it supports
@pytest.mark.parametrize(("method", "space"), _pairs())
def test_every_method_runs_and_resume_equals_no_interruption(tiny_config, method: str,
                                                             space: str) -> None:
    """Each registered method on each space it supports: stop after one epoch, resume."""
    cfg = tiny_config(method=method, space=space, epochs=2, **FAST_HP.get(method, {}))
    whole = run_search(cfg, progress=False, log=lambda _: None)
    part = run_search(cfg, progress=False, stop_after=1, log=lambda _: None)
    assert not RunFolder(part).finished()
    assert RunFolder(part).epochs_done() == 1
    saved = run_config(RunFolder(part))
    run_search(saved, resume_dir=part, progress=False, log=lambda _: None)
    assert _outcome(part) == _outcome(whole)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tiny_config) -> None:
    cfg = tiny_config(epochs=3)
    whole = run_search(cfg, progress=False, log=lambda _: None)
    part = run_search(cfg, progress=False, stop_after=2, log=lambda _: None)
    folder = RunFolder(part)
    (part / "checkpoint.pt").write_bytes(b"\x80\x02 torn write")
    stale = part / ".checkpoint.pt.x1y2z3"  # a killed save's temporary file
    stale.write_bytes(b"half")
    lines: list[str] = []
    run_search(run_config(folder), resume_dir=part, progress=False, log=lines.append)
    assert any("resumed from the previous one" in line for line in lines)
    assert not stale.exists()
    assert _outcome(part) == _outcome(whole)
