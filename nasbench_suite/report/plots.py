"""Figures from run folders: accuracy against cost with Pareto fronts, architecture weights
over epochs, the share of parameter-free ops over epochs, and search cost.

A figure shows one kind of accuracy: ``acc-flops`` and ``acc-params`` the test accuracy of
architectures trained from scratch (where an experiment trained them; runs nobody trained
are left out, and a figure of runs none of which was trained shows inherited accuracy
instead, saying so), ``inherited-acc-flops`` always the accuracy with inherited weights.
Panels are per dataset and name it, with the split, in words.

Every figure draws through nasbench_suite.report.style: a series (a method variant in a
space) keeps one colour and one marker in every figure of a set (:func:`series_looks`
over the whole index, not over one figure's data), legends sit outside the data, and
accuracies and shares are in %. Figures are sized for a paper column (3.4 in per panel;
the per-edge weights figure spans two columns), drawn on matplotlib's Agg canvas without
pyplot (no global figure state, no display needed). Saved files carry no timestamps (PNG
without the Software tag, PDF without CreationDate, SVG without Date and with a fixed hash
salt), so the same inputs give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nasbench_suite.errors import UsageError
from nasbench_suite.methods.training import pareto_front as kit_pareto
from nasbench_suite.report.style import (
    COLUMN_WIDTH,
    FULL_WIDTH,
    RC,
    SPACE_LINESTYLES,
    Look,
    dataset_name,
    integer_ticks,
    legend_outside,
    looks,
    method_name,
    op_looks,
    panel_title,
    percent_axis,
    style,
)
from nasbench_suite.store.index import load_epochs, load_index, runs
from nasbench_suite.store.runfolder import RunFolder, find_runs

KINDS = ("acc-flops", "acc-params", "inherited-acc-flops", "arch-weights", "param-free",
         "search-cost")
FORMATS = ("png", "pdf", "svg")
_RC = RC
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
}
_style = style  # the experiments' plots import it under this name


def series_name(label: str, method: str, space: str) -> str:
    """A series in words: ``DARTS (epochs=10), restricted`` (``label`` is the index's
    method plus short variant)."""
    return f"{method_name(method)}{label[len(method):]}, {space}"


def _named(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(series=[series_name(lab, m, sp) for lab, m, sp in
                             zip(df["label"], df["method"], df["space"], strict=True)])


def series_looks(df: pd.DataFrame) -> dict[str, Look]:
    """Colour and marker of every series (variant and space) of ``df``: give it the whole
    index, and every figure drawn from that index draws a series alike."""
    return looks(_named(df)["series"])


def pareto_front(points: pd.DataFrame, x: str, y: str = "acc") -> pd.DataFrame:
    """Points not dominated in (higher ``y``, lower ``x``), by ascending ``x`` (the training
    kit's Pareto helper; of exact duplicates one is drawn)."""
    data = points.dropna(subset=[x, y])
    front = data.iloc[kit_pareto(list(data[y]), list(data[x]))]
    return front.drop_duplicates(subset=[x, y]).sort_values([x, y], ascending=[True, False],
                                                            kind="stable")


def _epoch_axis(ax: Axes, epochs: Sequence[int] | np.ndarray | pd.Series) -> None:
    """A few whole-epoch ticks; a run of one epoch gets a readable axis around its point."""
    values = sorted(set(int(e) for e in epochs))
    integer_ticks(ax, "x", nbins=5)
    if len(values) == 1:
        ax.set_xlim(values[0] - 1, values[0] + 1)


def _panels(n: int, height: float = 2.4, legend_width: float = 1.9,
            labels: Iterable[str] = ()) -> tuple[Figure, list[Axes]]:
    """``n`` panels, two per row, with room on the right for the figure's one legend of
    ``labels``: the figure grows with its longest label and its number of entries (a
    legend that does not fit collapses the panels to nothing)."""
    names = sorted(set(labels))
    cols, rows = min(n, 2), math.ceil(n / 2)
    width = max(legend_width, 0.055 * max((len(x) for x in names), default=0) + 0.6)
    fig = Figure(figsize=(COLUMN_WIDTH * cols + width,
                          max(height * rows, 0.17 * len(names) + 0.7)),
                 layout="constrained")
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = list(grid.flat)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


#: y-axis labels of the accuracies a figure can show (the split is in the panel title)
ACC_LABELS = {
    "scratch_acc": "Test accuracy, trained from scratch (%)",
    "acc": "Accuracy, inherited weights (%)",
}


def accuracy_column(points: pd.DataFrame, inherited: bool = False) -> str:
    """Which accuracy a figure shows: from scratch where any of its runs was trained from
    scratch (the number that compares architectures), else with inherited weights; never
    both in one figure."""
    if not inherited and "scratch_acc" in points and points["scratch_acc"].notna().any():
        return "scratch_acc"
    return "acc"


def _readable_log_axis(ax: Axes) -> None:
    """A log axis with a few plainly labelled ticks (1, 2, 5 per decade) and no minor
    labels, so that labels never overprint each other."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(mpl.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def _split_of(points: pd.DataFrame, y: str) -> str | None:
    if y == "scratch_acc":
        return "test"
    splits = sorted(points["acc_split"].dropna().astype(str).unique()) \
        if "acc_split" in points else []
    return ", ".join(splits) or None


def plot_acc_cost(df: pd.DataFrame, x: str = "macs", inherited: bool = False,
                  series: dict[str, Look] | None = None) -> Figure:
    """Accuracy of every derived (and recorded) architecture against its cost, one panel per
    dataset, each series' Pareto front as a step line. One kind of accuracy for the whole
    figure (:func:`accuracy_column`); every panel has the same x scale (log where the
    figure's costs span more than 20x)."""
    if x not in ("macs", "params"):
        raise ValueError(f"x must be macs or params, got {x!r}")
    finished = _named(df[df["status"] == "finished"])
    if finished["dataset"].dropna().empty:
        raise UsageError("no finished run to plot")
    colours = series if series is not None else series_looks(df)
    y = accuracy_column(finished, inherited)
    points = finished.dropna(subset=[y, x])
    if points.empty:
        raise UsageError(f"no run has both an accuracy and {x}")
    datasets = sorted(points["dataset"].unique())
    scale = 1e-6
    values = points[x] * scale
    log = values.min() > 0 and values.max() / values.min() > 20
    with style():
        fig, axes = _panels(len(datasets), labels=points["series"])
        for ax, dataset in zip(axes, datasets, strict=True):
            panel = points[points["dataset"] == dataset]
            ax.set_title(panel_title(dataset, _split_of(panel, y)))
            ax.set_ylabel(ACC_LABELS[y])
            ax.set_xlabel("FLOPs (M multiply-adds)" if x == "macs" else "Parameters (M)")
            for name, group in panel.groupby("series", sort=True):
                look = colours[name]
                linestyle = SPACE_LINESTYLES.get(group["space"].iloc[0], "-")
                ax.scatter(group[x] * scale, group[y] * 100, color=look.color, s=10,
                           marker=look.marker, alpha=0.35, linewidths=0)
                front = pareto_front(group, x, y)
                ax.step(front[x] * scale, front[y] * 100, where="post", color=look.color,
                        linestyle=linestyle, marker=look.marker, markersize=4, label=name)
            if log:
                _readable_log_axis(ax)
            percent_axis(ax)
        legend_outside(fig, axes, title="Pareto front per variant")
    return fig


def experiment_of(path: str | Path) -> str:
    """The experiment a run belongs to: the folder that holds its run folder."""
    return Path(path).parent.name


def plot_param_free(epochs: pd.DataFrame, series: dict[str, Look] | None = None) -> Figure:
    """Share of parameter-free ops (skip, pooling, none) in the derived cell, per epoch, one
    panel per experiment and dataset (experiments differ in their epoch budgets; one axis
    of all of them is a tangle): mean over seeds with a ±1 sd band; DARTS's collapse shows
    as a rising line."""
    data = _named(epochs.dropna(subset=["param_free_share"])).assign(
        epoch_1=lambda d: d["epoch"] + 1, share=lambda d: d["param_free_share"] * 100)
    if data.empty:
        raise UsageError("no run logged param_free_share")
    colours = series if series is not None else looks(data["series"])
    data = data.assign(experiment=[experiment_of(p) for p in data["path"]])
    panels = sorted(data.groupby(["experiment", "dataset"]).groups)
    with style():
        fig, axes = _panels(len(panels), height=2.2, labels=data["series"])
        for ax, (experiment, dataset) in zip(axes, panels, strict=True):
            panel = data[(data["experiment"] == experiment) & (data["dataset"] == dataset)]
            for name, group in panel.groupby("series", sort=True):
                look = colours[name]
                line = group.groupby("epoch_1")["share"].agg(["mean", "std"]).fillna(0.0)
                ax.fill_between(line.index, line["mean"] - line["std"],
                                line["mean"] + line["std"], color=look.color, alpha=0.15,
                                linewidth=0)
                ax.plot(line.index, line["mean"], color=look.color, marker=look.marker,
                        markevery=max(1, len(line) // 8), markersize=3,
                        linestyle=SPACE_LINESTYLES.get(group["space"].iloc[0], "-"),
                        label=name)
            ax.set_title(f"{experiment}, {dataset_name(dataset)}")
            ax.set_xlabel("Search epoch")
            ax.set_ylabel("Param.-free ops in derived cell (%)")
            ax.set_ylim(-2, 102)
            _epoch_axis(ax, panel["epoch_1"])
        legend_outside(fig, axes, title="Mean over seeds, band ±1 sd")
    return fig


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 1 / 3600, "h"
    if seconds >= 120:
        return 1 / 60, "min"
    return 1.0, "s"


def plot_search_cost(df: pd.DataFrame, series: dict[str, Look] | None = None) -> Figure:
    """Search wall time per variant and space (bar: mean over seeds; dots: the seeds), one
    panel per experiment: wall times compare only between runs of one experiment (one
    machine, one load, one budget), so no axis holds two experiments."""
    data = runs(df)
    data = _named(data[data["status"] == "finished"].dropna(subset=["search_time_s"]))
    if data.empty:
        raise UsageError("no run recorded its search time")
    colours = series if series is not None else series_looks(df)
    scale, unit = _time_unit(float(data["search_time_s"].max()))
    data = data.assign(time=data["search_time_s"] * scale,
                       experiment=[experiment_of(p) for p in data["path"]])
    panels = sorted(data.groupby(["experiment", "dataset"]).groups)
    heights = [0.55 + 0.2 * data.loc[(data["experiment"] == e) & (data["dataset"] == d),
                                     "series"].nunique() for e, d in panels]
    with style():
        # the bars' names label the axis: a long variant name needs its width
        longest = max(len(str(x)) for x in data["series"])
        fig = Figure(figsize=(max(COLUMN_WIDTH * 1.5, 0.055 * longest + 3.6),
                              sum(heights) + 0.3), layout="constrained")
        axes = list(fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights).flat)
        for ax, (experiment, dataset) in zip(axes, panels, strict=True):
            panel = data[(data["experiment"] == experiment) & (data["dataset"] == dataset)]
            names = sorted(panel["series"].unique())
            for i, name in enumerate(names):
                times = panel.loc[panel["series"] == name, "time"]
                look = colours[name]
                ax.barh(i, times.mean(), color=look.color, alpha=0.6, height=0.7,
                        edgecolor="black", linewidth=0.5)
                ax.scatter(times, [i] * len(times), color="black", s=6, zorder=3,
                           marker=look.marker, linewidths=0)
            ax.set_yticks(range(len(names)), names)
            ax.set_ylim(len(names) - 0.5, -0.5)
            ax.set_title(f"{experiment}, {dataset_name(dataset)}", loc="left")
            ax.grid(axis="y", visible=False)
        axes[-1].set_xlabel(f"Search wall time ({unit}); bar: mean over seeds, dots: seeds")
    return fig


def plot_arch_weights(run_dir: Path, group: str | None = None,
                      experiment: str | None = None) -> Figure:
    """One panel per edge (rows: the node it feeds), one line per candidate op: how the
    architecture weights of one group (normal cell by default) moved from their start
    (epoch 0) over the epochs. Op, group and edge names come from the run folder; the title
    names the experiment (by default the folder holding the run), method, space, dataset and
    seed."""
    folder = RunFolder(run_dir).check()
    config = folder.config_dict()
    info = folder.info()
    name = group or (info.groups[0] if info.groups else "")
    if name not in info.groups:
        raise UsageError(f"no group {name!r} in {folder.name}; it has "
                         f"{', '.join(info.groups)}")
    g = info.groups.index(name)
    history = folder.arch()
    if not history:
        raise UsageError(f"{run_dir} has no architecture weights")
    try:
        weights = np.array([h.weights for h in history], dtype=float)  # (T, G, E, O)
    except ValueError:
        raise UsageError(f"{run_dir}: the architecture weights have uneven shapes") from None
    if weights.ndim != 4 or weights.shape[1:] != (len(info.groups), len(info.edges),
                                                  len(info.ops)):
        raise UsageError(f"{run_dir}: the architecture weights do not match run.json's layout")
    epochs = np.array([h.epoch for h in history]) + 1
    nodes = sorted({node for _, node in info.edges})
    by_node = {n: [i for i, (_, node) in enumerate(info.edges) if node == n] for n in nodes}
    cols = max(len(ids) for ids in by_node.values())
    by_op = op_looks(info.ops)  # by op name: an op has one look in every weights figure
    every = max(1, len(epochs) // 4)
    height = 1.3 * len(nodes) + 1.1
    with style():
        # A fixed grid, not constrained layout: with 20 panels, layout would cost more than
        # the drawing itself, and the geometry does not depend on the data.
        fig = Figure(figsize=(FULL_WIDTH, height))
        axes = fig.subplots(len(nodes), cols, sharex=True, sharey=True, squeeze=False,
                            gridspec_kw={"left": 0.08, "right": 0.99, "wspace": 0.08,
                                         "hspace": 0.45, "top": 1 - 0.62 / height,
                                         "bottom": 0.85 / height})
        for r, node in enumerate(nodes):
            edge_ids = by_node[node]
            for c in range(cols):
                ax = axes[r][c]
                if c >= len(edge_ids):
                    ax.set_visible(False)
                    continue
                e = edge_ids[c]
                for o, op in enumerate(info.ops):
                    look, dash = by_op[op]
                    # markers at staggered epochs: lines that coincide still show each op
                    ax.plot(epochs, weights[:, g, e, o], color=look.color, label=op,
                            linestyle=dash, marker=look.marker, markersize=3,
                            markevery=(o % every, every))
                ax.set_title(f"edge {info.edges[e][0]}→{node}")
                if c == 0:
                    ax.set_ylabel("Weight")
                if r == len(nodes) - 1:
                    ax.set_xlabel("Epoch (0: start)")
                _epoch_axis(ax, epochs)
                ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=3, integer=True))
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5),
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
        where = experiment if experiment is not None else folder.path.parent.name
        cell = f"{name} cell," if name in ("normal", "reduce", "reduction") else f"{name}:"
        dataset = info.dataset_id or str(config.get("dataset"))
        fig.suptitle(f"{where}: {method_name(str(config.get('method')))}, "
                     f"{config.get('space')} space, {dataset_name(dataset)}, seed "
                     f"{config.get('seed')}\n{cell} architecture weights per edge",
                     fontsize=8, y=1 - 0.06 / height, va="top")
    return fig


