"""Figures from run folders: accuracy against cost with Pareto fronts, architecture weights
over epochs, the share of parameter-free ops over epochs, and search cost.

Comparison figures have one panel per dataset, and an axis shows one kind of accuracy:
trained from scratch (test split) where an experiment trained the runs' architectures, else
with inherited weights (on the split the axis names); ``inherited-acc-flops`` always shows
the latter, as its own figure.

Figures are sized for a paper column (3.4 in wide, 8 pt text; the per-edge weights figure
spans two columns), drawn on matplotlib's Agg canvas without pyplot (no global figure
state, no display needed), with one colour per method label across all figures. Saved
files carry no timestamps (PNG without the Software tag, PDF without CreationDate, SVG
without Date and with a fixed hash salt), so the same inputs give the same bytes.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nasbench_suite.errors import UsageError
from nasbench_suite.methods.training import pareto_front as kit_pareto
from nasbench_suite.store.index import load_epochs, load_index, runs
from nasbench_suite.store.runfolder import RunFolder, find_runs

KINDS = ("acc-flops", "acc-params", "inherited-acc-flops", "arch-weights", "param-free",
         "search-cost")
FORMATS = ("png", "pdf", "svg")
COLUMN_WIDTH = 3.4  # inches: one column of a two-column paper
FULL_WIDTH = 7.0

_RC: dict[str, Any] = {
    "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8, "legend.fontsize": 7,
    "legend.title_fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "lines.linewidth": 1.2, "lines.markersize": 4, "figure.dpi": 100, "savefig.dpi": 200,
    "svg.hashsalt": "nasbench-suite", "svg.fonttype": "path", "pdf.fonttype": 42,
    "axes.titlepad": 4,
}
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
}
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")


def _style() -> ExitStack:
    """seaborn's paper look with our sizes, for the figures created inside the block."""
    stack = ExitStack()
    stack.enter_context(sns.axes_style("whitegrid"))
    stack.enter_context(mpl.rc_context(_RC))
    return stack


def palette(labels: Iterable[str]) -> dict[str, Any]:
    """One colour per method label, in sorted order, the same in every figure of a set."""
    names = sorted(set(labels))
    return dict(zip(names, sns.color_palette("colorblind", max(len(names), 1)), strict=False))


def pareto_front(points: pd.DataFrame, x: str, y: str = "acc") -> pd.DataFrame:
    """Points not dominated in (higher ``y``, lower ``x``), by ascending ``x`` (the training
    kit's Pareto helper; of exact duplicates one is drawn)."""
    data = points.dropna(subset=[x, y])
    front = data.iloc[kit_pareto(list(data[y]), list(data[x]))]
    return front.drop_duplicates(subset=[x, y]).sort_values([x, y], ascending=[True, False],
                                                            kind="stable")


def _epoch_axis(ax: Axes, epochs: Iterable[int]) -> None:
    """Whole epochs only; a run of one epoch gets a readable axis around its one point."""
    values = sorted(set(int(e) for e in epochs))
    if len(values) <= 10:
        ax.set_xticks(values)
    else:
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    if len(values) == 1:
        ax.set_xlim(values[0] - 1, values[0] + 1)


def _grid(n: int) -> tuple[int, int]:
    """Columns and rows for ``n`` panels, two per row: a page column holds two readably."""
    return min(n, 2), math.ceil(n / 2)


