"""The figures of `nasbench reproduce darts-failure`, from the tables of its report.

Each takes the per-trial table, the per-epoch eigenvalues and the evaluated GOLD-NAS series
(:func:`nasbench_suite.reproduce.collect`) and returns a Figure, or None when it has nothing
to draw. Seeds are points; bars and lines are means over seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from nasbench_suite.plots import COLUMN_WIDTH, FULL_WIDTH, _legend, _style, palette

Plot = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], Figure | None]


def _arms(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["arm"]))


def plot_eigenvalue(df: pd.DataFrame, eig: pd.DataFrame, series: pd.DataFrame) -> Figure | None:
    """Dominant Hessian eigenvalue over epochs: mean over seeds, band of one std."""
    if eig.empty:
        return None
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.4), layout="constrained")
        ax = fig.add_subplot()
        sns.lineplot(data=eig, x="epoch", y="eigenvalue", hue="arm", hue_order=_arms(df),
                     palette=palette(df["arm"]), errorbar="sd", marker="o", ax=ax)
        ax.set_xlabel("search epoch")
        ax.set_ylabel("dominant eigenvalue of\nthe Hessian w.r.t. alphas")
        _legend(ax, title=None)
    return fig


def plot_param_free(df: pd.DataFrame, eig: pd.DataFrame, series: pd.DataFrame) -> Figure:
    """Share of parameter-free ops in the derived cells, per method/space."""
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.2), layout="constrained")
        ax = fig.add_subplot()
        order, colours = _arms(df), palette(df["arm"])
        sns.barplot(data=df, y="arm", x="param_free_share", hue="arm", order=order,
                    palette=colours, errorbar=None, alpha=0.5, legend=False, ax=ax)
        sns.stripplot(data=df, y="arm", x="param_free_share", hue="arm", order=order,
                      palette=colours, legend=False, size=4, jitter=False, ax=ax)
        ax.set_xlim(0, 1)
        ax.set_xlabel("parameter-free share of the derived ops")
        ax.set_ylabel("")
    return fig


def plot_accuracy(df: pd.DataFrame, eig: pd.DataFrame, series: pd.DataFrame) -> Figure:
    """Left: the inherited-weight drop; right: accuracy from scratch against FLOPs."""
    with _style():
        fig = Figure(figsize=(FULL_WIDTH, 2.4), layout="constrained")
        left, right = fig.subplots(1, 2)
        order, colours = _arms(df), palette(df["arm"])
        sns.barplot(data=df, y="arm", x="drop", hue="arm", order=order, palette=colours,
                    errorbar=None, alpha=0.5, legend=False, ax=left)
        sns.stripplot(data=df, y="arm", x="drop", hue="arm", order=order, palette=colours,
                      legend=False, size=4, jitter=False, ax=left)
        left.set_xlabel("accuracy drop, supernet to derived (inherited weights)")
        left.set_ylabel("")
        scratch = df.dropna(subset=["scratch_acc"])
        if not scratch.empty:
            sns.scatterplot(data=scratch, x="mmacs", y="scratch_acc", hue="arm",
                            hue_order=order, palette=colours, style="arm", ax=right)
        right.set_xlabel("FLOPs of the derived network (M multiply-adds)")
        right.set_ylabel("test accuracy, trained from scratch")
        _legend(right, title=None)
    return fig


def plot_series(df: pd.DataFrame, eig: pd.DataFrame, series: pd.DataFrame) -> Figure | None:
    """A GOLD-NAS series: accuracy with inherited weights and from scratch against FLOPs."""
    if series.empty:
        return None
    with _style():
        fig = Figure(figsize=(COLUMN_WIDTH, 2.4), layout="constrained")
        ax = fig.add_subplot()
        for (arm, seed), points in series.groupby(["arm", "seed"], sort=True):
            points = points.sort_values("mmacs")
            ax.plot(points["mmacs"], points["scratch_acc"], marker="o",
                    label=f"{arm} s{seed}: from scratch")
            ax.plot(points["mmacs"], points["inherited_acc"], marker="s", linestyle="--",
                    label=f"{arm} s{seed}: inherited")
        ax.set_xlabel("FLOPs (M multiply-adds)")
        ax.set_ylabel("test accuracy")
        _legend(ax)
    return fig


#: report figure stem -> (caption, plot)
FIGURES: dict[str, tuple[str, Plot]] = {
    "eigenvalue": ("Dominant Hessian eigenvalue over the search", plot_eigenvalue),
    "param-free-share": ("Parameter-free share of the derived cells", plot_param_free),
    "accuracy": ("Inherited-weight drop and accuracy from scratch", plot_accuracy),
    "gold-series": ("GOLD-NAS series trained from scratch", plot_series),
}
