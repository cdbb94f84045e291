"""The Python API: a search from Python is the same run folder the CLI writes, read back
through typed properties; importing the package loads no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nasbench_suite as nb
from nasbench_suite.errors import UsageError
from nasbench_suite.store.runfolder import RunFolder
from tests.conftest import TINY


def test_search_returns_a_run_read_through_the_folder(tmp_path: Path) -> None:
    fields = {k: v for k, v in TINY.items() if k != "epochs"}
    run = nb.search("darts", "restricted", epochs=2, out=tmp_path, hp={"order": 1}, **fields)
    folder = RunFolder(run.path)
    assert folder.finished()
    assert run.genotype == folder.genotype()
    assert run.config["hp"]["order"] == 1 and run.config["channels"] == TINY["channels"]
    assert list(run.metrics["epoch"]) == [0, 1]
    assert run.summary.epochs_run == 2
    assert run.ground_truth is None  # the restricted space has no table
    net = run.network()
    logits, aux = net(torch.zeros(2, 1, 8, 8))
    assert logits.shape == (2, 10) and aux is None
    assert nb.load_run(run.path) == run
    table = nb.load_runs(tmp_path)
    assert len(table) == 1 and table["method"].iloc[0] == "darts"


def test_bad_input_raises_the_clis_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown method"):
        nb.search("nosuch", out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_importing_the_package_loads_no_torch() -> None:
    """The CLI imports the package before it sets OpenMP's wait policy, which must happen
    before torch loads (nasbench_suite.threads)."""
    code = ("import sys, nasbench_suite; print('torch' in sys.modules); "
            "nasbench_suite.Genotype; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]