def _panels_with_legends(n: int, height: float, legend_lines: int
                         ) -> tuple[Figure, list[Axes], list[Axes]]:
    """``n`` panels, two per row, each with an empty axes below it that holds its legend
    (``legend_lines`` lines tall): a legend of many variants would cover the data inside the
    panel, and one hung below it is not given room by the layout."""
    cols, rows = _grid(n)
    below = 0.3 + 0.15 * legend_lines
    fig = Figure(figsize=(COLUMN_WIDTH * cols, (height + below) * rows), layout="constrained")
    grid = fig.subplots(2 * rows, cols, squeeze=False, height_ratios=[height, below] * rows)
    axes = [grid[2 * (i // cols), i % cols] for i in range(rows * cols)]
    holders = [grid[2 * (i // cols) + 1, i % cols] for i in range(rows * cols)]
    for ax in holders:
        ax.set_axis_off()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n], holders[:n]


#: legend labels wrap at this many characters (variants name their hyper-parameters)
LEGEND_WIDTH = 40


def _wrap(label: str) -> str:
    return textwrap.fill(label, LEGEND_WIDTH)


def _lines(label: str) -> int:
    """How many lines ``label`` takes in a legend."""
    return _wrap(label).count("\n") + 1


def _legend_below(ax: Axes, holder: Axes, **kwargs: Any) -> None:
    """``ax``'s legend (wrapped labels, no frame) drawn in ``holder``, the axes below it."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        holder.legend(handles, [_wrap(label) for label in labels], frameon=False,
                      loc="upper center", fontsize="small", **kwargs)


def _legend(ax: Axes, **kwargs: Any) -> None:
    """The axes' legend without a frame, long labels (variants name their hyper-parameters)
    wrapped so that they never run over the panels."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, [_wrap(label) for label in labels], frameon=False,
                  **kwargs)


#: y-axis labels of the accuracies a figure can show
ACC_LABELS = {
    "scratch_acc": "Test accuracy, trained from scratch (%)",
    "acc": "Accuracy, inherited weights, {split} split (%)",
}


def accuracy_column(points: pd.DataFrame, inherited: bool = False) -> str:
    """Which accuracy a panel shows: from scratch where any of its runs was trained from
    scratch (the number that compares architectures), else with inherited weights; never
    both on one axis."""
    if not inherited and "scratch_acc" in points and points["scratch_acc"].notna().any():
        return "scratch_acc"
    return "acc"


def _readable_log_axis(ax: Axes, values: pd.Series) -> None:
    """A log axis with a few plainly labelled ticks (1, 2, 5 per decade) and no minor
    labels, so that labels never overprint each other."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(mpl.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def plot_acc_cost(df: pd.DataFrame, x: str = "macs", inherited: bool = False) -> Figure:
    """Accuracy of every derived (and recorded) architecture against its cost, one panel per
    dataset, with each method's Pareto front as a step line (one per space when there are
    several). The y axis is one kind of accuracy per panel (:func:`accuracy_column`)."""
    if x not in ("macs", "params"):
        raise ValueError(f"x must be macs or params, got {x!r}")
    finished = df[df["status"] == "finished"]
    datasets = sorted(finished["dataset"].dropna().unique())
    if not datasets:
        raise UsageError("no finished run to plot")
    colours = palette(df["label"])
    spaces = sorted(finished["space"].unique())
    scale = 1e-6
    with _style():
        def legend_lines(dataset: str) -> int:  # one entry per (label, space) drawn
            pairs = finished.loc[finished["dataset"] == dataset, ["label", "space"]]
            return sum(_lines(label if len(spaces) == 1 else f"{label}, {space}")
                       for label, space in pairs.drop_duplicates().itertuples(index=False))

        lines = max(legend_lines(d) for d in datasets)
        fig, panels, holders = _panels_with_legends(len(datasets), 2.6, lines)
        drawn = 0
        for ax, holder, dataset in zip(panels, holders, datasets, strict=True):
            panel = finished[finished["dataset"] == dataset]
            y = accuracy_column(panel, inherited)
            points = panel.dropna(subset=[y, x])
            ax.set_title(f"dataset: {dataset}")
            split = ", ".join(sorted(points["acc_split"].dropna().astype(str).unique())) \
                if "acc_split" in points else "?"
            ax.set_ylabel(ACC_LABELS[y].format(split=split or "?"))
            ax.set_xlabel("FLOPs (M multiply-adds)" if x == "macs" else "Parameters (M)")
            if points.empty:
                continue
            drawn += 1
            for (label, space), group in points.groupby(["label", "space"], sort=True):
                marker = _MARKERS[spaces.index(space) % len(_MARKERS)]
                name = label if len(spaces) == 1 else f"{label}, {space}"
                ax.scatter(group[x] * scale, group[y] * 100, color=colours[label], s=12,
                           marker=marker, alpha=0.5, linewidths=0)
                front = pareto_front(group, x, y)
                ax.step(front[x] * scale, front[y] * 100, where="post", color=colours[label],
                        linestyle=_LINESTYLES[spaces.index(space) % len(_LINESTYLES)],
                        marker=marker, markersize=4, label=name)
            values = points[x] * scale
            if values.min() > 0 and values.max() / values.min() > 20:
                _readable_log_axis(ax, values)
            _legend_below(ax, holder, title="Pareto front per method")
        if not drawn:
            raise UsageError(f"no run has both an accuracy and {x}")
    return fig


def plot_param_free(epochs: pd.DataFrame) -> Figure:
    """Share of parameter-free ops (skip, pooling, none) in the derived cell, per epoch, one
    panel per dataset: mean over seeds with a ±1 sd band; DARTS's collapse shows as a rising
    line."""
    data = epochs.dropna(subset=["param_free_share"]).assign(
        epoch_1=lambda d: d["epoch"] + 1, share=lambda d: d["param_free_share"] * 100,
        method=lambda d: d["label"])
    if data.empty:
        raise UsageError("no run logged param_free_share")
    datasets = sorted(data["dataset"].unique())

    def legend_lines(panel: pd.DataFrame) -> int:  # labels, wrapped; plus space entries
        lines = sum(_lines(label) for label in panel["label"].unique())
        return lines if panel["space"].nunique() == 1 else lines + panel["space"].nunique() + 2

    lines = max(legend_lines(data[data["dataset"] == d]) for d in datasets)
    with _style():
        fig, axes, holders = _panels_with_legends(len(datasets), 2.6, lines)
        for ax, holder, dataset in zip(axes, holders, datasets, strict=True):
            panel = data[data["dataset"] == dataset]
            one_space = panel["space"].nunique() == 1
            sns.lineplot(data=panel, x="epoch_1", y="share", hue="method",
                         style=None if one_space else "space", palette=palette(data["label"]),
                         errorbar="sd", marker="o", hue_order=sorted(panel["label"].unique()),
                         style_order=None if one_space else sorted(panel["space"].unique()),
                         ax=ax)
            ax.set_title(f"dataset: {dataset}")
            ax.set_xlabel("Epoch")
            ax.set_ylabel("Parameter-free ops in cell (%)")
            ax.set_ylim(-2, 102)
            _epoch_axis(ax, panel["epoch_1"])
            _legend_below(ax, holder, title="method" if one_space else None)
    return fig


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 1 / 3600, "h"
    if seconds >= 120:
        return 1 / 60, "min"
    return 1.0, "s"


def plot_search_cost(df: pd.DataFrame) -> Figure:
    """Search wall time per method (mean over seeds, ±1 sd), one bar per space, one panel
    per dataset."""
    data = runs(df)
    data = data[data["status"] == "finished"].dropna(subset=["search_time_s"])
    if data.empty:
        raise UsageError("no run recorded its search time")
    scale, unit = _time_unit(float(data["search_time_s"].max()))
    data = data.assign(time=data["search_time_s"] * scale)
    datasets = sorted(data["dataset"].unique())
    # horizontal bars, one panel per row: variant labels are long ("darts (max_train_
    # images=5000)") and must be read whole, not rotated under the axis and clipped
    wrapped = {label: textwrap.fill(label, 34) for label in data["label"].unique()}
    heights = [0.9 + sum(0.18 + 0.17 * wrapped[label].count("\n") + 0.17 for label in
                         data.loc[data["dataset"] == d, "label"].unique()) for d in datasets]
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH * 2, sum(heights)), layout="constrained")
        axes = list(fig.subplots(len(datasets), 1, squeeze=False, height_ratios=heights).flat)
        for ax, dataset in zip(axes, datasets, strict=True):
            panel = data[data["dataset"] == dataset]
            labels = sorted(panel["label"].unique())
            one_space = panel["space"].nunique() == 1
            sns.barplot(data=panel, y="label", x="time", hue="label" if one_space else "space",
                        order=labels, hue_order=labels if one_space else sorted(
                            panel["space"].unique()), errorbar="sd", orient="h",
                        palette=palette(df["label"]) if one_space else "Greys",
                        legend=not one_space, edgecolor="black", linewidth=0.6, capsize=0.15,
                        err_kws={"linewidth": 0.8}, ax=ax)
            ax.set_yticks(range(len(labels)), [wrapped[label] for label in labels])
            ax.set_title(f"dataset: {dataset}")
            ax.set_ylabel("Method")
            ax.set_xlabel(f"Search time ({unit})")
            _legend(ax, title="space", loc="best")
    return fig


def plot_arch_weights(run_dir: Path, group: str | None = None) -> Figure:
    """One panel per edge (rows: the node it feeds), one line per candidate op: how the
    architecture weights of one group (normal cell by default) moved from their start
    (epoch 0) over the epochs. Op, group and edge names come from the run folder."""
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
    colours = sns.color_palette("tab10", len(info.ops))
    height = 1.3 * len(nodes) + 1.0
    with _style():
        # A fixed grid, not constrained layout: with 20 panels, layout would cost more than
        # the drawing itself, and the geometry does not depend on the data.
        fig = Figure(figsize=(FULL_WIDTH, height))
        axes = fig.subplots(len(nodes), cols, sharex=True, sharey=True, squeeze=False,
                            gridspec_kw={"left": 0.08, "right": 0.99, "wspace": 0.08,
                                         "hspace": 0.45, "top": 1 - 0.45 / height,
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
                    ax.plot(epochs, weights[:, g, e, o], color=colours[o], label=op,
                            marker="o" if len(epochs) < 3 else None)
                ax.set_title(f"edge {info.edges[e][0]}→{node}")
                if c == 0:
                    ax.set_ylabel("Weight")
                if r == len(nodes) - 1:
                    ax.set_xlabel("Epoch (0: start)")
                _epoch_axis(ax, epochs)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5),
                   frameon=False, bbox_to_anchor=(0.5, 0.0))
        fig.suptitle(f"{config.get('method')} on {config.get('space')}, seed "
                     f"{config.get('seed')}: {name} architecture weights", fontsize=8,
                     y=1 - 0.08 / height, va="top")
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
    figures: list[tuple[str, Figure]] = []
    for kind in kinds:
        if kind == "acc-flops":
            figures.append((kind, plot_acc_cost(df, "macs")))
        elif kind == "acc-params":
            figures.append((kind, plot_acc_cost(df, "params")))
        elif kind == "inherited-acc-flops":
            figures.append((kind, plot_acc_cost(df, "macs", inherited=True)))
        elif kind == "param-free":
            figures.append((kind, plot_param_free(load_epochs(paths))))
        elif kind == "search-cost":
            figures.append((kind, plot_search_cost(df)))
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
           "save_figure"]
