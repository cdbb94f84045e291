"""Ground truth in runs of the nb201 space: the summary, every epoch, the index, the tables,
`nasbench show`, and `nasbench rankcorr` against the table, on tiny searches."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from nasbench_suite.spaces import CellGenotype, Genotype, NetShape, create_space
from nasbench_suite.spaces.nb201_arch import NB201_EDGES, genotype_to_arch, parse_arch
from scipy.stats import kendalltau, spearmanr

from nasbench_suite.cli.main import main
from nasbench_suite.errors import UsageError
from nasbench_suite.groundtruth import (
    GT_COLUMNS,
    ground_truth,
    scored_cell,
    several_ops_per_edge,
)
from nasbench_suite.groundtruth.nb201 import CELLS, load_table, lookup, record, stratified_cells
from nasbench_suite.report.tables import make_table
from nasbench_suite.store.index import epoch_ground_truth, load_epochs, load_index, runs
from nasbench_suite.store.records import Summary
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search
from tests.conftest import markdown_rows


def _search(tiny_config: Any, method: str, **overrides: Any) -> RunFolder:
    cfg = tiny_config(method=method, space="nb201", **overrides)
    return RunFolder(run_search(cfg, progress=False, log=lambda _: None))


# -- the summary and every epoch --------------------------------------------------------------
def test_the_summary_holds_the_ground_truth_of_the_derived_cell(tiny_config: Any) -> None:
    run = _search(tiny_config, "darts", epochs=2)
    genotype = run.genotype()
    truth = run.summary().ground_truth
    assert truth == ground_truth(genotype) == record(genotype)
    assert truth is not None and truth["gt_arch"] == genotype_to_arch(genotype)
    assert truth["gt_cifar10_valid"] == lookup(genotype).cifar10_valid

    # a summary.json written before the field existed still reads, without ground truth
    data = json.loads((run.path / "summary.json").read_text())
    del data["ground_truth"]
    assert Summary.from_dict(data, "old summary").ground_truth is None


def test_every_epoch_has_the_ground_truth_of_its_genotype(tiny_config: Any) -> None:
    run = _search(tiny_config, "darts", epochs=3)
    epochs = load_epochs([run.path])
    assert list(epochs["epoch"]) == [0, 1, 2]
    logged = {rec.epoch: Genotype.from_dict(rec.genotype) for rec in run.arch()}
    for _, row in epochs.iterrows():
        truth = lookup(logged[row["epoch"]])
        assert row["gt_arch"] == truth.arch
        assert row["gt_cifar10_valid"] == truth.cifar10_valid
        assert row["gt_imagenet16_test"] == truth.imagenet16_test
        assert row["gt_percentile"] == truth.percentile
        assert json.loads(row["genotype"]) == logged[row["epoch"]].to_dict()
    # the initial cell (epoch -1, before the search) is in the trajectory too
    trajectory = epoch_ground_truth(run)
    assert [r["epoch"] for r in trajectory] == [-1, 0, 1, 2]
    assert trajectory[0]["gt_arch"] == genotype_to_arch(logged[-1])
    final = {k: epochs.iloc[-1][k] for k in GT_COLUMNS}
    assert final == run.summary().ground_truth


# -- several ops on one edge (GOLD-NAS) -------------------------------------------------------
def _space() -> Any:
    return create_space("nb201", NetShape(4, 3, 3, 10, 8, 4))


def test_a_genotype_with_several_ops_per_edge_is_scored_by_its_strongest_kept_op() -> None:
    space = _space()
    ops = space.ops
    # edge 0->1 keeps conv 1x1 and avg pool (the pool stronger), edge 1->3 keeps skip alone
    kept = Genotype("nb201", {"cell": CellGenotype(
        (("nor_conv_1x1", 0, 1), ("avg_pool_3x3", 0, 1), ("skip_connect", 1, 3)), (3,))})
    weights = torch.zeros(space.layout.shape)
    weights[0, 0, ops.index("nor_conv_1x1")] = 0.3
    weights[0, 0, ops.index("avg_pool_3x3")] = 0.6
    weights[0, 0, ops.index("nor_conv_3x3")] = 0.9  # not kept: must not be chosen
    weights[0, 4, ops.index("skip_connect")] = 0.1
    weights[0, 4, ops.index("none")] = 0.9  # none is no kept op either
    assert several_ops_per_edge(kept)
    cell = scored_cell(space, kept, weights)
    assert genotype_to_arch(cell) == ("|avg_pool_3x3~0|+|none~0|none~1|"
                                      "+|none~0|skip_connect~1|none~2|")
    single = Genotype("nb201", {"cell": CellGenotype((("nor_conv_3x3", 0, 1),), (3,))})
    assert scored_cell(space, single, weights) == single  # one op per edge: as it is


def test_gold_records_its_own_genotype_and_the_single_op_cell_the_table_scored(
        tiny_config: Any) -> None:
    run = _search(tiny_config, "gold", epochs=2)
    genotype, truth = run.genotype(), run.summary().ground_truth
    assert truth is not None
    final = run.arch()[-1]
    edge = {tuple(e): i for i, e in enumerate(run.info().edges)}
    ops = run.info().ops
    kept: dict[tuple[int, int], list[str]] = {}
    for op, src, dst in genotype.groups["cell"].edges:
        kept.setdefault((src, dst), []).append(op)
    for op, (src, dst) in zip(parse_arch(truth["gt_arch"]), NB201_EDGES, strict=True):
        if (src, dst) not in kept:
            assert op == "none"
            continue
        strength = {o: final.weights[0][edge[(src, dst)]][ops.index(o)] for o in kept[(src, dst)]}
        assert op in kept[(src, dst)] and strength[op] == max(strength.values())
    assert truth == ground_truth(scored_cell(_space(), genotype, torch.tensor(final.weights)))


# -- show, the index, the tables ---------------------------------------------------------------
def test_show_index_and_table_carry_the_ground_truth(
        tiny_config: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run = _search(tiny_config, "darts")
    truth = run.summary().ground_truth
    assert truth is not None
    assert main(["show", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "CIFAR-10 validation" in out and truth["gt_arch"] in out
    assert f"{truth['gt_cifar10_valid']:.2f}" in out and "ImageNet16-120 test" in out

    row = runs(load_index([run.path])).iloc[0]
    assert {k: row[k] for k in GT_COLUMNS} == truth
    table = make_table(load_index([run.path]), ["gt_cifar10_valid", "gt_percentile"])
    header, _, body = markdown_rows(table)
    assert header[-2:] == ["CIFAR-10 valid. acc., table (%)", "Table percentile"]
    assert body[-2:] == [f"{truth['gt_cifar10_valid']:.2f}", f"{truth['gt_percentile']:.1f}"]


def test_series_rows_carry_the_ground_truth_of_their_one_op_cells(tiny_config: Any) -> None:
    run = _search(tiny_config, "nse")
    index = load_index([run.path])
    series = index[index["row"] == "series"]
    assert len(series) > 0
    for _, row in series.iterrows():
        genotype = Genotype.from_dict(json.loads(row["genotype"]))
        assert not several_ops_per_edge(genotype)
        assert {k: row[k] for k in GT_COLUMNS} == ground_truth(genotype)


# -- the stratified cells ----------------------------------------------------------------------
def test_the_stratified_cells_are_fixed_per_seed_and_span_the_accuracy_range() -> None:
    n = 50
    cells = stratified_cells(n, 3)
    assert cells == stratified_cells(n, 3)  # a pure function of (n, seed)
    assert cells != stratified_cells(n, 4)
    assert len(set(cells)) == n
    table = load_table()
    ranked = np.sort(table["cifar10_valid"].to_numpy())
    bounds = np.linspace(0, CELLS, n + 1).round().astype(int)
    acc = table.loc[cells, "cifar10_valid"].to_numpy()
    # cell i lies in stratum i: between the table's quantiles i/n and (i+1)/n
    assert np.all(acc >= ranked[bounds[:-1]]) and np.all(acc <= ranked[bounds[1:] - 1])
    assert acc[0] <= ranked[bounds[1] - 1] and acc[-1] >= ranked[bounds[-2]]
    assert acc[-1] - acc[0] > 0.8 * (ranked[-1] - ranked[0])
    with pytest.raises(ValueError, match="n must be"):
        stratified_cells(1, 0)


# -- rankcorr against the table ----------------------------------------------------------------
def test_rankcorr_ranks_any_run_against_the_table(
        tiny_config: Any, capsys: pytest.CaptureFixture[str]) -> None:
    darts = _search(tiny_config, "darts", seed=0)
    nse = _search(tiny_config, "nse", seed=1)
    for run in (darts, nse):
        assert main(["rankcorr", str(run.path), "--archs", "6"]) == 0
    assert "Kendall tau" in capsys.readouterr().out
    result = darts.truthcorr()
    assert result.stages == ["final"] and result.cells == 6 and result.seed == 0
    # the same cells for every method and seed of a comparison
    assert result.archs == nse.truthcorr().archs == stratified_cells(6, 0)
    assert result.truth == [lookup(a).cifar10_valid for a in result.archs]
    assert [genotype_to_arch(Genotype.from_dict(g)) for g in result.genotypes] == result.archs
    oneshot = result.oneshot["final"]
    assert len(oneshot) == 6 and all(0.0 <= a <= 1.0 for a in oneshot)
    tau, rho = kendalltau(oneshot, result.truth), spearmanr(oneshot, result.truth)
    for mine, scipy_value in ((result.tau["final"], tau.statistic),
                              (result.rho["final"], rho.statistic)):
        if mine is None:  # constant accuracies: undefined, never a made-up number
            assert np.isnan(scipy_value)
        else:
            assert mine == pytest.approx(scipy_value)
    top = result.top["final"]
    assert len(top) == 5 and sorted((oneshot[i] for i in top), reverse=True) == \
        [oneshot[i] for i in top]
    assert min(oneshot[i] for i in top) >= max(
        oneshot[i] for i in range(6) if i not in top)
    assert result.top_truth["final"] == [result.truth[i] for i in top]


def test_rankcorr_measures_each_kept_stage_and_needs_the_final_weights(
        tiny_config: Any, capsys: pytest.CaptureFixture[str]) -> None:
    padnas = _search(tiny_config, "padnas", epochs=2,
                     hp={"stages": 2, "population": 4, "generations": 1})
    assert main(["rankcorr", str(padnas.path), "--archs", "4"]) == 0
    result = padnas.truthcorr()
    assert result.stages == ["stage-1", "stage-2"]
    assert all(len(result.oneshot[s]) == 4 for s in result.stages)

    darts = _search(tiny_config, "darts")
    assert main(["rankcorr", str(darts.path), "--archs", "4", "--eval-epochs", "1"]) == 2
    assert "trains nothing" in capsys.readouterr().err
    darts.drop_checkpoints()
    assert main(["rankcorr", str(darts.path), "--archs", "4"]) == 2
    assert "final weights" in capsys.readouterr().err


def test_the_final_checkpoint_is_the_last_epochs(tiny_config: Any) -> None:
    run = _search(tiny_config, "darts", epochs=2)
    state = run.final_state()
    assert state["epoch"] == run.summary().epochs_run == 2
    path = run.path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")  # only the previous epoch's would load
    with pytest.raises(UsageError, match="not the final epoch"):
        run.final_state()
