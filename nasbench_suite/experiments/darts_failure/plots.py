"""The figures of `nasbench reproduce darts-failure`, from the tables of its report.

:func:`figures` gives (file stem, caption, figure) for everything there is data for: one
trajectory figure per collapse indicator (one panel per search arm, one line per seed, the
DARTS-ES stop marked), the final parameter-free share per arm, the inherited-weight drop
beside the accuracy from scratch, and the GOLD-NAS series.
"""

from __future__ import annotations

import math

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from nasbench_suite.experiments.darts_failure.config import INDICATORS
from nasbench_suite.report.plots import COLUMN_WIDTH, FULL_WIDTH, _legend, _style, palette

Figures = list[tuple[str, str, Figure]]


def _arms(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["arm"]))


def plot_trajectory(traj: pd.DataFrame, trials: pd.DataFrame, column: str, label: str,
                    threshold: float | None = None) -> Figure | None:
    """``column`` over the search epochs: one panel per arm, one line per seed; the epoch
    where DARTS-ES stops (replayed on that search) marked by a dashed line."""
    data = traj.dropna(subset=[column])
    if data.empty:
        return None
    arms = _arms(data)
    stops = trials.dropna(subset=["stop_epoch"])
    cols = min(len(arms), 3)
    rows = math.ceil(len(arms) / cols)
    with _style():
        fig = Figure(figsize=(FULL_WIDTH, 2.1 * rows + 0.3), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
        for ax, arm in zip(axes.flat, arms, strict=False):
            panel = data[data["arm"] == arm]
            for seed, line in panel.groupby("seed", sort=True):
                ax.plot(line["epoch"] + 1, line[column], marker="o" if len(line) < 12 else None,
                        markersize=3, label=f"seed {seed}")
            # this arm's own DARTS-ES replay (report.arm_title: the same name, "DARTS-ES")
            es_arm = arm.replace("DARTS (", "DARTS-ES (", 1)
            for _, stop in stops[(stops["arm"] == es_arm) & (es_arm != arm)].iterrows():
                ax.axvline(stop["stop_epoch"], color="grey", linestyle="--", linewidth=0.8)
            if threshold is not None:
                ax.axhline(threshold, color="black", linestyle=":", linewidth=0.8)
            ax.set_title(arm)
            ax.set_xlabel("search epoch")
        for ax in axes[:, 0]:
            ax.set_ylabel(label)
        for ax in list(axes.flat)[len(arms):]:
            ax.set_visible(False)
        _legend(axes.flat[0], title=None, loc="best")
    return fig


def plot_param_free(trials: pd.DataFrame) -> Figure:
    """Share of parameter-free ops in the derived cells, per arm (bars: mean; dots: seeds)."""
    with _style():
        fig = Figure(figsize=(FULL_WIDTH, 0.45 * len(_arms(trials)) + 0.9),
                     layout="constrained")
        ax = fig.add_subplot()
        order, colours = _arms(trials), palette(trials["arm"])
        sns.barplot(data=trials, y="arm", x="param_free_share", hue="arm", order=order,
                    palette=colours, errorbar=None, alpha=0.5, legend=False, ax=ax)
        sns.stripplot(data=trials, y="arm", x="param_free_share", hue="arm", order=order,
                      palette=colours, legend=False, size=4, jitter=False, ax=ax)
        ax.set_xlim(0, 1)
        ax.set_xlabel("parameter-free share of the derived ops")
        ax.set_ylabel("")
    return fig


def plot_accuracy(trials: pd.DataFrame) -> Figure:
    """Left: the inherited-weight drop (scoring split); right: test accuracy trained from
    scratch against FLOPs."""
    with _style():
        fig = Figure(figsize=(FULL_WIDTH, 0.45 * len(_arms(trials)) + 1.6),
                     layout="constrained")
        left, right = fig.subplots(1, 2)
        order, colours = _arms(trials), palette(trials["arm"])
        drops = trials.dropna(subset=["drop"])
        if not drops.empty:
            sns.barplot(data=drops, y="arm", x="drop", hue="arm", order=_arms(drops),
                        palette=colours, errorbar=None, alpha=0.5, legend=False, ax=left)
            sns.stripplot(data=drops, y="arm", x="drop", hue="arm", order=_arms(drops),
                          palette=colours, legend=False, size=4, jitter=False, ax=left)
        left.set_xlabel("accuracy drop, supernet to derived\n(inherited weights, score split)")
        left.set_ylabel("")
        scratch = trials.dropna(subset=["scratch_acc"])
        if not scratch.empty:
            sns.scatterplot(data=scratch, x="mmacs", y="scratch_acc", hue="arm",
                            hue_order=order, palette=colours, style="arm", ax=right)
        right.set_xlabel("FLOPs of the derived network\n(M multiply-adds)")
        right.set_ylabel("test accuracy, trained from scratch")
        # Outside the panel: with six arms an inside legend hides points.
        _legend(right, title=None, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_series(series: pd.DataFrame) -> Figure | None:
    """A GOLD-NAS series: accuracy with inherited weights (score split) and from scratch
    (test split) against FLOPs."""
    if series.empty:
        return None
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.4), layout="constrained")
        ax = fig.add_subplot()
        for (arm, seed), points in series.groupby(["arm", "seed"], sort=True):
            points = points.sort_values("mmacs")
            ax.plot(points["mmacs"], points["scratch_acc"], marker="o",
                    label=f"{arm} s{seed}: from scratch (test)")
            ax.plot(points["mmacs"], points["inherited_acc"], marker="s", linestyle="--",
                    label=f"{arm} s{seed}: inherited (score split)")
        ax.set_xlabel("FLOPs (M multiply-adds)")
        ax.set_ylabel("accuracy")
        _legend(ax, fontsize=6)
    return fig


def figures(trials: pd.DataFrame, traj: pd.DataFrame, series: pd.DataFrame,
            threshold: float) -> Figures:
    """Every figure of the report there is data for, in report order."""
    out: Figures = []
    for column, label in INDICATORS:
        fig = plot_trajectory(traj, trials, column, label,
                              threshold if column == "param_free_share" else None)
        if fig is not None:
            out.append((f"trajectory-{column.replace('_', '-')}", f"{label} over the search",
                        fig))
    out.append(("param-free-share", "Parameter-free share of the derived cells",
                plot_param_free(trials)))
    out.append(("accuracy", "Inherited-weight drop and accuracy from scratch",
                plot_accuracy(trials)))
    fig = plot_series(series)
    if fig is not None:
        out.append(("gold-series", "GOLD-NAS series trained from scratch", fig))
    return out