def make_plots(paths: Sequence[str | Path], kinds: Sequence[str] = KINDS,
               group: str | None = None, first_seed_only: bool = False) -> list[tuple[str,
                                                                                     Figure]]:
    """(file stem, figure) for every requested kind; arch-weights gives one per run
    (``first_seed_only``: the lowest seed of each method, space and dataset)."""
    for kind in kinds:
        if kind not in KINDS:
            raise UsageError(f"unknown plot kind {kind!r}; choose from {', '.join(KINDS)}")
    df = load_index(paths)
    look = series_looks(df)  # one mapping for the whole set: a series looks alike in all
    figures: list[tuple[str, Figure]] = []
    for kind in kinds:
        if kind == "acc-flops":
            figures.append((kind, plot_acc_cost(df, "macs", series=look)))
        elif kind == "acc-params":
            figures.append((kind, plot_acc_cost(df, "params", series=look)))
        elif kind == "inherited-acc-flops":
            figures.append((kind, plot_acc_cost(df, "macs", inherited=True, series=look)))
        elif kind == "param-free":
            figures.append((kind, plot_param_free(load_epochs(paths), series=look)))
        elif kind == "search-cost":
            figures.append((kind, plot_search_cost(df, series=look)))
        elif kind == "arch-weights":
            chosen = runs(df)
            if first_seed_only:
                chosen = chosen.sort_values("seed", kind="stable").drop_duplicates(
                    ["label", "space", "dataset"]).sort_values(["label", "space", "dataset"])
            repeated = set(chosen["run"][chosen["run"].duplicated()])
            for path, run in zip(chosen["path"], chosen["run"], strict=True):
                # two experiments may hold runs of one name: the experiment's name keeps
                # their figures apart
                stem = f"{Path(path).parent.name}-{run}" if run in repeated else run
                figures.append((f"arch-weights-{stem}", plot_arch_weights(Path(path), group)))
    return figures


