"""Figures from run folders: accuracy against cost with Pareto fronts, architecture weights
over epochs, the share of parameter-free ops over epochs, and search cost.

Figures are sized for a paper column (3.4 in wide, 8 pt text; the per-edge weights figure
spans two columns), drawn on matplotlib's Agg canvas without pyplot (no global figure
state, no display needed), with one colour per method label across all figures. Saved
files carry no timestamps (PNG without the Software tag, PDF without CreationDate, SVG
without Date and with a fixed hash salt), so the same inputs give the same bytes.
"""

from __future__ import annotations

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

from nasbench_suite import rundir
from nasbench_suite.errors import UsageError
from nasbench_suite.index import find_run_dirs, load_epochs, load_index, runs

KINDS = ("acc-flops", "acc-params", "arch-weights", "param-free", "search-cost")
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
    """Points not dominated in (higher ``y``, lower ``x``), by ascending ``x``.

    A point is dominated when another has ``x`` no larger and ``y`` no smaller, one of them
    strictly; of exact duplicates one is kept.
    """
    ordered = points.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False],
                                                       kind="stable")
    keep, best = [], -np.inf
    for idx, value in zip(ordered.index, ordered[y], strict=True):
        if value > best:
            keep.append(idx)
            best = value
    return ordered.loc[keep]


def _epoch_axis(ax: Axes, epochs: Iterable[int]) -> None:
    """Whole epochs only; a run of one epoch gets a readable axis around its one point."""
    values = sorted(set(int(e) for e in epochs))
    if len(values) <= 10:
        ax.set_xticks(values)
    else:
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    if len(values) == 1:
        ax.set_xlim(values[0] - 1, values[0] + 1)


def _legend(ax: Axes, **kwargs: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, frameon=False, **kwargs)


def plot_acc_cost(df: pd.DataFrame, x: str = "macs") -> Figure:
    """Accuracy of every derived (and recorded) architecture against its cost, with each
    method's Pareto front as a step line (one per space when there are several)."""
    if x not in ("macs", "params"):
        raise ValueError(f"x must be macs or params, got {x!r}")
    points = df[df["status"] == "finished"].dropna(subset=["acc", x])
    if points.empty:
        raise UsageError(f"no run has both accuracy and {x}")
    colours = palette(df["label"])
    spaces = sorted(points["space"].unique())
    scale = 1e-6
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.6), layout="constrained")
        ax = fig.add_subplot()
        for (label, space), group in points.groupby(["label", "space"], sort=True):
            marker = _MARKERS[spaces.index(space) % len(_MARKERS)]
            name = label if len(spaces) == 1 else f"{label}, {space}"
            ax.scatter(group[x] * scale, group["acc"] * 100, color=colours[label], s=12,
                       marker=marker, alpha=0.5, linewidths=0)
            front = pareto_front(group, x)
            ax.step(front[x] * scale, front["acc"] * 100, where="post", color=colours[label],
                    linestyle=_LINESTYLES[spaces.index(space) % len(_LINESTYLES)],
                    marker=marker, markersize=4, label=name)
        values = points[x] * scale
        if values.min() > 0 and values.max() / values.min() > 20:
            ax.set_xscale("log")
        ax.set_xlabel("FLOPs (M multiply-adds)" if x == "macs" else "Parameters (M)")
        ax.set_ylabel("Held-out accuracy (%)")
        _legend(ax, title="Pareto front per method", loc="best")
    return fig


def plot_param_free(epochs: pd.DataFrame) -> Figure:
    """Share of parameter-free ops (skip, pooling, none) in the derived cell, per epoch:
    mean over seeds with a ±1 sd band; DARTS's collapse shows as a rising line."""
    data = epochs.dropna(subset=["param_free_share"]).assign(
        epoch_1=lambda d: d["epoch"] + 1, share=lambda d: d["param_free_share"] * 100,
        method=lambda d: d["label"])
    if data.empty:
        raise UsageError("no run logged param_free_share")
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.4), layout="constrained")
        ax = fig.add_subplot()
        one_space = data["space"].nunique() == 1
        sns.lineplot(data=data, x="epoch_1", y="share", hue="method",
                     style=None if one_space else "space", palette=palette(data["label"]),
                     errorbar="sd", marker="o", hue_order=sorted(data["label"].unique()),
                     style_order=None if one_space else sorted(data["space"].unique()), ax=ax)
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Parameter-free ops in cell (%)")
        ax.set_ylim(-2, 102)
        _epoch_axis(ax, data["epoch_1"])
        _legend(ax, title="method" if one_space else None, loc="best")
    return fig


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 1 / 3600, "h"
    if seconds >= 120:
        return 1 / 60, "min"
    return 1.0, "s"


