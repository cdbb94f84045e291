"""`nasbench plot` and `nasbench figures`: images written, axes labelled, output repeatable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nasbench_suite.cli.main import main
from nasbench_suite.report.plots import (
    plot_acc_cost,
    plot_arch_weights,
    plot_param_free,
    plot_search_cost,
    save_figure,
)
from nasbench_suite.store.index import load_epochs, load_index
from tests._results import tiny_results


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_results(tmp_path_factory) / "runs"


def _labels(fig) -> list[tuple[str, str]]:
    """(x label, y label) of every data panel (not the empty axes that hold legends)."""
    return [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes
            if ax.get_visible() and ax.axison]


def _legends(fig) -> list[list[str]]:
    return [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes
            if ax.get_legend() is not None]


def _saved(fig, tmp_path: Path, stem: str) -> None:
    for path in save_figure(fig, tmp_path, stem, ("png",)):
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_against_flops_and_params(results: Path, tmp_path: Path) -> None:
    df = load_index([results])
    flops = plot_acc_cost(df, "macs")
    inherited = "Accuracy, inherited weights, score split (%)"
    assert _labels(flops) == [("FLOPs (M multiply-adds)", inherited)]
    assert flops.axes[0].get_title() == "dataset: digits"
    assert _legends(flops) == [["darts, relaxed", "darts, restricted", "gold, relaxed"]]
    _saved(flops, tmp_path, "acc-flops")
    params = plot_acc_cost(df, "params")
    assert _labels(params) == [("Parameters (M)", inherited)]
    _saved(params, tmp_path, "acc-params")


def test_parameter_free_share_and_search_cost(results: Path, tmp_path: Path) -> None:
    share = plot_param_free(load_epochs([results]))
    assert _labels(share) == [("Epoch", "Parameter-free ops in cell (%)")]
    assert len(_legends(share)) == 1
    _saved(share, tmp_path, "param-free")
    cost = plot_search_cost(load_index([results]))
    assert _labels(cost) == [("Search time (s)", "Method")]  # horizontal bars
    assert [t.get_text() for t in cost.axes[0].get_yticklabels()] == ["darts", "gold"]
    _saved(cost, tmp_path, "search-cost")


def test_architecture_weights_per_edge(results: Path, tmp_path: Path) -> None:
    run = next(p for p in sorted(results.iterdir()) if p.name.startswith("darts-restricted"))
    fig = plot_arch_weights(run)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 14  # one panel per edge of a 4-node cell
    assert [ax.get_title() for ax in visible[:3]] == ["edge 0→2", "edge 1→2", "edge 0→3"]
    assert {ax.get_ylabel() for ax in visible} == {"Weight", ""}
    assert {ax.get_xlabel() for ax in visible[-5:]} == {"Epoch (0: start)"}
    assert len(visible[0].get_lines()) == 8  # one line per candidate op
    _saved(fig, tmp_path, "arch")


def test_plot_command_writes_png_pdf_and_svg(results: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plots"
    assert main(["plot", str(results), "--kind", "acc-flops,search-cost", "--out", str(out),
                 "--svg"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["acc-flops.pdf", "acc-flops.png", "acc-flops.svg", "search-cost.pdf",
                     "search-cost.png", "search-cost.svg"]
    assert all((out / n).stat().st_size > 1000 for n in names)
    assert main(["plot", str(results), "--kind", "pareto", "--out", str(out)]) == 2
    assert "unknown plot kind 'pareto'" in capsys.readouterr().err


@pytest.mark.slow  # the whole figure set drawn twice, byte for byte
def test_figures_twice_gives_identical_files(results: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    for run in sorted(results.iterdir()):
        if run.name.startswith(("darts-restricted", "gold")):
            shutil.copytree(run, reference / run.name, ignore=shutil.ignore_patterns("*.pt"))
    out, first = tmp_path / "figures", tmp_path / "first"
    out.mkdir()
    # A user's own files in the output folder, named like ours or not: never touched.
    (out / "arch-weights-my-own.png").write_bytes(b"mine")
    (out / "notes.txt").write_text("not ours")
    assert main(["figures", "--reference", str(reference), "--out", str(out)]) == 0
    shutil.copytree(out, first)
    assert main(["figures", "--reference", str(reference), "--out", str(out)]) == 0
    names = sorted(p.name for p in first.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        assert (first / name).read_bytes() == (out / name).read_bytes(), name
    assert {"table.md", "table.tex", "table.csv", "acc-flops.png", "acc-params.pdf",
            "param-free.png", "search-cost.pdf", "manifest.json"} <= set(names)
    # one arch-weights figure per method and space (lowest seed): darts restricted, gold
    ours = [n for n in names if n.startswith("arch-weights") and n.endswith(".png")
            and n != "arch-weights-my-own.png"]
    assert len(ours) == 2
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in (out / "table.md").read_text().splitlines()]
    assert ["darts", "restricted", "2"] in [r[:3] for r in rows]
    # A figure a build wrote, of a run since removed from the reference, goes; ours stay.
    gold = next(p for p in reference.iterdir() if p.name.startswith("gold"))
    shutil.rmtree(gold)
    assert main(["figures", "--reference", str(reference), "--out", str(out)]) == 0
    left = {p.name for p in out.iterdir()}
    assert not {f"arch-weights-{gold.name}.png", f"arch-weights-{gold.name}.pdf"} & left
    assert (out / "arch-weights-my-own.png").read_bytes() == b"mine"
    assert (out / "notes.txt").read_text() == "not ours"


def test_figures_on_empty_reference_is_one_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["figures", "--reference", str(tmp_path), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds no run folders yet" in err
    assert not (tmp_path / "f").exists()


def test_runs_of_two_datasets_are_drawn_in_separate_panels(results: Path,
                                                           tmp_path: Path) -> None:
    from nasbench_suite.store.runfolder import RunFolder

    mixed = tmp_path / "mixed"
    shutil.copytree(results, mixed / "digits")
    other = mixed / "other" / "darts-restricted-other"
    source = next(p for p in sorted(results.iterdir()) if p.name.startswith("darts-restricted"))
    shutil.copytree(source, other)
    folder = RunFolder(other)
    info = folder.info()
    import dataclasses

    from nasbench_suite.files import write_json

    write_json(other / "run.json", dataclasses.asdict(
        dataclasses.replace(info, dataset_id="npz:other@000000000000")))
    df = load_index([mixed])
    assert set(df["dataset"]) == {"digits", "npz:other@000000000000"}
    fig = plot_acc_cost(df, "macs")
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_visible() and ax.axison)
    assert titles == ["dataset: digits", "dataset: npz:other@000000000000"]
    for ax in fig.axes:
        if ax.get_visible() and ax.get_title().endswith("other@000000000000"):
            assert len(ax.collections) == 1  # the other dataset's one run, alone