#: what a figure folder records of how its images were drawn (build.json)
BUILD = "build.json"


def drawing_build() -> dict[str, str]:
    """The versions that decide an image's bytes: matplotlib draws it, fontTools subsets the
    fonts embedded in a PDF (a new fontTools release alone changes every PDF)."""
    import fontTools

    return {"matplotlib": mpl.__version__, "fonttools": fontTools.version}


def save_figure(fig: Figure, out_dir: Path, stem: str,
                formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``fig`` once per format, without timestamps; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with mpl.rc_context(_RC):
        for fmt in formats:
            if fmt not in FORMATS:
                raise UsageError(f"unknown image format {fmt!r}; choose from "
                                 f"{', '.join(FORMATS)}")
            path = out_dir / f"{stem}.{fmt}"
            tmp = out_dir / f".{stem}.tmp.{fmt}"
            fig.savefig(tmp, format=fmt, metadata=_METADATA[fmt])
            tmp.replace(path)
            written.append(path)
            # Keep the first format's layout for the others: the same geometry in every
            # file, and many-panel figures are not laid out again per format.
            fig.set_layout_engine("none")
    return written


__all__ = ["FORMATS", "KINDS", "find_runs", "make_plots", "pareto_front",
           "plot_acc_cost", "plot_arch_weights", "plot_param_free", "plot_search_cost",
           "save_figure", "series_looks", "series_name"]
