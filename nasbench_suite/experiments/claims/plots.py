"""The figures of `nasbench reproduce claims` (one per claim that has data), from the
report's tables (nasbench_suite.experiments.claims.report.collect)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def plot_gaps(gaps: pd.DataFrame) -> Any:
    """Supernet-to-derived gap per seed, DARTS against EDAS."""
    fig, ax = _axes("gap: supernet as searched - derived", "method", "gap (scoring split)")
    methods = [m for m in ("darts", "edas") if m in set(gaps["method"])]
    for i, method in enumerate(methods):
        values = gaps[gaps["method"] == method]["gap"]
        ax.scatter([i] * len(values), values, s=20)
        ax.hlines(values.mean(), i - 0.2, i + 0.2, color="black")
    ax.set_xticks(range(len(methods)), [m.upper() for m in methods])
    ax.axhline(0.0, color="grey", linewidth=0.5)
    fig.tight_layout()
    return fig


def plot_lines(frame: pd.DataFrame, x: str, y: str, title: str, xlabel: str,
               ylabel: str) -> Any:
    """One line per seed over an integer axis (stages, rounds)."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _axes(title, xlabel, ylabel)
    for seed, group in frame.groupby("seed"):
        group = group.sort_values(x)
        ax.plot(group[x], group[y], marker="o", label=f"seed {seed}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_gold(gold: pd.DataFrame) -> Any:
    """Each run's recorded architectures: accuracy from scratch (test split, solid) and with
    the supernet's weights (scoring split, dotted), one colour per seed."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _axes("GOLD-NAS series", "M multiply-adds", "accuracy")
    for i, (seed, group) in enumerate(gold.groupby("seed")):
        group = group.sort_values("macs")
        colour = f"C{i}"
        ax.plot(group["macs"] / 1e6, group["scratch_acc"], marker="o", color=colour,
                label=f"seed {seed}, from scratch (test split)")
        ax.plot(group["macs"] / 1e6, group["inherited_acc"], marker="x", linestyle=":",
                color=colour, label=f"seed {seed}, inherited (scoring split)")
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def figures(tables: dict[str, pd.DataFrame]) -> list[tuple[str, str, Any]]:
    """(file stem, title, figure) of every claim with data."""
    out = []
    if not tables["gaps"].empty:
        out.append(("edas-gap", "EDAS and DARTS gaps", plot_gaps(tables["gaps"])))
    if not tables["rankcorr"].empty:
        out.append(("padnas-tau", "PAD-NAS Kendall tau per stage",
                    plot_lines(tables["rankcorr"], "stage", "tau", "PAD-NAS rank correlation",
                               "stage", "Kendall tau")))
    nse = tables["nse"]
    if not nse.empty and nse["scratch_acc"].notna().any():
        frame = nse.assign(round=nse["round"] + 1)
        out.append(("nse-rounds", "NSE best-at-budget per round",
                    plot_lines(frame, "round", "scratch_acc", "NSE best at budget", "round",
                               "accuracy from scratch (test split)")))
    gold = tables["gold"].dropna(subset=["macs"]) if not tables["gold"].empty else \
        tables["gold"]
    if not gold.empty:
        out.append(("gold-series", "GOLD-NAS series", plot_gold(gold)))
    return out
