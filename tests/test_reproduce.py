"""`nasbench reproduce darts-failure`: end to end at a tiny budget, resume, exact rebuilds.

One tiny experiment (3 cells of 4 channels, 2 seeds, 2 search epochs, 1 epoch from scratch,
both remedy arms, indicators every epoch) on the test session's shared
local Ray (tests/conftest.py) serves the module; the tests that need it are `slow`.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from nasbench_suite.cli.main import main
from nasbench_suite.experiments.base import MANIFEST
from nasbench_suite.experiments.darts_failure.config import ReproduceConfig
from nasbench_suite.experiments.darts_failure.experiment import run_reproduce, sweep_spec
from nasbench_suite.experiments.darts_failure.report import (
    COLUMNS,
    INDICATORS,
    REPORT,
    write_report,
)
from nasbench_suite.report.plots import BUILD, drawing_build
from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.runfolder import EVALS, RunFolder
from nasbench_suite.sweep.spec import expand
from nasbench_suite.sweep.tune import Resources
from nasbench_suite.training.loop import run_search
from tests.conftest import TINY, TINY_EVAL, markdown_rows, tiny_experiment
from tests.ray_cluster import ray_cluster  # noqa: F401 (a pytest fixture)

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
FIGURES = REFERENCE.parent / "figures"
#: the searches' settings; the Hessian's eigenvalue on one batch of 32 validation images (the
#: run's default is every one of them, here 2 batches): it is measured every epoch of every
#: search, and one batch is enough for eigenvalues and DARTS-ES's rule to be computed
SEARCH = {**{k: v for k, v in TINY.items() if k != "epochs"}, "hessian_images": 32}


def tiny_cfg(out: Path, **kw) -> ReproduceConfig:
    return ReproduceConfig(**tiny_experiment(
        out, SEARCH, hessian_every=1, hessian_iters=5, score_every=1, series_seeds=[0],
        darts_es=True, pdarts_skips=2, **kw))


@pytest.fixture(scope="module")
def experiment(local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_reproduce(tiny_cfg(tmp_path_factory.mktemp("reproduce")),
                         Resources(cpus_per_trial=1), quiet=True, log=lambda _: None)


def test_the_sweep_runs_gold_on_the_relaxed_space_only(tmp_path: Path) -> None:
    trials = expand(sweep_spec(tiny_cfg(tmp_path)), tmp_path, log=lambda _: None)
    pairs = sorted({(t.config["method"], t.config["space"]) for t in trials})
    assert pairs == [("darts", "relaxed"), ("darts", "restricted"), ("gold", "relaxed")]
    assert len(trials) == 6
    # The same data and epoch budget for every arm; DARTS first order unless asked.
    assert {(t.config["dataset"], t.config["epochs"]) for t in trials} == {("digits", 2)}
    assert {t.config["hp"]["order"] for t in trials if t.config["method"] == "darts"} == {1}
    second = expand(sweep_spec(tiny_cfg(tmp_path, second_order=True)), tmp_path,
                    log=lambda _: None)
    assert {t.config["hp"]["order"] for t in second if t.config["method"] == "darts"} == {2}


BASE_ARMS = {"DARTS (1st order), restricted", "DARTS (1st order), relaxed",
             "GOLD-NAS, relaxed"}
REMEDY_ARMS = {"DARTS-ES (1st order), restricted", "DARTS-ES (1st order), relaxed",
               "DARTS (1st order) + P-DARTS skip limit (M=2), restricted"}


@pytest.mark.slow
def test_report_has_every_column_filled(experiment: Path) -> None:
    report = experiment / REPORT
    trials = pd.read_csv(report / "trials.csv")
    assert set(trials["arm"]) == BASE_ARMS | REMEDY_ARMS
    assert len(trials) == 6 + 4 + 2  # searches, DARTS-ES on 4, P-DARTS on 2
    base = trials[trials["arm"].isin(BASE_ARMS)]
    # the collapse and fit epochs are empty where a tiny search never reaches the threshold;
    # only GOLD-NAS has gates
    gates = ["gate_median", "gate_saturated"]
    measured = [c for c, _, _ in COLUMNS if c not in ("collapse_epoch", "fit_epoch",
                                                      "eig_ratio", *gates)]
    assert not base[measured].isna().any().any(), base[measured].isna().sum()
    # the eigenvalue's ratio is within the run, and only where its start is positive
    positive = base["eig_start"] > 0
    ratio = base.loc[positive, "eig_end"] / base.loc[positive, "eig_start"]
    assert ((base.loc[positive, "eig_ratio"] - ratio).abs() <= 1e-4 * ratio.abs()).all()
    assert base.loc[~positive, "eig_ratio"].isna().all()
    gold = base["method"] == "gold"
    assert gold.any() and base.loc[gold, gates].notna().all().all()
    assert base.loc[~gold, gates].isna().all().all()
    remedies = trials[trials["arm"].isin(REMEDY_ARMS)]
    for column in ("param_free_share", "skip_share_normal", "mmacs", "mparams",
                   "scratch_acc"):
        assert remedies[column].notna().all(), column
    assert ((trials["param_free_share"] >= 0) & (trials["param_free_share"] <= 1)).all()
    assert ((trials["scratch_acc"] >= 0) & (trials["scratch_acc"] <= 1)).all()
    summary = pd.read_csv(report / "summary.csv")
    assert list(summary["seeds"]) == [2, 2, 2, 2, 2, 2]
    text = (report / "report.md").read_text()
    assert not re.search(r"\bnan\b", text)
    rows = [r[:2] for r in markdown_rows(text)]
    for arm in trials["arm"].unique():
        assert [arm, "2"] in rows
    assert "collapse epoch" in text  # the first epoch past the threshold, per arm
    # a verdict per DARTS arm with its budget, and the attribution sentence
    verdicts = text.split("## Verdicts", 1)[1]
    for arm in trials.loc[trials["method"] == "darts", "arm"].unique():
        if arm in BASE_ARMS:
            assert f"| {arm}: its derived normal cells collapse to parameter-free ops" in verdicts
    assert "Which change carries the difference between the spaces:" in verdicts
    for stem in ("param-free-share", "accuracy", "gold-series",
                 *[f"trajectory-{c.replace('_', '-')}" for c, _ in INDICATORS]):
        assert (report / f"{stem}.png").stat().st_size > 1000, stem
        assert f"({stem}.png)" in text


@pytest.mark.slow
def test_indicators_exist_for_every_arm_and_epoch(experiment: Path) -> None:
    traj = pd.read_csv(experiment / REPORT / "trajectories.csv")
    counts = traj.groupby(["arm", "seed"])["epoch"].apply(sorted)
    assert set(traj["arm"]) == BASE_ARMS
    assert len(counts) == 6 and all(epochs == [0, 1] for epochs in counts)
    columns = [c for c, _ in INDICATORS]
    assert not traj[columns].isna().any().any(), traj[traj[columns].isna().any(axis=1)]
    eig = pd.read_csv(experiment / REPORT / "eigenvalues.csv")
    assert (eig["eigenvalue"] != 0).all() and len(eig) == 12


@pytest.mark.slow
def test_scratch_accuracy_is_the_evaluation_result(experiment: Path) -> None:
    trials = pd.read_csv(experiment / REPORT / "trials.csv")
    for _, row in trials[trials["arm"].isin(BASE_ARMS)].iterrows():
        result = EvalFolder(experiment / EVALS / row["trial"] / "final").result()
        assert result.test_acc == pytest.approx(row["scratch_acc"], abs=1e-6)
        assert result.epochs == 1 and result.layers == 3  # searched depth
    # The GOLD-NAS series of seed 0 is trained from scratch point by point; seed 1's is not.
    series = pd.read_csv(experiment / REPORT / "series.csv")
    gold0 = RunFolder(experiment / trials.loc[(trials["method"] == "gold") &
                                              (trials["seed"] == 0), "trial"].item()).series()
    assert len(series) == len(gold0) >= 1 and set(series["seed"]) == {0}


@pytest.mark.slow
def test_trainings_from_scratch_are_ray_tasks_that_overlap(experiment: Path,
                                                           tmp_path: Path) -> None:
    """Two trainings on a 2-CPU local Ray with one CPU each run at the same time (20 epochs:
    long enough that the second worker process is up before the first training ends)."""
    from nasbench_suite.spaces import DARTS_V2

    from nasbench_suite.experiments.darts_failure.experiment import eval_overrides, eval_settings
    from nasbench_suite.experiments.evals import Launcher
    from nasbench_suite.sweep.ray_session import ray_session

    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns(EVALS, REPORT, ".ray"))
    cfg = tiny_cfg(tmp_path)
    run = RunFolder(copy / "darts-restricted-digits-s0")
    # two distinct architectures of the run's space (a 2-epoch DARTS search is its own
    # DARTS-ES replay: no stop is considered before epoch 10), planned explicitly
    plan = [("final", run.genotype(), run.evaluation_dir("final")),
            ("darts-v2", DARTS_V2, run.evaluation_dir("darts-v2"))]
    labels = [label for label, _, _ in plan]
    with ray_session(num_cpus=2):
        launcher = Launcher(eval_settings(cfg),
                            lambda r: {**eval_overrides(cfg, r.config_dict()), "epochs": 20},
                            log=lambda _: None, plan=lambda _: plan)
        launcher.submit(run.path)
        assert launcher.wait() == []
    spans = sorted((r.started, r.finished) for r in run.evaluations().values())
    assert len(spans) == len(labels)
    assert any(a_end > b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


@pytest.mark.slow
def test_running_again_trains_nothing_and_rebuilds_the_same_report(experiment: Path) -> None:
    results = sorted(p for p in (experiment / EVALS).rglob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in results]
    before = {p.name: p.read_bytes() for p in (experiment / REPORT).iterdir()}
    from nasbench_suite.sweep.ray_session import ray_session

    cfg = tiny_cfg(experiment.parent)
    with ray_session(num_cpus=2):
        run_reproduce(cfg, Resources(cpus_per_trial=1), quiet=True, log=lambda _: None)
    assert [p.stat().st_mtime_ns for p in results] == stamps
    after = {p.name: p.read_bytes() for p in (experiment / REPORT).iterdir()}
    assert after == before


@pytest.mark.slow
def test_report_rebuilds_without_checkpoints(experiment: Path, tmp_path: Path) -> None:
    """What results/reference keeps (no checkpoints) is enough for the whole report."""
    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("*.pt", ".ray", REPORT))
    write_report(copy)
    for path in (experiment / REPORT).iterdir():
        assert (copy / REPORT / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.slow  # two searches, one with Hessian eigenvalues every epoch
def test_hessian_tracking_does_not_change_the_search(tiny_config) -> None:
    plain = run_search(tiny_config(method="darts", space="restricted", epochs=2),
                       progress=False, log=lambda _: None)
    measured = run_search(tiny_config(method="darts", space="restricted", epochs=2,
                                      hessian_every=1, hessian_iters=5, score_every=1),
                          progress=False, log=lambda _: None)
    a = RunFolder(plain).load_checkpoint()[0]["method"]["alpha"]
    b = RunFolder(measured).load_checkpoint()[0]["method"]["alpha"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert RunFolder(plain).genotype() == RunFolder(measured).genotype()
    assert "hessian_eig" in RunFolder(measured).metrics()[0]


@pytest.mark.parametrize("argv", [
    ["--epochs", "0"],
    ["--seeds", "0,1", "--series-seeds", "2"],
    ["--eval-epochs", "-1"],
    ["--set", "batch_size=0"],
    ["--dataset", "nosuch"],
    ["--dataset", "npz:/no/such/file.npz"],
])
def test_bad_input_is_one_line_and_writes_nothing(argv: list[str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reproduce", "darts-failure", "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nasbench: error:") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_report_only_refuses_a_folder_that_is_not_an_experiment(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "darts-failure", "--report-only", "--dir", str(tmp_path)]) == 2
    assert MANIFEST in capsys.readouterr().err


def _reference_experiments() -> list[Path]:
    return sorted(p.parent for p in REFERENCE.glob(f"*/{MANIFEST}"))


def test_the_reference_experiment_is_committed() -> None:
    assert _reference_experiments(), f"no reproduce experiment under {REFERENCE}"
    assert (FIGURES / "table.md").exists()


def _same_files(rebuilt: Path, committed: Path) -> None:
    """Every committed file is rebuilt byte for byte; the images only when drawn by the
    matplotlib and fontTools that drew the committed ones (build.json)."""
    same_drawing = json.loads((committed / BUILD).read_text()) == drawing_build()
    names = sorted(p.name for p in committed.iterdir() if p.is_file())
    assert names == sorted(p.name for p in rebuilt.iterdir() if p.is_file())
    for name in names:
        if (name.endswith((".png", ".pdf")) or name == BUILD) and not same_drawing:
            continue
        assert (rebuilt / name).read_bytes() == (committed / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("folder", _reference_experiments(), ids=lambda p: p.name)
def test_committed_reference_report_rebuilds_exactly(folder: Path, tmp_path: Path) -> None:
    from nasbench_suite.experiments import write_report  # darts-failure or claims

    write_report(folder, tmp_path / folder.name)
    _same_files(tmp_path / folder.name, FIGURES / folder.name)


@pytest.mark.slow
def test_committed_figures_rebuild_exactly(tmp_path: Path) -> None:
    """`nasbench figures` on results/reference gives the committed results/figures."""
    assert main(["figures", "--reference", str(REFERENCE), "--out", str(tmp_path)]) == 0
    _same_files(tmp_path, FIGURES)
    for folder in _reference_experiments():
        _same_files(tmp_path / folder.name, FIGURES / folder.name)


@pytest.mark.slow
def test_a_real_cluster_runs_the_sweep_and_the_experiment_as_local_ray_does(
        experiment: Path, ray_cluster, tmp_path: Path) -> None:  # noqa: F811
    """`ray start --head` on 127.0.0.1 (token authentication, its own temp dir): a sweep and
    `reproduce darts-failure` joined with --address write the run folders local Ray does."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    tiny = [f"--set={k}={v}" for k, v in SEARCH.items()]
    env = ray_cluster.subprocess_env()
    env["PYTHONPATH"] = str(repo)

    def nasbench(*argv: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "nasbench_suite.cli.main", *argv], cwd=repo,
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-2000:]

    nasbench("reproduce", "darts-failure", "--address", ray_cluster.address, "--seeds", "0",
             "--epochs", "2", "--hessian-every", "1", "--hessian-iters", "5",
             "--score-every", "1", "--eval-epochs", "1", "--series-seeds", "0",
             "--darts-es", "--pdarts-skips", "2", "--threads", "1", "--quiet", "--out",
             str(tmp_path), *tiny, *[f"--eval-set={k}={v}" for k, v in TINY_EVAL.items()])
    joined = tmp_path / experiment.name
    for trial in ("darts-restricted-digits-s0", "darts-relaxed-digits-s0",
                  "gold-relaxed-digits-s0"):
        there, here = RunFolder(joined / trial), RunFolder(experiment / trial)
        assert there.genotype() == here.genotype()
        assert [a.weights for a in there.arch()] == [a.weights for a in here.arch()]
        assert sorted(there.evaluations()) == sorted(here.evaluations())
    nasbench("sweep", "--address", ray_cluster.address, "--name", "joined", "--out",
             str(tmp_path), "--epochs", "2", "--quiet", *tiny)
    assert RunFolder(tmp_path / "joined" / "darts-restricted-digits-s0").genotype() == \
        RunFolder(experiment / "darts-restricted-digits-s0").genotype()
