"""`nasbench reproduce nb201`: the methods on NAS-Bench-201, judged by the table.

One tiny experiment (digits, 3 cells of 4 channels, 1 seed, 2 epochs; PAD-NAS 4, the fewest
its 4 stages take, with a 4 x 1 NSGA-II: conftest.TINY_PADNAS) on the test session's shared
local Ray (tests/conftest.py) serves the module. EDAS is left out: it does not
run on nb201 yet (another branch makes it).
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from nasbench_suite.spaces import create_space
from nasbench_suite.spaces.nb201_arch import NB201, NB201_OPS, arch_to_genotype

from nasbench_suite.cli.main import main
from nasbench_suite.experiments import get_experiment, list_experiments
from nasbench_suite.experiments.base import run_experiment
from nasbench_suite.experiments.nb201.config import METHODS, Nb201Config, random_label
from nasbench_suite.experiments.nb201.experiment import EXPERIMENT, sweep_spec
from nasbench_suite.experiments.nb201.report import BUILD, REPORT, equivalent_k, write_report
from nasbench_suite.experiments.nb201.tables import ALL_SKIP
from nasbench_suite.experiments.nb201.verdicts import (
    CONTRADICTED,
    NOT_OBSERVED,
    OBSERVED,
    band_verdict,
    beats_darts,
    collapse_verdict,
)
from nasbench_suite.groundtruth import nb201 as table
from nasbench_suite.groundtruth import scored_cell
from nasbench_suite.store.runfolder import ArchRecord, RunFolder
from nasbench_suite.sweep.spec import expand
from nasbench_suite.sweep.tune import Resources
from tests.conftest import TINY, markdown_rows, with_tiny_padnas

SEARCH = {k: v for k, v in TINY.items() if k not in ("epochs", "channels", "layers")}
#: the methods that run on nb201 in this branch
RUNNING = ["darts", "gold", "padnas", "nse"]
#: the nb201 experiment with PAD-NAS's search at the tiny size (conftest.TINY_PADNAS)
TINY_NB201 = with_tiny_padnas(EXPERIMENT)


def tiny_cfg(out: Path, **kw) -> Nb201Config:
    values = {"seeds": [0], "epochs": 2, "padnas_epochs": 4, "methods": list(RUNNING),
              "channels": 4, "layers": 3, "image_size": None, "search_set": dict(SEARCH),
              "out": str(out), "threads": 1, **kw}
    return Nb201Config(**values)


@pytest.fixture(scope="module")
def experiment(local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb201")
    return run_experiment(TINY_NB201, tiny_cfg(out), Resources(cpus_per_trial=1), quiet=True,
                          log=lambda _: None)


def test_the_registry_holds_nb201_with_no_training_from_scratch() -> None:
    assert "nb201" in list_experiments()
    entry = get_experiment("nb201")
    assert entry.launcher(Nb201Config(), print) is None  # the table is the judge
    assert entry.finish is None


def test_the_sweep_gives_every_method_the_same_data_budget_and_splits(tmp_path: Path) -> None:
    trials = expand(sweep_spec(Nb201Config(out=str(tmp_path))), tmp_path, log=lambda _: None)
    assert sorted(t.config["method"] for t in trials) == sorted(METHODS * 3)
    assert {t.config["space"] for t in trials} == {NB201}
    shared = ("dataset", "epochs", "channels", "layers", "image_size", "train_portion",
              "score_portion", "batch_size")
    assert len({tuple(t.config[k] for k in shared) for t in trials}) == 1
    assert {t.config["hp"]["order"] for t in trials if t.config["method"] == "darts"} == {1}
    second = expand(sweep_spec(Nb201Config(out=str(tmp_path), second_order=True,
                                           padnas_epochs=8)), tmp_path, log=lambda _: None)
    assert {t.config["hp"]["order"] for t in second if t.config["method"] == "darts"} == {2}
    assert {t.config["method"]: t.config["epochs"] for t in second}["padnas"] == 8


@pytest.mark.parametrize("kw", [{"methods": ["darts", "random"]}, {"methods": []},
                                {"layers": 5}, {"epochs": 0}, {"train_acc_target": 1.5}])
def test_bad_settings_are_refused(kw: dict, tmp_path: Path) -> None:
    from nasbench_suite.errors import UsageError

    with pytest.raises(UsageError):
        Nb201Config(out=str(tmp_path), **kw).validate()


def test_the_papers_table_has_every_row_filled(experiment: Path) -> None:
    text = (experiment / REPORT / "report.md").read_text()
    rows: dict[str, list[str]] = {}
    for row in markdown_rows(text):  # the papers' table comes first
        rows.setdefault(row[0], row)
    for arm in ("DARTS (1st order)", "GOLD-NAS", "PAD-NAS", "NSE"):
        row = rows[arm]
        assert all(re.fullmatch(r"\d+\.\d\d", c) for c in row[2:6]), row
    skip = rows["all-skip cell (table)"]
    assert skip[2] == f"{table.lookup(ALL_SKIP).cifar10_valid:.2f}" == "39.77"
    assert "table best (per column)" in rows and "table median (per column)" in rows
    runs = pd.read_csv(experiment / REPORT / "runs.csv")
    assert sorted(runs["method"]) == sorted(RUNNING)
    for _, run in runs.iterrows():  # the table's numbers of the run's own final cell
        truth = table.lookup(run["arch"])
        assert run["cifar10_valid"] == pytest.approx(truth.cifar10_valid, abs=1e-4)
    assert set(runs["rankcorr"]) == {"not measured"}
    assert "## Verdicts" in text and "not observed at this budget" in text


def _ties(rec: ArchRecord) -> bool:
    weights, active = torch.tensor(rec.weights), torch.tensor(rec.active)
    top = weights.masked_fill(~active, -1.0).amax(-1, keepdim=True)
    return bool(((weights == top) & active).sum(-1).gt(1).any())


def test_every_epoch_is_scored_and_the_random_search_lines_are_in_the_figure_data(
        experiment: Path) -> None:
    epochs = pd.read_csv(experiment / REPORT / "epochs.csv")
    for method, epochs_run in (("darts", 2), ("nse", 2), ("padnas", 4)):
        mine = epochs[epochs["method"] == method].sort_values("epoch")
        assert list(mine["epoch"]) == list(range(-1, epochs_run)), method
        # unscored exactly where the strongest active ops tie (NSE: a round's fresh
        # alphas, all 0), and never at the end
        (run,) = [r for r in experiment.iterdir() if r.name.startswith(f"{method}-")]
        ties = [_ties(rec) for rec in RunFolder(run).arch()]
        assert list(mine["cifar10_valid"].isna()) == ties and not ties[-1], method
    figure = pd.read_csv(experiment / REPORT / "truth-over-epochs.csv")
    curve = table.random_search_curve(100)
    for k in (1, 10, 100):
        line = figure[figure["arm"] == random_label(k)]
        assert line["mean"].iloc[0] == pytest.approx(curve[k], abs=1e-4)
    assert set(figure["method"].dropna()) >= {*RUNNING, "random", "table"}
    for stem in ("truth-over-epochs", "random-search", "shares-over-epochs",
                 "supernet-train-acc"):
        assert (experiment / REPORT / f"{stem}.png").stat().st_size > 10_000, stem


def test_running_again_trains_nothing_and_rebuilds_the_same_report(experiment: Path) -> None:
    logs = sorted(experiment.glob("*/metrics.jsonl"))
    stamps = [p.stat().st_mtime_ns for p in logs]
    before = {p.name: p.read_bytes() for p in (experiment / REPORT).iterdir()}
    from nasbench_suite.sweep.ray_session import ray_session

    with ray_session(num_cpus=2):
        run_experiment(TINY_NB201, tiny_cfg(experiment.parent), Resources(cpus_per_trial=1),
                       quiet=True, log=lambda _: None)
    assert len(logs) == len(RUNNING)
    assert [p.stat().st_mtime_ns for p in logs] == stamps
    after = {p.name: p.read_bytes() for p in (experiment / REPORT).iterdir()}
    assert after == before


def test_the_report_rebuilds_byte_identical_without_checkpoints(experiment: Path,
                                                                  tmp_path: Path) -> None:
    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("*.pt", ".ray", REPORT))
    write_report(copy)
    names = {p.name for p in (experiment / REPORT).iterdir()}
    assert names == {p.name for p in (copy / REPORT).iterdir()} and BUILD in names
    for path in (experiment / REPORT).iterdir():
        assert (copy / REPORT / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_cli_rebuilds_the_report_and_takes_its_own_flags(experiment: Path,
                                                             tmp_path: Path) -> None:
    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("*.pt", ".ray", REPORT))
    # --second-order and --padnas-epochs are also other experiments' flags: still accepted
    assert main(["reproduce", "nb201", "--report-only", "--dir", str(copy),
                 "--second-order", "--padnas-epochs", "4"]) == 0
    assert (copy / REPORT / "report.md").read_bytes() == \
        (experiment / REPORT / "report.md").read_bytes()
    assert main(["reproduce", "nb201", "--report-only", "--dir", str(copy),
                 "--rankcorr-archs", "3"]) == 2  # claims's alone


# -- scoring a cell -----------------------------------------------------------------------------
def _space():
    from nasbench_suite.spaces.base import NetShape

    return create_space(NB201, NetShape(channels=4, layers=3, in_channels=3, num_classes=10,
                                        image_size=8))


def test_a_cell_with_several_ops_per_edge_is_scored_by_its_strongest_kept_op() -> None:
    space = _space()
    cell = arch_to_genotype("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|"
                            "+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    weights = torch.full((1, 6, len(NB201_OPS)), 0.1, dtype=torch.float64)
    assert scored_cell(space, cell, weights) is cell  # a cell of the table is kept as it is
    several = cell.to_dict()
    several["groups"]["cell"]["edges"] = [*several["groups"]["cell"]["edges"],
                                          ["skip_connect", 0, 1]]
    from nasbench_suite.spaces.genotype import Genotype

    multi = Genotype.from_dict(several)  # edge 0 -> 1 keeps nor_conv_3x3 and skip_connect
    wanted = [3, 1, 2, 4, 0, 3]  # op index per edge, in the arch string's order
    weights = torch.tensor([[[0.9 if o == w else 0.1 * o for o in range(len(NB201_OPS))]
                             for w in wanted]], dtype=torch.float64)
    assert table.arch_of(scored_cell(space, multi, weights)) == table.arch_of(cell)
    # the strongest kept op wins, whatever the pruned ones weigh
    weights[0, 0, 3] = 0.05
    expected = table.arch_of(cell).replace("|nor_conv_3x3~0|+", "|skip_connect~0|+", 1)
    assert table.arch_of(scored_cell(space, multi, weights)) == expected
    # equal weights (GOLD-NAS's start): no strongest op, no cell
    assert scored_cell(space, multi, torch.full_like(weights, 0.5)) is None


def test_a_one_op_cell_picked_from_tied_active_ops_has_no_score() -> None:
    """GOLD-NAS's start in nb201: one op per edge, the first of four equal active gates
    (the all-skip cell, 39.77) is an artefact of the op order, not a search result; a
    PAD-NAS-like record (one active op per edge, uniform weights) keeps its cell."""
    space = _space()
    all_skip = arch_to_genotype("|skip_connect~0|+|skip_connect~0|skip_connect~1|"
                                "+|skip_connect~0|skip_connect~1|skip_connect~2|")
    gates = torch.tensor([[[0.0, 0.5, 0.5, 0.5, 0.5]] * 6], dtype=torch.float64)
    four = gates > 0
    assert scored_cell(space, all_skip, gates, four) is None
    assert scored_cell(space, all_skip, gates) is all_skip  # without the mask: no tie seen
    gates[0, :, 1] = 0.6  # skip is the strongest active gate on every edge: a real choice
    assert scored_cell(space, all_skip, gates, four) is all_skip
    uniform = torch.full((1, 6, len(NB201_OPS)), 0.25, dtype=torch.float64)
    one = torch.zeros_like(uniform, dtype=torch.bool)
    one[..., 1] = True
    assert scored_cell(space, all_skip, uniform, one) is all_skip


def test_the_rank_correlation_summary_averages_the_measured_seeds_only() -> None:
    from nasbench_suite.experiments.nb201.report import rankcorr_summary

    runs = pd.DataFrame({"arm": ["DARTS", "DARTS", "DARTS", "NSE"],
                         "tau_last": [-0.1, -0.3, math.nan, math.nan],
                         "rho_last": [-0.2, -0.4, math.nan, math.nan],
                         "top_truth_last": [70.0, 80.0, math.nan, math.nan]})
    lines = rankcorr_summary(runs).splitlines()
    darts = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert darts == ["DARTS", "2", "-0.20 ± 0.14", "-0.30 ± 0.14", "75.00 ± 7.07"]
    assert "not measured" in lines[3] and lines[3].split("|")[2].strip() == "0"


def test_equivalent_random_k_is_the_fewest_cells_that_reach_the_mean() -> None:
    random = pd.DataFrame({"k": [1, 2, 3], "expected_best": [80.0, 85.0, 90.0]})
    assert equivalent_k(84.0, random) == 2
    assert equivalent_k(80.0, random) == 1
    assert equivalent_k(39.77, random) == 0  # worse than one random cell, not "k = 1"
    assert math.isnan(equivalent_k(95.0, random))


# -- verdicts -----------------------------------------------------------------------------------
def _runs(method: str, values: list[float], skip: list[float], train: list[float]
          ) -> pd.DataFrame:
    return pd.DataFrame({"method": method, "arm": method, "seed": range(len(values)),
                         "cifar10_valid": values, "skip_share": skip,
                         "train_acc_best": train})


def test_the_collapse_verdict_needs_the_budget_to_say_contradicted() -> None:
    done = collapse_verdict(_runs("darts", [39.77] * 3, [1.0, 1.0, 0.6], [0.9] * 3), 0.85,
                            "b")
    assert done.verdict == OBSERVED and "2 exactly all-skip" in done.evidence
    short = collapse_verdict(_runs("darts", [88.0] * 3, [0.2] * 3, [0.5] * 3), 0.85, "b")
    assert short.verdict == NOT_OBSERVED
    trained = collapse_verdict(_runs("darts", [88.0] * 3, [0.2] * 3, [0.9] * 3), 0.85, "b")
    assert trained.verdict == CONTRADICTED and trained.budget == "b"


def test_the_takeover_band_verdict() -> None:
    def epochs(skips: list[float], accs: list[float]) -> pd.DataFrame:
        return pd.DataFrame({"method": "darts", "seed": 0, "epoch": range(len(skips)),
                             "skip_share": skips, "train_acc": accs})

    inside = band_verdict(epochs([0.2, 0.6], [0.7, 0.86]), "b")
    assert inside.verdict == OBSERVED and "epoch 2 at 86.0%" in inside.evidence
    assert band_verdict(epochs([0.6, 0.6], [0.5, 0.6]), "b").verdict == CONTRADICTED
    assert band_verdict(epochs([0.2, 0.2], [0.5, 0.95]), "b").verdict == CONTRADICTED
    assert band_verdict(epochs([0.2, 0.2], [0.5, 0.6]), "b").verdict == NOT_OBSERVED


def test_beating_darts_is_decided_only_from_three_seeds_or_more() -> None:
    darts = _runs("darts", [80.0, 81.0, 82.0], [0.0] * 3, [0.9] * 3)
    better = pd.concat([darts, _runs("gold", [90.0, 90.5, 91.0], [0.0] * 3, [0.9] * 3)])
    assert beats_darts(better, "gold", "GOLD-NAS", 0.95, 500, "b").verdict == OBSERVED
    worse = pd.concat([darts, _runs("gold", [70.0, 71.0, 72.0], [0.0] * 3, [0.9] * 3)])
    assert beats_darts(worse, "gold", "GOLD-NAS", 0.95, 500, "b").verdict == CONTRADICTED
    two = pd.concat([darts[:2], _runs("gold", [90.0, 91.0], [0.0] * 2, [0.9] * 2)])
    few = beats_darts(two, "gold", "GOLD-NAS", 0.95, 500, "b")
    assert few.verdict == NOT_OBSERVED and "fewer than 3" in few.evidence


def test_a_run_folder_that_is_not_finished_is_listed_not_scored(experiment: Path,
                                                                 tmp_path: Path) -> None:
    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("*.pt", ".ray", REPORT))
    nse = next(p for p in copy.iterdir() if p.name.startswith("nse-"))
    (nse / "summary.json").unlink()
    assert not RunFolder(nse).finished()
    write_report(copy)
    text = (copy / REPORT / "report.md").read_text()
    assert f"Not finished (left out above): {nse.name}" in text
