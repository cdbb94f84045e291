"""The results index and `nasbench table`: every number traces back to the run's own files."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from nasbench_suite.cli.main import main
from nasbench_suite.errors import UsageError
from nasbench_suite.report.plots import pareto_front
from nasbench_suite.report.tables import make_table
from nasbench_suite.store.index import load_epochs, load_index, runs
from nasbench_suite.store.runfolder import Failure, RunFolder, find_runs
from tests._results import make_series_run, series_points, tiny_results
from tests.conftest import markdown_rows


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_results(tmp_path_factory) / "runs"


def _summaries(root: Path) -> dict[str, dict]:
    return {run.name: run.summary().to_dict() for run in find_runs([root]) if run.finished()}


def test_index_has_one_row_per_run_equal_to_its_summary(results: Path) -> None:
    df = load_index([results])
    run_rows = runs(df)
    summaries = _summaries(results)
    assert sorted(run_rows["run"]) == sorted(summaries)
    for _, row in run_rows.iterrows():
        s = summaries[row["run"]]
        for key in ("method", "space", "dataset", "seed", "preset", "search_time_s",
                    "epochs_run", "counter", "torch"):
            assert row[key] == s[key], key
        assert row["acc"] == s["inherited"]["derived_acc"]
        assert row["supernet_acc"] == s["inherited"]["supernet_acc"]
        for key in ("macs", "flops", "params", "param_free_share"):
            assert row[key] == s["derived"][key], key
        for key, value in s["final"].items():
            if key != "param_free_share":
                assert row[key] == value, key
        assert row["status"] == "finished"
        assert row["label"] == row["method"] and row["variant"] == ""
        assert "FlopCounterMode" in row["counter"]


def test_index_has_one_row_per_recorded_architecture(results: Path) -> None:
    df = load_index([results])
    series = df[df["row"] == "series"]
    points = series_points()
    assert list(series["point"]) == [p["index"] for p in points]
    assert set(series["method"]) == {"gold"}
    for (_, row), point in zip(series.iterrows(), points, strict=True):
        for key in ("epoch", "macs", "params", "acc", "lambda", "reason"):
            assert row[key] == point[key], key
        assert json.loads(row["genotype"]) == point["genotype"]
        assert math.isnan(row["search_time_s"])  # run-level values only on run rows
    # The summary's copy of the series (no genotypes) is enough.
    other = results.parent / "summary-only"
    make_series_run(results / "gold-relaxed-digits-s5-fake", other / "gold-b",
                    in_series_json=False)
    (other / "gold-b" / "series.json").unlink(missing_ok=True)
    assert not RunFolder(other / "gold-b").has_series()
    only = load_index([other])
    assert list(only.loc[only["row"] == "series", "macs"]) == [p["macs"] for p in points]


def test_index_skips_unfinished_runs_unless_asked(results: Path, tmp_path: Path) -> None:
    src = next(p for p in sorted(results.iterdir()) if p.name.startswith("darts-restricted"))
    failed = tmp_path / "failed-run"
    shutil.copytree(src, failed)
    (failed / "summary.json").unlink()
    RunFolder(failed).write_failure(Failure("diverged: loss became nan"))
    with pytest.raises(UsageError, match="no finished runs"):
        load_index([tmp_path])
    df = load_index([tmp_path], include_unfinished=True)
    assert list(df["status"]) == ["failed"]
    assert df["failure"][0] == "diverged: loss became nan"


def test_index_reads_epochs(results: Path) -> None:
    epochs = load_epochs([results])
    assert len(epochs) == sum(RunFolder(p).epochs_done() for p in results.iterdir())
    assert {"epoch", "param_free_share", "label", "seed"} <= set(epochs.columns)


def _expected_from_files(root: Path) -> pd.DataFrame:
    """The table's statistics, computed straight from metrics.jsonl and summary.json."""
    rows = []
    for path in sorted(root.iterdir()):
        run = RunFolder(path)
        summary = run.summary()
        last = run.metrics()[-1]
        rows.append({"label": summary.method, "space": summary.space,
                     "supernet_raw_acc_score": last["supernet_raw_acc_score"],
                     "derived_macs": last["derived_macs"],
                     "acc": summary.inherited.derived_acc,
                     "search_time_s": last["search_time_s"]})
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["label", "space"], sort=True)
    out = grouped.size().rename("n").to_frame()
    for metric in ("supernet_raw_acc_score", "derived_macs", "acc", "search_time_s"):
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_std"] = grouped[metric].std()
    return out.reset_index()


