"""Resume tells the truth about threads: a resumed run keeps the thread count it ran with,
and an override is said in one line and recorded (torch's kernels split their reductions by
thread, so another count changes the last bits and, through the search, the architecture)."""

from __future__ import annotations

from pathlib import Path

from nasbench_suite.cli.main import main
from nasbench_suite.config import run_config
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search
from nasbench_suite.training.resume import resume_config


def _interrupted(tiny_config) -> Path:
    cfg = tiny_config(epochs=2, threads=1)
    return run_search(cfg, progress=False, stop_after=1, log=lambda _: None)


def test_resume_keeps_the_runs_thread_count(tiny_config) -> None:
    folder = RunFolder(_interrupted(tiny_config))
    warnings: list[str] = []
    cfg = resume_config(folder, {}, warnings.append)
    assert cfg.threads == 1
    assert warnings == []
    assert folder.info().resumed_threads == []


def test_a_run_saved_without_threads_resumes_with_the_count_run_json_recorded(
        tiny_config) -> None:
    """Runs written before threads were saved in config.yaml: run.json's count is kept."""
    folder = RunFolder(_interrupted(tiny_config))
    text = folder.config_file.read_text()
    folder.config_file.write_text(text.replace("threads: 1", "threads: null"))
    assert folder.config_dict()["threads"] is None
    assert resume_config(folder, {}, lambda _: None).threads == folder.info().threads == 1


def test_another_thread_count_is_said_in_one_line_and_recorded(tiny_config, capsys) -> None:
    part = _interrupted(tiny_config)
    assert main(["run", "--resume", str(part), "--threads", "2", "--quiet"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "threads" in line]
    assert len(err) == 1
    assert "resuming with 2 threads where the run used 1" in err[0]
    assert "may differ" in err[0]
    folder = RunFolder(part)
    assert folder.finished()
    assert folder.info().resumed_threads == [2]
    assert run_config(folder).threads == 1  # the run's own config is unchanged
