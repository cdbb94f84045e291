"""`nasbench reproduce claims`: the sweep, end to end at a tiny budget on digits, the verdict
rules on hand-made values, and exact rebuilds.

One tiny experiment (3 cells of 4 channels, 2 seeds, 2 search epochs, PAD-NAS 4 epochs of
one stage each with a 4 x 1 NSGA-II (conftest.TINY_PADNAS), 3 rank-correlation architectures,
1 epoch from scratch) on the test session's shared local Ray (tests/conftest.py) serves the
module; the tests that need it are `slow`.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from nasbench_suite.cli.main import main
from nasbench_suite.experiments.base import run_experiment
from nasbench_suite.experiments.claims.config import ClaimsConfig
from nasbench_suite.experiments.claims.experiment import EXPERIMENT, sweep_spec
from nasbench_suite.experiments.claims.report import REPORT, TITLES, verdicts, write_report
from nasbench_suite.experiments.claims.stats import interval
from nasbench_suite.experiments.verdicts import CONTRADICTED, NOT_OBSERVED, OBSERVED
from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.sweep.spec import expand
from nasbench_suite.sweep.tune import Resources
from tests.conftest import TINY, tiny_experiment, with_tiny_padnas

SEARCH = {k: v for k, v in TINY.items() if k not in ("epochs", "threads")}
VERDICTS = {OBSERVED, CONTRADICTED, NOT_OBSERVED}
REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
#: the claims experiment with PAD-NAS's search at the tiny size (conftest.TINY_PADNAS)
TINY_CLAIMS = with_tiny_padnas(EXPERIMENT)


def tiny_cfg(out: Path, **kw) -> ClaimsConfig:
    return ClaimsConfig(**tiny_experiment(out, SEARCH, padnas_epochs=4, rankcorr_archs=3,
                                          **kw))


@pytest.fixture(scope="module")
def experiment(local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_experiment(TINY_CLAIMS, tiny_cfg(tmp_path_factory.mktemp("claims")),
                          Resources(cpus_per_trial=1), quiet=True, log=lambda _: None)


def test_the_sweep_puts_each_method_on_its_claims_space(tmp_path: Path) -> None:
    trials = expand(sweep_spec(tiny_cfg(tmp_path)), tmp_path, log=lambda _: None)
    pairs = sorted({(t.config["method"], t.config["space"]) for t in trials})
    assert pairs == [("darts", "restricted"), ("edas", "restricted"), ("gold", "relaxed"),
                     ("nse", "restricted"), ("padnas", "restricted")]
    assert len(trials) == 10
    epochs = {t.config["method"]: t.config["epochs"] for t in trials}
    assert epochs == {"darts": 2, "edas": 2, "nse": 2, "gold": 2, "padnas": 4}
    assert {t.config["dataset"] for t in trials} == {"digits"}
    assert {t.config["channels"] for t in trials} == {TINY["channels"]}


@pytest.mark.slow
def test_the_report_has_every_row_filled(experiment: Path) -> None:
    claims = pd.read_csv(experiment / REPORT / "claims.csv", keep_default_na=False)
    assert list(claims["claim"]) == list(TITLES)
    for row in claims.itertuples():
        assert row.verdict in VERDICTS, row
        assert row.measured and row.paper, row
        if row.verdict == NOT_OBSERVED:
            assert row.why, f"{row.claim}: not observed without a reason"
    text = (experiment / REPORT / "report.md").read_text()
    for title in TITLES.values():
        assert title in text
    # no darts-failure folder beside a fresh experiment: that row says why
    darts = claims[claims["claim"] == "darts-relaxed"].iloc[0]
    assert darts.verdict == NOT_OBSERVED and "darts-failure" in darts.why


@pytest.mark.slow
def test_every_claim_was_measured(experiment: Path) -> None:
    gaps = pd.read_csv(experiment / REPORT / "gaps.csv")
    assert sorted(set(gaps["method"])) == ["darts", "edas"] and len(gaps) == 4
    assert gaps["gap"].notna().all()
    taus = pd.read_csv(experiment / REPORT / "rankcorr.csv")
    assert sorted(set(taus["stage"])) == [1, 2, 3, 4] and set(taus["seed"]) == {0, 1}
    assert taus["tau"].dropna().between(-1, 1).all()
    nse = pd.read_csv(experiment / REPORT / "nse.csv")
    assert nse["scratch_acc"].notna().all() and len(nse) >= 1
    for trial in ("nse-restricted-digits-s0", "gold-relaxed-digits-s0"):
        run = RunFolder(experiment / trial)
        assert run.evaluations(), f"{trial}: nothing trained from scratch"
    pad = RunFolder(experiment / "padnas-restricted-digits-s0")
    assert EvalFolder(pad.rankcorr_eval_dir(2)).done() and pad.has_rankcorr()


@pytest.mark.slow
def test_running_again_trains_nothing_and_rebuilds_the_same_report(experiment: Path) -> None:
    before = {p.name: p.read_bytes() for p in (experiment / REPORT).iterdir()}
    lines: list[str] = []
    run_experiment(TINY_CLAIMS, tiny_cfg(experiment.parent), Resources(cpus_per_trial=1),
                   quiet=True, log=lines.append)
    assert not [line for line in lines if "submitted" in line], lines
    assert {p.name: p.read_bytes() for p in (experiment / REPORT).iterdir()} == before
    assert main(["reproduce", "claims", "--report-only", "--dir", str(experiment)]) == 0
    assert {p.name: p.read_bytes() for p in (experiment / REPORT).iterdir()} == before


@pytest.mark.slow
def test_the_report_rebuilds_without_checkpoints(experiment: Path, tmp_path: Path) -> None:
    """What results/reference keeps (no checkpoints) is enough for the whole report."""
    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("*.pt", ".ray", REPORT))
    write_report(copy)
    for path in (experiment / REPORT).iterdir():
        assert (copy / REPORT / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.slow
def test_a_darts_failure_folder_fills_its_row(experiment: Path, tmp_path: Path) -> None:
    committed = REFERENCE / "darts-failure-cifar10-10k"
    if not committed.is_dir():
        pytest.skip("no committed darts-failure reference")
    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("*.pt", ".ray", REPORT))
    shutil.copytree(committed, tmp_path / "darts-failure-long-test",
                    ignore=shutil.ignore_patterns("*.pt", ".ray"))
    write_report(copy)  # found beside the experiment, as the long reference would be
    rows = pd.read_csv(copy / REPORT / "darts_failure.csv")
    assert {"darts", "gold"} <= set(rows["method"]) and rows["scratch_acc"].notna().all()
    claims = pd.read_csv(copy / REPORT / "claims.csv", keep_default_na=False)
    row = claims[claims["claim"] == "darts-relaxed"].iloc[0]
    assert "darts-failure-long-test" in row.measured and row.verdict in VERDICTS


# -- the verdict rules on hand-made values -------------------------------------------------------
def _tables(darts: list[float], edas: list[float]) -> dict[str, pd.DataFrame]:
    gaps = pd.DataFrame([{"method": m, "seed": s, "gap": g}
                         for m, values in (("darts", darts), ("edas", edas))
                         for s, g in enumerate(values)])
    empty = pd.DataFrame()
    return {"gaps": gaps, "rankcorr": empty, "nse": empty, "gold": empty,
            "darts_failure": empty}


@pytest.mark.parametrize("darts,edas,verdict", [
    ([0.30, 0.32, 0.35], [0.00, 0.01, -0.01], OBSERVED),  # every seed agrees
    ([0.00, 0.01, 0.00], [0.05, 0.06, 0.04], CONTRADICTED),  # EDAS drops more
    ([0.30, 0.32, 0.35], [0.10, 0.12, 0.08], CONTRADICTED),  # EDAS's own drop is large
    ([0.30, -0.10, 0.35], [0.00, 0.01, -0.01], NOT_OBSERVED),  # seeds disagree
    ([0.30], [0.00], NOT_OBSERVED),  # one seed: no interval
    ([0.30, 0.32], [0.00, 0.01], NOT_OBSERVED),  # two seeds agree, but give no interval
])
def test_edas_verdicts_come_from_intervals(darts: list[float], edas: list[float],
                                           verdict: str) -> None:
    rows = verdicts(_tables(darts, edas), ClaimsConfig())
    edas_row = rows[0]
    assert edas_row.claim == "edas" and edas_row.verdict == verdict, edas_row
    assert all(r.verdict in VERDICTS and r.measured for r in rows)
    if verdict == NOT_OBSERVED:
        assert edas_row.why


def test_the_interval_is_scipys_percentile_bootstrap_and_is_reproducible() -> None:
    values = [0.1, 0.4, 0.25, 0.3]
    a, b = interval(values), interval(values)
    assert a == b and a.low <= a.mean <= a.high and a.n == 4
    assert a.low >= min(values) and a.high <= max(values)
    one = interval([0.5])
    assert one.n == 1 and not one.defined and math.isnan(one.low)
    same = interval([0.2, 0.2, 0.2])  # every resample has the same mean
    assert same.low == same.high == same.mean
    # two seeds: a percentile interval would be their min and max; their values instead
    two = interval([0.2, 0.4])
    assert two.n == 2 and not two.defined and math.isnan(two.low)
    assert two.text("{:.2f}") == "0.30 (2 seed(s), no interval: 0.20, 0.40)"
