"""The figures of `nasbench reproduce claims` (one per claim that has data), from the
report's tables (nasbench_suite.experiments.claims.report.collect).

They draw through nasbench_suite.report.style like every other figure: a method keeps one
colour and marker in all of them (:data:`METHOD_LOOKS`), seeds are told apart by line style,
accuracies and gaps are in % (points), each figure shows one kind of accuracy and names its
split, and legends sit outside the data.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nasbench_suite.report.style import (
    COLUMN_WIDTH,
    integer_ticks,
    legend_outside,
    looks,
    method_name,
    style,
)

#: one look per method of the experiment, the same in each of its figures
METHOD_LOOKS = looks(("darts", "edas", "gold", "nse", "padnas"))
_SEED_DASHES = ("-", "--", ":", "-.")
_WIDTH = COLUMN_WIDTH + 1.0  # a column plus the legend beside it


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(_WIDTH, 2.4), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def plot_gaps(gaps: pd.DataFrame) -> Figure:
    """Supernet-to-derived gap per seed (marks) and its mean (bar), DARTS against EDAS."""
    methods = [m for m in ("darts", "edas") if m in set(gaps["method"])]
    with style():
        fig, ax = _figure("Inherited weights, score split", "",
                          "Gap, supernet to derived network (pp)")
        for i, method in enumerate(methods):
            values = gaps.loc[gaps["method"] == method, "gap"] * 100
            look = METHOD_LOOKS[method]
            ax.scatter([i] * len(values), values, color=look.color, marker=look.marker, s=18,
                       edgecolors="black", linewidths=0.3, zorder=3, label="seeds"
                       if i == 0 else "_seeds")
            ax.hlines(values.mean(), i - 0.25, i + 0.25, color="black", linewidth=1.0,
                      label="mean" if i == 0 else "_mean")
        ax.set_xticks(range(len(methods)), [method_name(m) for m in methods])
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.axhline(0.0, color="grey", linewidth=0.6)
        legend_outside(fig, [ax], sort=False)
    return fig


def plot_lines(frame: pd.DataFrame, x: str, y: str, method: str, title: str, xlabel: str,
               ylabel: str, scale: float = 1.0) -> Figure:
    """One line per seed (the method's colour, seeds by line style) over an integer axis
    (stages, rounds)."""
    look = METHOD_LOOKS[method]
    with style():
        fig, ax = _figure(title, xlabel, ylabel)
        for i, (seed, group) in enumerate(frame.groupby("seed", sort=True)):
            group = group.sort_values(x)
            ax.plot(group[x], group[y] * scale, color=look.color, marker=look.marker,
                    linestyle=_SEED_DASHES[i % len(_SEED_DASHES)],
                    label=f"{method_name(method)}, seed {seed}")
        integer_ticks(ax, "x")
        legend_outside(fig, [ax], sort=False)
    return fig


def plot_gold(gold: pd.DataFrame, column: str) -> Figure:
    """Each run's recorded architectures against FLOPs: one accuracy per figure
    (``scratch_acc``: trained from scratch, test split; ``inherited_acc``: the supernet's
    weights, score split)."""
    look = METHOD_LOOKS["gold"]
    scratch = column == "scratch_acc"
    with style():
        fig, ax = _figure("Trained from scratch, test split" if scratch
                          else "Inherited weights, score split", "FLOPs (M multiply-adds)",
                          "Test accuracy (%)" if scratch
                          else "Accuracy, inherited weights (%)")
        for i, (seed, group) in enumerate(gold.dropna(subset=[column]).groupby("seed")):
            group = group.sort_values("macs")
            ax.plot(group["macs"] / 1e6, group[column] * 100, color=look.color,
                    marker=look.marker, linestyle=_SEED_DASHES[i % len(_SEED_DASHES)],
                    label=f"GOLD-NAS, seed {seed}")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        legend_outside(fig, [ax], sort=False)
    return fig


def figures(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str, Figure]]:
    """(file stem, title, figure) of every claim with data."""
    out: list[tuple[str, str, Figure]] = []
    if not tables["gaps"].empty:
        out.append(("edas-gap", "EDAS and DARTS gaps (inherited weights, score split)",
                    plot_gaps(tables["gaps"])))
    if not tables["rankcorr"].empty:
        out.append(("padnas-tau", "PAD-NAS Kendall tau per stage",
                    plot_lines(tables["rankcorr"], "stage", "tau", "padnas",
                               "One-shot against stand-alone ranking", "Stage",
                               "Kendall tau")))
    nse = tables["nse"]
    if not nse.empty and nse["scratch_acc"].notna().any():
        frame = nse.assign(round=nse["round"] + 1)
        out.append(("nse-rounds", "NSE best-at-budget per round (trained from scratch, test "
                    "split)",
                    plot_lines(frame, "round", "scratch_acc", "nse",
                               "Trained from scratch, test split", "Round",
                               "Test accuracy (%)", scale=100.0)))
    gold = tables["gold"].dropna(subset=["macs"]) if not tables["gold"].empty else \
        tables["gold"]
    if not gold.empty:
        for column, stem, caption in (
                ("scratch_acc", "gold-series", "GOLD-NAS series trained from scratch (test "
                 "split)"),
                ("inherited_acc", "gold-series-inherited",
                 "GOLD-NAS series with inherited weights (score split)")):
            if gold[column].notna().any():
                out.append((stem, caption, plot_gold(gold, column)))
    return out
