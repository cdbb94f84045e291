"""The command line: the happy path, and bad input as one line, exit code 2, nothing written."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nasbench_suite.cli.main import main
from tests.conftest import TINY

TINY_ARGS = [f"--set={k}={v}" for k, v in TINY.items() if k != "epochs"] + ["--epochs", "1"]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_list_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "runs"
    code, out, _ = _run(["run", "--method", "darts", "--space", "restricted", "--quiet",
                         "--out", str(out_dir), *TINY_ARGS], capsys)
    assert code == 0
    assert "resolved config:" in out and "run folder:" in out
    (run_dir,) = out_dir.iterdir()
    for name in ("config.yaml", "run.json", "metrics.jsonl", "events.jsonl", "arch.jsonl",
                 "genotype.json", "summary.json", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "tb").is_dir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["method"] == "darts" and summary["epochs_run"] == 1
    assert "FlopCounterMode" in summary["counter"]
    assert summary["inherited"]["split"] == "score" and summary["layout"] == 2
    code, out, _ = _run(["show", str(run_dir)], capsys)
    assert code == 0 and "derived:" in out
    inherited = next(line for line in out.splitlines() if line.startswith("inherited"))
    assert "score split" in inherited and "supernet" in inherited and "gap" in inherited
    assert "architecture learning" in out
    assert "epochs run 1 / 1 (the epoch budget)" in out and "M params" in out
    # the genotype, node by node: DARTS's two inputs per node in each of its two groups
    genotype = json.loads((run_dir / "genotype.json").read_text())
    for group in ("normal", "reduce"):
        assert f"{group}: output = concat(2, 3, 4, 5)" in out
    nodes = [line.strip() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(nodes) == 8  # 4 nodes x 2 groups, in the order the genotype lists its groups
    names = {0: "c_{k-2}", 1: "c_{k-1}"}
    for g, group in enumerate(genotype["groups"]):
        for op, src, dst in genotype["groups"][group]["edges"]:
            line = nodes[4 * g + dst - 2]
            assert line.startswith(f"{dst} <- ") and f"{op}({names.get(src, src)})" in line
    # a folder of runs (a sweep's) is summarised, not refused
    code, out, _ = _run(["show", str(out_dir)], capsys)
    assert code == 0 and "1 trial(s): 1 finished" in out and run_dir.name in out
    code, out, _ = _run(["list"], capsys)
    assert code == 0 and "darts" in out and "relaxed" in out and "digits" in out
    assert "smoke" in out and "darts-failure-mini" in out  # the shipped sweeps
    lines = out.splitlines()
    assert "  mini     a laptop CPU in minutes (the default preset)." in lines
    # resuming a finished run does nothing
    code, out, _ = _run(["run", "--resume", str(run_dir)], capsys)
    assert code == 0 and "already finished" in out


def _write_bad_npz(path: Path) -> None:
    np.savez(path, x_train=np.zeros((4, 8, 8), np.uint8))  # no labels, no test split


BAD_CASES = {
    "unknown method": (["--method", "nope"], "unknown method"),
    "unknown space": (["--space", "nope"], "unknown space"),
    "unknown dataset": (["--dataset", "mnist"], "unknown dataset"),
    "unknown preset": (["--preset", "huge"], "unknown preset"),
    "zero epochs": (["--epochs", "0"], "epochs must be positive"),
    "negative epochs": (["--epochs", "-3"], "epochs must be positive"),
    "zero batch": (["--batch-size", "0"], "batch_size must be positive"),
    "unknown field": (["--set", "colour=red"], "unknown config field"),
    "mistyped field": (["--set", "channels=wide"], "expected int"),
    "bad method field": (["--set", "order=3"], "order must be 1 or 2"),
    "missing npz": (["--dataset", "npz:/nonexistent/x.npz"], "npz file not found"),
    "corrupt npz": (["--dataset", "npz:{tmp}/corrupt.npz"], "cannot read npz"),
    "incomplete npz": (["--dataset", "npz:{tmp}/bad.npz"], "lacks arrays"),
    "missing config": (["--config", "{tmp}/none.yaml"], "cannot read config file"),
    "broken config": (["--config", "{tmp}/broken.yaml"], "not valid YAML"),
    "code in config": (["--config", "{tmp}/evil.yaml"], "not valid YAML"),
    "not a run": (["--resume", "{tmp}"], "is not a run folder"),
    "amp on cpu": (["--amp", "--device", "cpu"], "--amp needs a CUDA device"),
    "method refuses its space": (["--method", "nse", "--space", "relaxed",
                                  "--set", "ops=[skip_connect,sep_conv_3x3]"],
                                 "needs a pool larger than K"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    _write_bad_npz(tmp_path / "bad.npz")
    (tmp_path / "broken.yaml").write_text("epochs: [1, 2\n")
    marker = tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(
        f"epochs: !!python/object/apply:os.system ['touch {marker}']\n")
    args, message = BAD_CASES[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out_dir = tmp_path / "out"
    code, _, err = _run(["run", "--quiet", "--out", str(out_dir), *args], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
    assert not out_dir.exists()
    assert not marker.exists()


def test_unknown_subcommand_and_console_script() -> None:
    """A mistyped command line: the error line, then the usage on one line; exit 2."""
    proc = subprocess.run([sys.executable, "-m", "nasbench_suite.cli.main", "frobnicate"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    error, usage = proc.stderr.strip().splitlines()
    assert error.startswith("nasbench: error:") and "frobnicate" in error
    assert usage.startswith("usage: nasbench")
    proc = subprocess.run([sys.executable, "-m", "nasbench_suite.cli.main", "run", "--method", "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_version() -> None:
    from nasbench_suite import __version__

    proc = subprocess.run([sys.executable, "-m", "nasbench_suite.cli.main", "--version"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"nasbench-suite {__version__}"


def _parsers(parser: argparse.ArgumentParser, name: str = "nasbench"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_flag_of_every_command_has_a_help_text() -> None:
    from nasbench_suite.cli.main import build_parser

    seen = 0
    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            seen += 1
            label = "/".join(action.option_strings) or action.dest
            assert action.help and action.help.strip(), f"{name} {label} has no help text"
    assert seen > 60


def test_help_lists_the_registries_choices(capsys: pytest.CaptureFixture[str]) -> None:
    from nasbench_suite.methods import list_methods
    from nasbench_suite.spaces import list_spaces

    from nasbench_suite.data import DATASET_KINDS

    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"search method: {', '.join(list_methods())} (default darts" in text
    assert f"search space: {', '.join(list_spaces())} (default restricted" in text
    assert f"one of {', '.join(DATASET_KINDS)} (default digits" in text
    assert "one of mini, paper (default mini" in text
    assert "{" not in text.replace("c_{", "")  # no placeholder left unfilled


def test_parsing_a_command_line_loads_no_torch() -> None:
    """`nasbench list sweeps` and every parse stay fast: torch is for the commands."""
    code = ("import sys; from nasbench_suite.cli.main import build_parser; "
            "build_parser().parse_args(['list', 'sweeps']); "
            "print(sorted(m for m in ('torch', 'pandas', 'ray', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"
