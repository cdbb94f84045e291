"""The one look of every figure: sizes, palette, markers, names in words, legends, % axes.

Every figure of the suite (``nasbench plot``, ``nasbench figures`` and the experiments'
reports) draws through this module, so that a reader can compare two figures by eye:

* a series (a method variant in a space, an experiment's arm) gets a colour *and* a marker
  from :func:`looks`; the mapping is built once per set of figures from every series the
  set can show, never from what one figure happens to hold, so a variant keeps its colour
  and marker in every figure of the set. The palette has 24 colours and the markers cycle
  with another period (11), so no two of the first 264 series look alike, and two series
  that differ in colour alone never sit next to each other in the order.
* datasets and splits are named in words (:func:`panel_title`: ``CIFAR-10 (10k subset),
  score split``), methods by their papers' names (:func:`method_name`);
* accuracies are in %, a y label names one kind of accuracy, never two;
* legends sit outside the data (:func:`legend_outside`), one per figure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

COLUMN_WIDTH = 3.4  # inches: one column of a two-column paper
FULL_WIDTH = 7.0

RC: dict[str, Any] = {
    "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8, "legend.fontsize": 7,
    "legend.title_fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "lines.linewidth": 1.2, "lines.markersize": 4, "figure.dpi": 100, "savefig.dpi": 200,
    "svg.hashsalt": "nasbench-suite", "svg.fonttype": "path", "pdf.fonttype": 42,
    "axes.titlepad": 4,
}

#: 24 colours that stay apart on screen and in print: seaborn's colour-blind palette, then
#: its dark variants' complements and a few more (no two neighbours alike)
PALETTE: tuple[str, ...] = (
    "#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494",
    "#ece133", "#56b4e9", "#023eff", "#8b2be2", "#1ac938", "#e8000b", "#9f4800", "#00d7ff",
    "#4a0f0f", "#006374", "#7d7d00", "#ff7c00", "#3c3c9c", "#a3005e", "#5b8c00", "#000000",
)
#: markers, a cycle of another length than the palette's (11 against 24)
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<", "p", ">", "h")
#: line styles by space, where one figure shows several spaces
SPACE_LINESTYLES = {"restricted": "-", "relaxed": "--", "nb201": ":"}

#: methods by the names their papers use
METHOD_NAMES = {"darts": "DARTS", "edas": "EDAS", "gold": "GOLD-NAS", "padnas": "PAD-NAS",
                "nse": "NSE", "random": "Random"}
#: datasets in words; a file dataset (``npz:STEM@HASH``) is named by its stem
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "digits": "digits (scikit-learn)",
                 "cifar10-10k": "CIFAR-10 (10k subset)", "imagenet16-120": "ImageNet16-120"}
SPLIT_NAMES = {"score": "score split", "test": "test split", "valid": "validation split",
               "val": "validation split", "train": "train split"}


@dataclass(frozen=True)
class Look:
    """How one series is drawn, in every figure of a set."""

    color: str
    marker: str


def style() -> ExitStack:
    """seaborn's paper look with our sizes, for the figures created inside the block."""
    stack = ExitStack()
    stack.enter_context(sns.axes_style("whitegrid"))
    stack.enter_context(mpl.rc_context(RC))
    return stack


def looks(keys: Iterable[str], fixed: Sequence[str] = ()) -> dict[str, Look]:
    """A colour and a marker per series key, by the keys' sorted order: give it every key
    the set of figures can show, and each figure of the set draws a key alike. Keys in
    ``fixed`` take the first places in its order whatever else is drawn (so two reports
    of one experiment draw an arm alike); other keys follow, sorted."""
    keys = set(keys)
    names = [*fixed, *sorted(keys - set(fixed))]
    return {name: Look(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)])
            for i, name in enumerate(names) if name in keys}


#: candidate ops of the suite's spaces (DARTS's order, then NAS-Bench-201's own): an op
#: keeps its colour, marker and dash in every architecture-weights figure
OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
       "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "nor_conv_1x1", "nor_conv_3x3")
#: op line dashes: ops whose weights are equal (NSE's and PAD-NAS's 0.5 / 0.5 pairs) draw on
#: top of each other, and a dash pattern per op keeps each of them visible
OP_DASHES: tuple[Any, ...] = ("-", (0, (4, 2)), (0, (1, 1.5)), (0, (5, 1.5, 1, 1.5)))


def op_looks(ops: Iterable[str]) -> dict[str, tuple[Look, Any]]:
    """(look, dash) per op, fixed by the op's place in :data:`OPS` (unknown ops after them,
    by name), never by which ops one space has."""
    order = [*OPS, *sorted(set(ops) - set(OPS))]
    return {op: (Look(PALETTE[order.index(op) % len(PALETTE)],
                      MARKERS[order.index(op) % len(MARKERS)]),
                 OP_DASHES[order.index(op) % len(OP_DASHES)]) for op in ops}


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def variant_name(method: str, variant: str = "") -> str:
    """A method variant in words: ``DARTS (epochs=10)``; the bare name if it has none."""
    return f"{method_name(method)} ({variant})" if variant else method_name(method)


def dataset_name(dataset: str) -> str:
    """``npz:cifar10-10k@6e009ad2dc4d`` -> ``CIFAR-10 (10k subset)``; an unknown name is
    kept, less the ``npz:`` prefix and content hash."""
    name = re.sub(r"^(npz|imagefolder):", "", str(dataset)).split("@", 1)[0]
    return DATASET_NAMES.get(name, name)


def split_name(split: str | None) -> str:
    return SPLIT_NAMES.get(str(split), f"{split} split") if split else ""


def panel_title(dataset: str, split: str | None = None) -> str:
    """``CIFAR-10 (10k subset), score split``: a panel's data in words."""
    words = split_name(split)
    return f"{dataset_name(dataset)}, {words}" if words else dataset_name(dataset)


def percent_axis(ax: Axes, axis: str = "y") -> None:
    """Plain numbers on a % axis (values already multiplied by 100)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def legend_outside(fig: Figure, axes: Iterable[Axes], title: str | None = None,
                   where: str = "right", ncol: int = 1, sort: bool = True) -> None:
    """One legend for the figure, outside every panel (constrained layout gives it room):
    the entries of all ``axes``, each label once, sorted (the order :func:`looks` assigns
    colours in) or, with ``sort=False``, in first-seen order."""
    entries: dict[str, Any] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            if not label.startswith("_"):
                entries.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if sort:
        entries = dict(sorted(entries.items()))
    if entries:
        loc = "outside right upper" if where == "right" else "outside lower center"
        fig.legend(list(entries.values()), list(entries), loc=loc, frameon=False,
                   title=title, ncol=ncol, alignment="left")


def integer_ticks(ax: Axes, axis: str = "x", nbins: int = 5) -> None:
    """A few whole-number ticks: narrow panels never overprint their labels."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(mpl.ticker.MaxNLocator(nbins=nbins, integer=True))


__all__ = ["COLUMN_WIDTH", "FULL_WIDTH", "MARKERS", "PALETTE", "RC", "Look", "dataset_name",
           "integer_ticks", "legend_outside", "looks", "method_name", "op_looks", "panel_title",
           "percent_axis", "split_name", "style", "variant_name"]