def test_table_equals_pandas_statistics_of_the_metric_files(
        results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["table", str(results), "--format", "csv",
                 "--metrics", "supernet_raw_acc_score,derived_macs,acc,search_time_s"])
    assert code == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    expected = _expected_from_files(results)
    assert list(table.columns) == list(expected.columns)
    assert list(table["label"]) == list(expected["label"])
    assert list(table["n"]) == [1, 2, 1]  # darts relaxed, darts restricted, gold relaxed
    pd.testing.assert_frame_equal(table, expected, check_exact=False, rtol=1e-12,
                                  check_dtype=False)


def test_markdown_and_latex_tables(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = load_index([results])
    md = make_table(df, ["acc", "macs", "params"], "markdown").splitlines()
    assert [c.strip() for c in md[0].strip("|").split("|")] == [
        "Method", "Space", "n", "Acc., inherited, score split (%)", "FLOPs (M MACs)",
        "Params (M)"]
    rule = [c.strip() for c in md[1].strip("|").split("|")]
    assert rule[0].startswith(":-") and rule[1].startswith(":-") and rule[2].endswith("-:")
    restricted = next(line for line in md if "restricted" in line)
    acc = runs(df).query("space == 'restricted'")["acc"] * 100
    assert f"{acc.mean():.2f} ± {acc.std():.2f}" in restricted
    single = next(line for line in md if line.startswith("| GOLD-NAS"))
    assert "±" not in single  # one seed: no spread to show
    assert main(["table", str(results), "--format", "latex", "--metrics", "acc,param_free_share"]
                ) == 0
    tex = capsys.readouterr().out
    assert tex.startswith("\\begin{tabular}{llrrr}\n\\toprule")
    assert "Acc., inherited, score split (\\%)" in tex and "$\\pm$" in tex
    assert tex.rstrip().endswith("\\end{tabular}")


def test_table_to_file(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.md"
    assert main(["table", str(results), "--out", str(out)]) == 0
    assert out.read_text().startswith("| Method ")


@pytest.mark.parametrize("argv, message", [
    (["--metrics", "accuracy"], "unknown metric 'accuracy'"),
    (["--metrics", "method"], "unknown metric 'method'"),
])
def test_table_bad_metric_is_one_line_exit_2(results: Path, argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", str(results), *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_table_on_empty_or_missing_folder_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"nasbench: error: no run folders in {tmp_path}"
    assert main(["table", str(tmp_path / "missing")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_pareto_front_keeps_non_dominated_points() -> None:
    points = pd.DataFrame({"macs": [1, 2, 3, 3, 4, 5, 2],
                           "acc": [0.5, 0.7, 0.6, 0.8, 0.8, 0.9, 0.7]})
    front = pareto_front(points, "macs")
    assert list(zip(front["macs"], front["acc"], strict=True)) == [
        (1, 0.5), (2, 0.7), (3, 0.8), (5, 0.9)]


def test_two_variants_are_two_rows_and_an_unmeasured_gap_is_missing(
        tmp_path: Path, tiny_config) -> None:
    from nasbench_suite.training.loop import run_search

    for clamp in ("argmax", "derived"):
        run_search(tiny_config(method="edas", clamp=clamp, out=str(tmp_path / "runs")),
                   progress=False, log=lambda _: None)
    run_search(tiny_config(method="padnas", population=4, generations=1, stages=1,
                           out=str(tmp_path / "runs")), progress=False, log=lambda _: None)
    df = load_index([tmp_path / "runs"])
    main_table, legend = make_table(df, ["acc", "gap"], "markdown").split("\n\n", 1)
    rows = markdown_rows(main_table)
    labels = [r[0] for r in rows[2:]]
    assert labels == ["EDAS (clamp=argmax)", "EDAS (clamp=derived)", "PAD-NAS"]
    assert [r[0] for r in markdown_rows(legend)[2:]] == labels[:2]  # PAD-NAS: no variant
    padnas = rows[2:][2]
    assert padnas[-1] == "–"  # PAD-NAS measures no supernet gap: missing, never 0.00
    assert math.isnan(runs(df).query("method == 'padnas'")["gap"].item())


def test_short_variant_names_a_variant_by_the_fewest_settings_that_tell_it_apart() -> None:
    from nasbench_suite.store.index import short_variants, variants

    def config(space: str, epochs: int, images: int, **extra: int) -> dict:
        return {"method": "darts", "space": space, "dataset": "d", "seed": 0, "epochs": epochs,
                "batch_size": 16 if epochs == 50 else 64, "max_train_images": images, **extra}

    configs = {"a": config("restricted", 50, 7200, hessian_iters=10),
               "b": config("relaxed", 50, 7200), "c": config("restricted", 10, 5000,
                                                             hessian_iters=10),
               "d": config("relaxed", 10, 5000), "e": {**config("restricted", 50, 7200,
                                                                hessian_iters=10), "seed": 1}}
    groups = {p: (c["method"], c["space"], c["dataset"]) for p, c in configs.items()}
    short = short_variants(configs, groups)
    # epochs alone tells every variant apart; the same variant has one name in both spaces
    assert short == {"a": "epochs=50", "b": "epochs=50", "c": "epochs=10", "d": "epochs=10",
                     "e": "epochs=50"}
    assert variants(configs, groups)["a"] == "batch_size=16, epochs=50, max_train_images=7200"
    # when one setting is not enough, the next that separates the rest joins it
    configs["f"] = config("restricted", 50, 7200, hessian_iters=20)
    groups["f"] = ("darts", "restricted", "d")
    short = short_variants(configs, groups)
    assert short["f"] == "epochs=50, hessian_iters=20"
    assert short["a"] == "epochs=50, hessian_iters=10"
    assert short["b"] == "epochs=50"  # a relaxed run has no hessian_iters to name


def test_a_spaces_defaults_left_unnamed_or_named_are_one_variant() -> None:
    """An older run saved ``ops: null`` and ``skip: auto``; a newer one names the space's
    own ops and skip: they are one variant, and an op list is named, not spelled out."""
    from nasbench_suite.spaces.ops import DARTS_OPS, GOLD_OPS

    from nasbench_suite.store.index import short_variants

    def config(space: str, ops: list | None, skip: str, epochs: int = 40) -> dict:
        return {"method": "darts", "space": space, "dataset": "d", "seed": 0,
                "epochs": epochs, "ops": ops, "skip": skip}

    configs = {"old": config("restricted", None, "auto"),
               "new": config("restricted", list(DARTS_OPS), "identity"),
               "s2": config("restricted", list(GOLD_OPS), "identity"),
               "relaxed": config("relaxed", None, "auto"),
               "relaxed-identity": config("relaxed", list(GOLD_OPS), "identity")}
    groups = {p: (c["method"], c["space"], c["dataset"]) for p, c in configs.items()}
    short = short_variants(configs, groups)
    assert short["old"] == short["new"] == "ops=darts, skip=identity"
    assert short["s2"] == "ops=gold, skip=identity"
    assert short["relaxed"] == "ops=gold, skip=bn"  # the relaxed space's own skip
    assert short["relaxed-identity"] == "ops=gold, skip=identity"


def test_table_method_column_is_short_and_the_settings_go_to_a_legend_table() -> None:
    long = ("batch_size=64, epochs=10, hessian_every=2, hessian_images=256, hessian_iters=10, "
            "image_size=16, max_train_images=5000, score_every=0")
    rows = [{"row": "run", "label": label, "method": method, "variant": variant,
             "space": "restricted", "dataset": "npz:cifar10-10k@6e009ad2dc4d",
             "status": "finished", "seed": seed, "acc": 0.1 + 0.01 * seed,
             "acc_split": "score"}
            for label, method, variant in (("darts (epochs=10)", "darts", long),
                                           ("darts (epochs=4)", "darts", long.replace(
                                               "epochs=10", "epochs=4")),
                                           ("nse", "nse", ""))
            for seed in (0, 1)]
    df = pd.DataFrame(rows)
    md = make_table(df, ["acc"], "markdown")
    main_rows, legend_rows = md.split("\n\n", 1)[0], md.split("\n\n", 1)[1]
    body = markdown_rows(main_rows)[2:]
    assert [r[0] for r in body] == ["DARTS (epochs=10)", "DARTS (epochs=4)", "NSE"]
    assert all(len(r[0]) <= 30 for r in body) and body[0][1] == "restricted"
    legend = markdown_rows(legend_rows)
    assert legend[0][-1] == "Settings that differ among the method's runs"
    assert [r[0] for r in legend[2:]] == ["DARTS (epochs=10)", "DARTS (epochs=4)"]
    assert legend[2][-1] == long
    tex = make_table(df, ["acc"], "latex")
    assert tex.count("\\begin{tabular}") == 2 and "p{0.5\\linewidth}" in tex
    assert "hessian\\_every=2" in tex.split("% Variants")[1]
    assert "hessian" not in tex.split("% Variants")[0]  # the main table stays short
    # one variant per method: no legend
    assert "Variants" not in make_table(df[df["method"] == "nse"], ["acc"], "markdown")
