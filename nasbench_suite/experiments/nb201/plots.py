"""The figures of `nasbench reproduce nb201`, from the tables of its report.

One accuracy kind per figure, its split and data set named in the title; every method keeps
one colour and one marker in every figure (:func:`style`, fixed by the method's place in
METHODS, not by which methods a folder holds, so two reports compare by eye); legends sit
outside the data. Lines are the mean over seeds, bands the seeds' min-max (with 2-3 seeds a
standard-deviation band would pretend to a spread that was never seen).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nasbench_suite.experiments.nb201.config import (
    METHODS,
    RANDOM_K_LINES,
    TAKEOVER_BAND,
    random_label,
)
from nasbench_suite.report.plots import FULL_WIDTH, _style

Figures = list[tuple[str, str, Figure]]
_MARKERS = ("o", "s", "^", "D", "v")
_TABLE = "NAS-Bench-201 CIFAR-10 validation (200 epochs, table)"


def style(method: str) -> dict[str, Any]:
    """The colour and marker of ``method`` in every figure."""
    i = METHODS.index(method)
    return {"color": sns.color_palette("colorblind", len(METHODS))[i], "marker": _MARKERS[i]}


def band(epochs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per arm and epoch done: the seeds' mean, min and max of ``column`` (the figure's
    data, written beside it)."""
    data = epochs.dropna(subset=[column]).assign(epochs_done=lambda f: f["epoch"] + 1)
    grouped = data.groupby(["method", "arm", "epochs_done"], sort=False)[column]
    out = grouped.agg(["mean", "min", "max", "count"]).reset_index()
    return out.rename(columns={"count": "seeds"})


def _lines(ax: Axes, data: pd.DataFrame, scale: float = 1.0) -> None:
    for (method, arm), line in data.groupby(["method", "arm"], sort=False):
        look = style(method)
        x = line["epochs_done"]
        ax.fill_between(x, line["min"] * scale, line["max"] * scale, color=look["color"],
                        alpha=0.18, linewidth=0)
        ax.plot(x, line["mean"] * scale, color=look["color"], marker=look["marker"],
                markevery=max(1, len(line) // 8), label=f"{arm} (mean, band min-max)")


def _legend_below(ax: Axes, ncol: int = 2) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, frameon=False)


def _hline(ax: Axes, y: float, text: str, linestyle: Any, color: str = "black") -> None:
    """A reference line, named in the legend (labels beside the axes collide when two
    references lie a point apart, as random search's k = 10 and k = 100 do)."""
    ax.axhline(y, color=color, linestyle=linestyle, linewidth=0.8, label=text)


def _epoch_axis(ax: Axes) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_truth_over_epochs(gt: pd.DataFrame, random: pd.DataFrame, all_skip: float) -> Figure:
    """The table's CIFAR-10 validation accuracy of each method's derived cell per epoch,
    with random search's expected best of k = 1, 10, 100 cells and the all-skip cell."""
    with _style():
        fig = Figure(figsize=(FULL_WIDTH, 3.6), layout="constrained")
        ax = fig.add_subplot()
        _lines(ax, gt)
        best = random.set_index("k")["expected_best"]
        for k, dash in zip(RANDOM_K_LINES, ("--", "-.", ":"), strict=True):
            _hline(ax, float(best[k]), f"{random_label(k)} ({best[k]:.2f})", dash)
        _hline(ax, all_skip, f"all-skip cell ({all_skip:.2f})", "-", "dimgrey")
        _epoch_axis(ax)
        ax.set_title(_TABLE + ": each method's derived cell per search epoch")
        ax.set_xlabel("search epochs done (0: the initialisation)")
        ax.set_ylabel("CIFAR-10 validation accuracy (%), table")
        _legend_below(ax)
    return fig


def plot_random_search(random: pd.DataFrame, finals: pd.DataFrame) -> Figure:
    """Random search's expected best against k, each method's final mean as a line: how
    many random cells a method's search is worth."""
    with _style():
        fig = Figure(figsize=(FULL_WIDTH, 3.2), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(random["k"], random["expected_best"], color="grey",
                label="random search: expected best of k cells")
        for _, row in finals.iterrows():
            look = style(row["method"])
            ax.axhline(row["mean"], color=look["color"], linestyle="--", linewidth=1.0)
            k = row["random_k"]
            if np.isfinite(k) and k >= 1:  # 0: below one random cell, off the curve
                ax.plot([k], [row["mean"]], color=look["color"], marker=look["marker"],
                        linestyle="none")
            ax.plot([], [], color=look["color"], marker=look["marker"], linestyle="--",
                    label=f"{row['arm']}: final cell, mean over seeds")
        ax.set_xscale("log")
        ax.set_title(_TABLE + ": random search against each method's final cell")
        ax.set_xlabel("k, cells drawn at random (without replacement)")
        ax.set_ylabel("CIFAR-10 validation accuracy (%), table")
        _legend_below(ax)
    return fig


def plot_shares(skip: pd.DataFrame, free: pd.DataFrame) -> Figure:
    """Skip share and parameter-free share of each method's derived cell per epoch."""
    with _style():
        fig = Figure(figsize=(FULL_WIDTH, 3.2), layout="constrained")
        left, right = fig.subplots(1, 2, sharey=True)
        for ax, data, what in ((left, skip, "skip connections"),
                               (right, free, "parameter-free ops")):
            _lines(ax, data)
            ax.set_title(f"share of {what} in the derived cell")
            ax.set_xlabel("search epochs done (0: the initialisation)")
            ax.set_ylim(-0.03, 1.03)
            _epoch_axis(ax)
        left.set_ylabel("share of the kept (non-none) ops")
        handles, labels = left.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    return fig


def plot_train_acc(train: pd.DataFrame, target: float, dataset: str) -> Figure:
    """The supernet's training accuracy per epoch, RobustDARTS's band and the target."""
    with _style():
        fig = Figure(figsize=(FULL_WIDTH, 3.4), layout="constrained")
        ax = fig.add_subplot()
        low, high = TAKEOVER_BAND
        ax.axhspan(low * 100, high * 100, color="grey", alpha=0.2, linewidth=0,
                   label=f"RobustDARTS: the skip takeover starts ({low:.0%}-{high:.0%})")
        _hline(ax, target * 100, f"the issue's target ({target:.0%})", "--")
        _epoch_axis(ax)
        _lines(ax, train, scale=100.0)
        ax.set_ylim(0, 100)
        ax.set_title(f"Supernet training accuracy on its weight-training split ({dataset}), "
                     "per search epoch")
        ax.set_xlabel("search epochs done")
        ax.set_ylabel("supernet training accuracy (%)")
        _legend_below(ax)
    return fig


def figures(gt: pd.DataFrame, random: pd.DataFrame, all_skip: float, finals: pd.DataFrame,
            skip: pd.DataFrame, free: pd.DataFrame, train: pd.DataFrame, target: float,
            dataset: str) -> Figures:
    """Every figure of the report there is data for, in report order."""
    out: Figures = [
        ("truth-over-epochs", _TABLE + " of each method's derived cell over the search, "
         "with random search", plot_truth_over_epochs(gt, random, all_skip)),
        ("random-search", _TABLE + ": how many random cells each method's final cell is "
         "worth", plot_random_search(random, finals)),
        ("shares-over-epochs", "Skip and parameter-free share of the derived cell over the "
         "search", plot_shares(skip, free))]
    if not train.empty:
        out.append(("supernet-train-acc", f"Supernet training accuracy ({dataset}) over the "
                    "search", plot_train_acc(train, target, dataset)))
    return out
