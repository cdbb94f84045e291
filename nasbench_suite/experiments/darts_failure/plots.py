"""The figures of `nasbench reproduce darts-failure`, from the tables of its report.

:func:`figures` gives (file stem, caption, figure) for everything there is data for: one
trajectory figure per collapse indicator (one panel per search arm, one line per seed, the
DARTS-ES stop marked), the final parameter-free share per arm, the inherited-weight drop,
the accuracy from scratch against FLOPs, and the GOLD-NAS series (from scratch and with
inherited weights, one figure each: a figure shows one kind of accuracy).

Every figure draws through nasbench_suite.report.style: an arm has one colour and marker in
all of them (:func:`arm_looks`, over every arm of the report), seeds are told apart by line
style, shares and accuracies are in %, legends sit outside the data.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nasbench_suite.experiments.darts_failure.arms import arm_order
from nasbench_suite.experiments.darts_failure.config import INDICATORS
from nasbench_suite.experiments.darts_failure.control import ALL_SKIP, DARTS_V2_LABEL
from nasbench_suite.report.style import (
    COLUMN_WIDTH,
    FULL_WIDTH,
    PALETTE,
    Look,
    integer_ticks,
    legend_outside,
    looks,
    style,
)

Figures = list[tuple[str, str, Figure]]

#: indicators drawn in % (the tables hold fractions), and each axis label with its unit
_PERCENT = frozenset({"param_free_share_normal", "param_free_share", "skip_share_normal",
                      "train_acc", "supernet_acc_score",
                      "derived_acc_score"})
AXIS_LABELS = {
    "param_free_share_normal": "Parameter-free ops in normal cells (%)",
    "param_free_share": "Parameter-free ops, all cells (%)",
    "skip_share_normal": "Skip connections in normal cells (%)",
    "train_acc": "Supernet training accuracy (%)",
    "train_loss": "Supernet training loss",
    "derived_mmacs": "Derived network FLOPs (M multiply-adds)",
    "hessian_eig": "Largest Hessian eigenvalue",
    "supernet_acc_score": "Supernet accuracy (%)",
    "derived_acc_score": "Derived network accuracy (%)",
    "edge_spread_median": "Median edge spread",
}
#: the split the inherited-weight indicators were measured on, for their panel titles
_SCORE_SPLIT = frozenset({"supernet_acc_score", "derived_acc_score"})
#: seeds by line style: the colour is the arm's, in every figure
_SEED_DASHES = ("-", "--", ":", "-.")


def _arms(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["arm"]))


def arm_looks(trials: pd.DataFrame) -> dict[str, Look]:
    """One colour and marker per arm, the same in every figure of every darts-failure
    report."""
    return looks(trials["arm"], fixed=arm_order())


def _bars(ax: Axes, data: pd.DataFrame, column: str, order: list[str],
          colours: dict[str, Look], scale: float, bars: bool = True) -> None:
    """A bar per arm (mean over seeds) with its seeds as dots, arms top to bottom; without
    ``bars`` the mean is a stroke (on an axis that does not start at 0 a bar's length
    means nothing)."""
    for i, arm in enumerate(order):
        values = data.loc[data["arm"] == arm, column].dropna() * scale
        look = colours[arm]
        if values.empty:
            continue
        if bars:
            ax.barh(i, values.mean(), color=look.color, alpha=0.45, height=0.7,
                    edgecolor=look.color, linewidth=0.8)
        else:
            ax.plot([values.mean()] * 2, [i - 0.35, i + 0.35], color=look.color, linewidth=2)
        ax.scatter(values, [i] * len(values), color=look.color, marker=look.marker, s=14,
                   edgecolors="black", linewidths=0.4, zorder=3)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)


def _arm_rows(arms: int, extra: float = 0.9) -> tuple[Figure, Axes]:
    """One full-width panel with a row per arm (:func:`_bars`), ``extra`` inches for its
    title, axis and legend."""
    fig = Figure(figsize=(FULL_WIDTH, 0.3 * arms + extra), layout="constrained")
    return fig, fig.add_subplot()


def plot_trajectory(traj: pd.DataFrame, trials: pd.DataFrame, column: str, label: str,
                    threshold: float | None = None,
                    colours: dict[str, Look] | None = None,
                    threshold_label: str = "collapse threshold") -> Figure | None:
    """``column`` over the search epochs: one panel per arm (in the arm's colour), one line
    per seed; the epoch where DARTS-ES stops (replayed on that search) marked by a dashed
    grey line, ``threshold`` (the collapse threshold, or the fit threshold on the training
    accuracy) by a dotted black one."""
    data = traj.dropna(subset=[column])
    if data.empty:
        return None
    colours = colours or arm_looks(trials)
    scale = 100.0 if column in _PERCENT else 1.0
    arms = _arms(data)
    stops = trials.dropna(subset=["stop_epoch"])
    cols = min(len(arms), 3)
    rows = math.ceil(len(arms) / cols)
    with style():
        fig = Figure(figsize=(FULL_WIDTH, 2.0 * rows + 0.5), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        for ax, arm in zip(axes.flat, arms, strict=False):
            panel = data[data["arm"] == arm]
            look = colours.get(arm, Look("black", "o"))
            for i, (seed, line) in enumerate(panel.groupby("seed", sort=True)):
                ax.plot(line["epoch"] + 1, line[column] * scale, color=look.color,
                        linestyle=_SEED_DASHES[i % len(_SEED_DASHES)],
                        marker=look.marker if len(line) < 12 else None, markersize=3,
                        label=f"seed {seed}")
            # this arm's own DARTS-ES replay (report.arm_title: the same name, "DARTS-ES")
            es_arm = arm.replace("DARTS (", "DARTS-ES (", 1)
            for _, stop in stops[(stops["arm"] == es_arm) & (es_arm != arm)].iterrows():
                ax.axvline(stop["stop_epoch"], color="grey", linestyle="--", linewidth=0.8,
                           label="DARTS-ES stops")
            if threshold is not None:
                ax.axhline(threshold * scale, color="black", linestyle=":", linewidth=0.8,
                           label=threshold_label)
            ax.set_title(textwrap.fill(arm, 32), fontsize="small")  # qualified names are long
            ax.set_xlabel("Search epoch")
            integer_ticks(ax, "x")
        for ax in axes[:, 0]:
            ax.set_ylabel(AXIS_LABELS.get(column, label))
        for ax in list(axes.flat)[len(arms):]:
            ax.set_visible(False)
        if column in _SCORE_SPLIT:  # the accuracy's kind and split, once for the figure
            fig.suptitle("Inherited weights, score split")
        _seed_legend(fig, list(axes.flat))
    return fig


def _seed_legend(fig: Figure, axes: list[Axes]) -> None:
    """The figure's legend outside the panels: seeds as black lines of their dash (the
    colour is each panel's arm), then the marker lines (DARTS-ES stop, threshold)."""
    from matplotlib.lines import Line2D

    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label.startswith("seed "):
                handle = Line2D([], [], color="black", linestyle=handle.get_linestyle())
            entries.setdefault(label, handle)
    fig.legend(list(entries.values()), list(entries), loc="outside right upper",
               frameon=False)


def plot_param_free(trials: pd.DataFrame, colours: dict[str, Look] | None = None,
                    threshold: float | None = None) -> Figure:
    """Share of parameter-free ops in the derived normal cells (the collapse indicator), per
    arm (bars: mean; dots: seeds), with the share a uniform random cell of the arm's ops is
    expected to have (a black tick: the level a collapse must rise above) and the collapse
    threshold."""
    colours = colours or arm_looks(trials)
    order = _arms(trials)
    with style():
        fig, ax = _arm_rows(len(order))
        _bars(ax, trials, "param_free_share_normal", order, colours, 100.0)
        if "param_free_chance" in trials:
            chance = trials.groupby("arm")["param_free_chance"].first()
            ax.scatter([chance[arm] * 100 for arm in order], range(len(order)), marker="|",
                       s=160, color="black", linewidths=1.5, zorder=2.5,
                       label="a uniform random cell")
        if threshold is not None:
            ax.axvline(threshold * 100, color="black", linestyle=":", linewidth=0.8,
                       label="collapse threshold")
        ax.set_xlim(0, 100)
        ax.set_title("Final derived cells (bar: mean over seeds; marks: seeds)", loc="right")
        ax.set_xlabel("Parameter-free ops in normal cells (%)")
        legend_outside(fig, [ax], where="below", ncol=2, sort=False)
    return fig


def plot_drop(trials: pd.DataFrame, colours: dict[str, Look] | None = None) -> Figure | None:
    """The inherited-weight drop per arm: supernet accuracy minus the derived network's,
    both with the supernet's weights, on the score split (bars: mean; dots: seeds)."""
    drops = trials.dropna(subset=["drop"])
    if drops.empty:
        return None
    colours = colours or arm_looks(trials)
    order = _arms(drops)
    with style():
        fig, ax = _arm_rows(len(order))
        _bars(ax, drops, "drop", order, colours, 100.0)
        ax.axvline(0.0, color="black", linewidth=0.6)
        ax.set_title("Inherited weights, score split; bar: mean over seeds, marks: seeds")
        ax.set_xlabel("Accuracy drop, supernet to derived network (pp)")
    return fig


def plot_accuracy(trials: pd.DataFrame, colours: dict[str, Look] | None = None
                  ) -> Figure | None:
    """Test accuracy of the derived networks trained from scratch against their FLOPs, one
    point per seed."""
    scratch = trials.dropna(subset=["scratch_acc"])
    if scratch.empty:
        return None
    colours = colours or arm_looks(trials)
    with style():
        arms = _arms(scratch)
        # the legend lists every arm: the figure grows with it (18 arms with --arms all)
        fig = Figure(figsize=(COLUMN_WIDTH + 2.2 if len(arms) <= 8 else FULL_WIDTH,
                              max(2.6, 0.19 * len(arms) + 0.5)), layout="constrained")
        ax = fig.add_subplot()
        for i, arm in enumerate(arms):
            points = scratch[scratch["arm"] == arm]
            look = colours[arm]
            # arms that derived the same cells (a remedy that never bit) share points:
            # hollow marks, each later arm's smaller, keep every arm visible
            ax.scatter(points["mmacs"], points["scratch_acc"] * 100, facecolors="none",
                       edgecolors=look.color, marker=look.marker,
                       s=max(12.0, 110.0 - 30.0 * i), linewidths=1.3, label=arm)
        ax.set_title("Trained from scratch, test split")
        ax.set_xlabel("Derived network, MFLOPs (mult-adds)")
        ax.set_ylabel("Test accuracy (%)")
        legend_outside(fig, [ax], sort=False)
    return fig


#: the protocol control's cells as bands behind the arms' accuracies: (cells, label, colour)
_CONTROL_BANDS = ((ALL_SKIP, "all-skip cells (control)", PALETTE[3]),
                  ("random", "random cells (control)", PALETTE[7]),
                  (DARTS_V2_LABEL, "DARTS V2 (control)", PALETTE[2]))


def plot_scratch_control(trials: pd.DataFrame, control: pd.DataFrame | None,
                         colours: dict[str, Look] | None = None) -> Figure | None:
    """Accuracy from scratch per arm (strokes: mean over seeds; marks: seeds) over the
    protocol control's bands (control.py): the range over seeds of the all-skip cells,
    the random cells and DARTS V2, both spaces together. An arm's cells can only be told
    apart from what the bands separate."""
    scratch = trials.dropna(subset=["scratch_acc"])
    if scratch.empty or control is None or control.empty:
        return None
    colours = colours or arm_looks(trials)
    order = _arms(scratch)
    with style():
        fig, ax = _arm_rows(len(order), 1.2)
        for cells, label, colour in _CONTROL_BANDS:
            acc = control.loc[control["cell"].str.startswith(cells), "test_acc"] * 100
            if len(acc):
                ax.axvspan(acc.min(), acc.max(), color=colour, alpha=0.18, linewidth=0,
                           label=label)
        _bars(ax, scratch, "scratch_acc", order, colours, 100.0, bars=False)
        low = min(scratch["scratch_acc"].min(), control["test_acc"].min()) * 100
        high = max(scratch["scratch_acc"].max(), control["test_acc"].max()) * 100
        ax.set_xlim(low - 1.0, high + 1.0)
        ax.set_title("Trained from scratch, test split (stroke: mean over seeds; marks: "
                     "seeds)", loc="right")
        ax.set_xlabel("Test accuracy (%)")
        legend_outside(fig, [ax], where="below", ncol=3, sort=False)
    return fig


def plot_series(series: pd.DataFrame, column: str,
                colours: dict[str, Look] | None = None) -> Figure | None:
    """A GOLD-NAS series: one accuracy (``scratch_acc``: from scratch, test split;
    ``inherited_acc``: inherited weights, score split) against FLOPs, one line per seed (the
    arm's colour, seeds by line style as in the trajectories)."""
    data = series.dropna(subset=[column])
    if data.empty:
        return None
    colours = colours or looks(data["arm"])
    seeds = sorted(data["seed"].unique())
    with style():
        fig = Figure(figsize=(COLUMN_WIDTH + 0.8, 2.4), layout="constrained")
        ax = fig.add_subplot()
        for (arm, seed), points in data.groupby(["arm", "seed"], sort=True):
            points = points.sort_values("mmacs")
            look = colours.get(arm, Look("black", "o"))
            ax.plot(points["mmacs"], points[column] * 100, color=look.color,
                    linestyle=_SEED_DASHES[seeds.index(seed) % len(_SEED_DASHES)],
                    marker=look.marker, label=f"{arm}, seed {seed}")
        if column == "scratch_acc":
            ax.set_title("Trained from scratch, test split")
            ax.set_ylabel("Test accuracy (%)")
        else:
            ax.set_title("Inherited weights, score split")
            ax.set_ylabel("Accuracy, inherited weights (%)")
        ax.set_xlabel("FLOPs (M multiply-adds)")
        legend_outside(fig, [ax], sort=False)
    return fig


def figures(trials: pd.DataFrame, traj: pd.DataFrame, series: pd.DataFrame,
            threshold: float, fit_threshold: float,
            control: pd.DataFrame | None = None) -> Figures:
    """Every figure of the report there is data for, in report order: the collapse
    threshold on the collapse indicator's trajectory, the fit threshold (the regime where
    collapse is known to happen) on the training accuracy's."""
    colours = arm_looks(trials)
    lines = {"param_free_share_normal": (threshold, "collapse threshold"),
             "train_acc": (fit_threshold, "fit threshold")}
    out: Figures = []
    for column, label in INDICATORS:
        line, line_label = lines.get(column, (None, ""))
        fig = plot_trajectory(traj, trials, column, label, line, colours, line_label)
        if fig is not None:
            out.append((f"trajectory-{column.replace('_', '-')}", f"{label} over the search",
                        fig))
    out.append(("param-free-share", "Parameter-free share of the derived normal cells",
                plot_param_free(trials, colours, threshold)))
    fig = plot_drop(trials, colours)
    if fig is not None:
        out.append(("inherited-drop", "Inherited-weight accuracy drop, supernet to derived "
                    "network (score split)", fig))
    fig = plot_accuracy(trials, colours)
    if fig is not None:
        out.append(("accuracy", "Test accuracy trained from scratch against FLOPs", fig))
    fig = plot_scratch_control(trials, control, colours)
    if fig is not None:
        out.append(("scratch-vs-control", "Test accuracy trained from scratch beside the "
                    "protocol control", fig))
    for column, stem, caption in (
            ("scratch_acc", "gold-series", "GOLD-NAS series trained from scratch (test split)"),
            ("inherited_acc", "gold-series-inherited",
             "GOLD-NAS series with inherited weights (score split)")):
        fig = plot_series(series, column, colours)
        if fig is not None:
            out.append((stem, caption, fig))
    return out
