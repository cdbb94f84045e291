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
    """The entries of every legend, the figure's own (outside the panels) included."""
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [[t.get_text() for t in legend.get_texts()] for legend in [*legends, *fig.legends]]


def _saved(fig, tmp_path: Path, stem: str) -> None:
    for path in save_figure(fig, tmp_path, stem, ("png",)):
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_accuracy_against_flops_and_params(results: Path, tmp_path: Path) -> None:
    df = load_index([results])
    flops = plot_acc_cost(df, "macs")
    inherited = "Accuracy, inherited weights (%)"
    assert _labels(flops) == [("FLOPs (M multiply-adds)", inherited)]
    assert flops.axes[0].get_title() == "digits (scikit-learn), score split"
    assert _legends(flops) == [["DARTS, relaxed", "DARTS, restricted", "GOLD-NAS, relaxed"]]
    _saved(flops, tmp_path, "acc-flops")
    params = plot_acc_cost(df, "params")
    assert _labels(params) == [("Parameters (M)", inherited)]
    _saved(params, tmp_path, "acc-params")


def test_parameter_free_share_and_search_cost(results: Path, tmp_path: Path) -> None:
    share = plot_param_free(load_epochs([results]))
    assert _labels(share) == [("Search epoch", "Param.-free ops in derived cell (%)")]
    assert share.axes[0].get_title() == "runs, digits (scikit-learn)"
    assert len(_legends(share)) == 1
    _saved(share, tmp_path, "param-free")
    cost = plot_search_cost(load_index([results]))
    # horizontal bars, one panel per experiment (the folder holding the runs)
    [(xlabel, _)] = _labels(cost)
    assert xlabel.startswith("Search wall time (s)")
    assert cost.axes[0].get_title(loc="left") == "runs, digits (scikit-learn)"
    assert [t.get_text() for t in cost.axes[0].get_yticklabels()] == [
        "DARTS, relaxed", "DARTS, restricted", "GOLD-NAS, relaxed"]
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
    assert ["DARTS", "restricted", "2"] in [r[:3] for r in rows]
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
    assert titles == ["digits (scikit-learn), score split", "other, score split"]
    for ax in fig.axes:
        if ax.get_visible() and ax.get_title().startswith("other"):
            assert len(ax.collections) == 1  # the other dataset's one run, alone


def _colours_by_label(fig) -> dict[str, tuple[float, ...]]:
    """Legend entry -> its line's colour, from the figure's legend."""
    from matplotlib.colors import to_rgba

    out = {}
    for legend in fig.legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
            out[text.get_text()] = to_rgba(handle.get_color())
    return out


def test_a_variant_looks_alike_in_every_figure_of_a_set(results: Path) -> None:
    """One colour and marker per series for the whole set (`nasbench figures`): never
    chosen from what one figure holds, and no two series alike."""
    from matplotlib.colors import to_rgba

    from nasbench_suite.report.plots import make_plots, series_looks
    from nasbench_suite.report.style import MARKERS, PALETTE, looks

    df = load_index([results])
    expected = series_looks(df)
    figs = dict(make_plots([results], ("acc-flops", "inherited-acc-flops", "param-free",
                                       "search-cost")))
    for kind in ("acc-flops", "inherited-acc-flops", "param-free"):
        colours = _colours_by_label(figs[kind])
        assert colours, kind
        for name, colour in colours.items():
            assert colour == to_rgba(expected[name].color), (kind, name)
    cost = figs["search-cost"].axes[0]
    names = [t.get_text() for t in cost.get_yticklabels()]
    bars = [to_rgba(p.get_facecolor()[:3]) for p in cost.patches]
    assert bars == [to_rgba(expected[n].color) for n in names]
    # a figure of part of the set (gold alone) draws gold as the whole set does
    gold = plot_acc_cost(df[df["method"] == "gold"], "macs", series=expected)
    assert _colours_by_label(gold) == {
        "GOLD-NAS, relaxed": to_rgba(expected["GOLD-NAS, relaxed"].color)}
    # enough distinct looks: 30 series, 30 different (colour, marker) pairs, 24 colours
    many = looks(f"v{i:02d}" for i in range(30))
    assert len({(look.color, look.marker) for look in many.values()}) == 30
    assert len(set(PALETTE)) == len(PALETTE) >= 20 and len(set(MARKERS)) == len(MARKERS)
    assert looks(["b", "a"]) == looks(["a", "b", "a"])  # by sorted name, not by order


