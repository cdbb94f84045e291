"""`nasbench rankcorr`: PAD-NAS's one-shot vs stand-alone rank correlation on a tiny run."""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy.stats import kendalltau

from nasbench_suite.cli.main import main
from nasbench_suite.experiments.rankcorr import (
    RankCorrSettings,
    cost_window,
    plan,
    sample_genotypes,
)
from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search

EVAL = ["--eval-set", "channels=4", "--eval-set", "batch_size=64",
        "--eval-set", "auxiliary_weight=0.0", "--eval-set", "drop_path=0.0"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> RunFolder:
    """A tiny PAD-NAS run of 2 stages, then `nasbench rankcorr` on 4 architectures."""
    from nasbench_suite.config import resolve_config
    from tests.conftest import TINY

    cfg = resolve_config({**TINY, "method": "padnas", "space": "restricted", "epochs": 2,
                          "hp": {"stages": 2, "population": 4, "generations": 1},
                          "max_train_images": 64, "bn_calib_batches": 1,
                          "out": str(tmp_path_factory.mktemp("rankcorr"))})
    run = RunFolder(run_search(cfg, progress=False, log=lambda _: None))
    assert main(["rankcorr", str(run.path), "--archs", "4", "--eval-epochs", "1",
                 "--threads", "1", *EVAL]) == 0
    return run


def test_tau_per_stage_is_scipys_on_the_stored_accuracies(measured: RunFolder) -> None:
    result = measured.rankcorr()
    assert result.stages == ["stage-1", "stage-2"] and result.archs == 4
    assert result.split == "score" and len(result.standalone) == 4
    for stage in result.stages:
        assert len(result.oneshot[stage]) == 4
        expected = kendalltau(result.oneshot[stage], result.standalone).statistic
        tau = result.tau[stage]
        if tau is None:  # constant accuracies: undefined, never a made-up number
            assert expected != expected
        else:
            assert -1.0 <= tau <= 1.0 and tau == pytest.approx(expected)
    figure, stem = measured.rankcorr_figure()
    assert (figure / f"{stem}.png").is_file()


def test_the_architectures_are_fixed_seeded_and_inside_the_cost_window(
        measured: RunFolder) -> None:
    result = measured.rankcorr()
    again = sample_genotypes(measured, 4, result.seed)
    assert [g.to_dict() for g in again] == result.genotypes
    lo, hi = cost_window(measured)
    assert all(lo <= m <= hi for m in result.macs)
    assert sample_genotypes(measured, 4, result.seed + 1) != again
    # each was trained from scratch once, with the same short schedule
    folders = [EvalFolder(f) for _, _, f in plan(measured, RankCorrSettings(archs=4))]
    assert all(f.done() for f in folders)
    assert {f.result().epochs for f in folders} == {1}
    assert [f.result().test_acc for f in folders] == result.standalone


def test_running_again_trains_nothing(measured: RunFolder) -> None:
    folders = [f for _, _, f in plan(measured, RankCorrSettings(archs=4))]
    before = [(f / "result.json").stat().st_mtime_ns for f in folders]
    assert main(["rankcorr", str(measured.path), "--archs", "4", "--eval-epochs", "1",
                 "--threads", "1", *EVAL]) == 0
    assert [(f / "result.json").stat().st_mtime_ns for f in folders] == before


@pytest.mark.parametrize("argv", [["--archs", "1"], ["--eval-epochs", "0"]])
def test_bad_settings_are_one_line_exit_2(measured: RunFolder, argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rankcorr", str(measured.path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasbench: error:") and err.count("\n") == 1


def test_a_run_of_another_method_is_refused(tiny_config, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = run_search(tiny_config(method="darts", space="restricted"), progress=False,
                     log=lambda _: None)
    assert main(["rankcorr", str(run)]) == 2
    assert "PAD-NAS" in capsys.readouterr().err
    assert not RunFolder(run).has_rankcorr()