def plot_search_cost(df: pd.DataFrame) -> Figure:
    """Search wall time per method (mean over seeds, ±1 sd), one bar per space."""
    data = runs(df)
    data = data[data["status"] == "finished"].dropna(subset=["search_time_s"])
    if data.empty:
        raise UsageError("no run recorded its search time")
    scale, unit = _time_unit(float(data["search_time_s"].max()))
    data = data.assign(time=data["search_time_s"] * scale)
    labels = sorted(data["label"].unique())
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.4), layout="constrained")
        ax = fig.add_subplot()
        one_space = data["space"].nunique() == 1
        sns.barplot(data=data, x="label", y="time", hue="label" if one_space else "space",
                    order=labels, hue_order=labels if one_space else sorted(
                        data["space"].unique()), errorbar="sd",
                    palette=palette(df["label"]) if one_space else "Greys", legend=not one_space,
                    edgecolor="black", linewidth=0.6, capsize=0.15, err_kws={"linewidth": 0.8},
                    ax=ax)
        ax.set_xlabel("Method")
        ax.set_ylabel(f"Search time ({unit})")
        if max(len(s) for s in labels) > 8:
            for tick in ax.get_xticklabels():
                tick.set_rotation(25)
                tick.set_horizontalalignment("right")
        _legend(ax, title="space", loc="best")
    return fig


def _layout_of(config: dict[str, Any]) -> Any:
    """The run's architecture layout (group and op names, edges), from its config alone."""
    from spaces import SPACES, NetShape, create_space

    space = config.get("space")
    if space not in SPACES:
        raise UsageError(f"unknown space {space!r} in a run's config")
    ops = tuple(config["ops"]) if config.get("ops") else None
    shape = NetShape(int(config["channels"]), int(config["layers"]), 1, 10, 8,
                     int(config.get("nodes", 4)))
    return create_space(space, shape, ops).layout


def plot_arch_weights(run_dir: Path, group: str | None = None) -> Figure:
    """One panel per edge (rows: the node it feeds), one line per candidate op: how the
    architecture weights of one group (normal cell by default) moved over the epochs."""
    config = rundir.read_run_config(run_dir)
    layout = _layout_of(config)
    name = group or layout.groups[0]
    if name not in layout.groups:
        raise UsageError(f"no group {name!r} in {run_dir.name}; it has "
                         f"{', '.join(layout.groups)}")
    g = layout.groups.index(name)
    history = rundir.read_jsonl(run_dir / rundir.ARCH)
    if not history:
        raise UsageError(f"{run_dir} has no architecture weights ({rundir.ARCH})")
    weights = np.array([h["weights"] for h in history], dtype=float)  # (T, G, E, O)
    epochs = np.array([h["epoch"] for h in history]) + 1
    nodes = sorted({e.node for e in layout.edges})
    cols = max(len(layout.node_edges(n)) for n in nodes)
    colours = sns.color_palette("tab10", len(layout.ops))
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
            edge_ids = layout.node_edges(node)
            for c in range(cols):
                ax = axes[r][c]
                if c >= len(edge_ids):
                    ax.set_visible(False)
                    continue
                edge = layout.edges[edge_ids[c]]
                for o, op in enumerate(layout.ops):
                    ax.plot(epochs, weights[:, g, edge.index, o], color=colours[o], label=op,
                            marker="o" if len(epochs) < 3 else None)
                ax.set_title(f"edge {edge.input}→{edge.node}")
                if c == 0:
                    ax.set_ylabel("Weight")
                if r == len(nodes) - 1:
                    ax.set_xlabel("Epoch")
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
        elif kind == "param-free":
            figures.append((kind, plot_param_free(load_epochs(paths))))
        elif kind == "search-cost":
            figures.append((kind, plot_search_cost(df)))
        elif kind == "arch-weights":
            chosen = runs(df)
            if first_seed_only:
                chosen = chosen.sort_values("seed", kind="stable").drop_duplicates(
                    ["label", "space", "dataset"]).sort_values(["label", "space", "dataset"])
            for path, run in zip(chosen["path"], chosen["run"], strict=True):
                figures.append((f"arch-weights-{run}", plot_arch_weights(Path(path), group)))
    return figures


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


__all__ = ["FORMATS", "KINDS", "find_run_dirs", "make_plots", "pareto_front",
           "plot_acc_cost", "plot_arch_weights", "plot_param_free", "plot_search_cost",
           "save_figure"]