def test_no_figure_mixes_accuracy_kinds(results: Path) -> None:
    """Where some runs were trained from scratch, acc-flops shows only accuracies from
    scratch (test split) and inherited-acc-flops only inherited ones (their split)."""
    df = load_index([results])
    trained = df.copy()
    darts = trained["method"] == "darts"
    trained.loc[darts, "scratch_acc"] = 0.5 + 0.01 * trained.loc[darts, "acc"]
    scratch = plot_acc_cost(trained, "macs")
    assert {y for _, y in _labels(scratch)} == {"Test accuracy, trained from scratch (%)"}
    assert [ax.get_title() for ax in scratch.axes if ax.axison] == [
        "digits (scikit-learn), test split"]
    assert _legends(scratch) == [["DARTS, relaxed", "DARTS, restricted"]]  # gold: untrained
    inherited = plot_acc_cost(trained, "macs", inherited=True)
    assert {y for _, y in _labels(inherited)} == {"Accuracy, inherited weights (%)"}
    assert [ax.get_title() for ax in inherited.axes if ax.axison] == [
        "digits (scikit-learn), score split"]


def test_architecture_weights_title_names_the_experiment_and_ticks_stay_few(
        results: Path) -> None:
    run = next(p for p in sorted(results.iterdir()) if p.name.startswith("darts-restricted"))
    fig = plot_arch_weights(run)
    title = fig.get_suptitle()
    assert title.startswith(f"{results.name}: DARTS, restricted space, digits (scikit-learn)")
    assert "normal cell" in title
    for ax in (ax for ax in fig.axes if ax.get_visible()):
        assert len(ax.xaxis.get_major_locator().tick_values(0, 50)) <= 5
    styles = {line.get_linestyle() for line in fig.axes[0].get_lines()}
    assert len(styles) > 1  # equal weights draw on top of each other: dashes tell them apart


def test_an_arm_looks_alike_in_every_darts_failure_report() -> None:
    """The long report holds arms the short one lacks: a shared arm keeps its look."""
    import pandas as pd

    from nasbench_suite.experiments.darts_failure.plots import arm_looks

    short = pd.DataFrame({"arm": ["DARTS (1st order), restricted", "GOLD-NAS, relaxed"]})
    long = pd.DataFrame({"arm": ["DARTS (1st order), restricted", "GOLD-NAS, relaxed",
                                 "DARTS-ES (1st order), restricted", "some new arm"]})
    a, b = arm_looks(short), arm_looks(long)
    assert all(a[arm] == b[arm] for arm in a)
    assert len({(look.color, look.marker) for look in b.values()}) == len(b)


def test_no_two_arms_of_the_confound_experiment_share_a_colour() -> None:
    """``--arms all`` draws every arm of config.ARM_TABLE with its remedies (DARTS-ES on
    every DARTS arm, P-DARTS's limit on the restricted ones) in one figure: each needs its
    own colour (the palette's 24), not only its own marker."""
    import pandas as pd

    from nasbench_suite.experiments.darts_failure.arms import arm_title
    from nasbench_suite.experiments.darts_failure.config import ARM_TABLE
    from nasbench_suite.experiments.darts_failure.plots import arm_looks

    arms = [arm_title(a, 2 if a.label.startswith("darts2") else 1, remedy)
            for a in ARM_TABLE for remedy in ("", "darts-es", "pdarts-m2")
            if not remedy or (a.method == "darts" and
                              (remedy == "darts-es" or a.space == "restricted"))]
    looks = arm_looks(pd.DataFrame({"arm": arms}))
    assert len({look.color for look in looks.values()}) == len(set(arms))
