"""Cells drawn as pictures (`nasbench draw`), as DARTS's own code draws them (its
visualize.py, with graphviz), here with matplotlib alone: the suite already depends on it, and
graphviz's `dot` binary is not a Python package a user gets with pip.

One panel per cell group: input nodes (c_{k-2}, c_{k-1}; NAS-Bench-201's single c_{k-1}) on
the left, intermediate nodes left to right, the cell's output c_{k} on the right. Each kept
(input, node) pair is one arrow labelled with its op, or with all its ops, one per line,
where the relaxed space keeps several on one edge. Arrows into the output (the concatenated
nodes) carry no label. Every node box and every edge label carries a ``gid`` (``node:...``,
``edge:SRC->DST``) so that tests can read the figure's structure without looking at pixels.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from nasbench_suite.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from nasbench_suite.spaces.genotype import CellGenotype, Genotype

#: node box colours: inputs, intermediate nodes, the output (DARTS's palette)
_COLOURS = {"input": "#a6d96a", "node": "#abd9e9", "output": "#fdae61"}
#: points of text: readable when a panel is printed a column wide
_FONT = 10
_PANEL = (6.0, 4.6)
#: data units: the column of intermediate nodes, the output beyond it, the nodes' spacing,
#: the inputs' spacing
_COLUMN = 5.0
_OUT = 4.8
_GAP = 1.8
_GAP_IN = 2.2


def cell_inputs(genotype: Genotype) -> int:
    """The input nodes of the genotype's cells: one in NAS-Bench-201, two in DARTS cells."""
    return 1 if genotype.space == "nb201" else 2


def input_name(node: int, inputs: int) -> str:
    """An input node's name as DARTS's plots write it: c_{k-1} the previous cell."""
    return f"c_{{k-{inputs - node}}}"


def groups_to_draw(genotype: Genotype, group: str | None = None) -> list[str]:
    """Every group of the genotype, or the one named (a UsageError for an unknown name)."""
    if group is None:
        return list(genotype.groups)
    if group not in genotype.groups:
        raise UsageError(f"no cell group {group!r} in this genotype; choose from "
                         f"{', '.join(genotype.groups)}")
    return [group]


def draw_genotype(genotype: Genotype, group: str | None = None) -> Figure:
    """A figure with one panel per group (a grid of three columns for the relaxed space's
    per-cell groups)."""
    from matplotlib.figure import Figure

    names = groups_to_draw(genotype, group)
    cols = min(len(names), 3)
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(_PANEL[0] * cols, _PANEL[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    inputs = cell_inputs(genotype)
    for ax, name in zip(axes, names, strict=False):
        shared = [i for i, g in enumerate(genotype.cell_groups) if g == name]
        where = f" (cells {', '.join(map(str, shared))})" if len(shared) > 1 else ""
        draw_cell(ax, genotype.groups[name], inputs, f"{name}{where}")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return fig


def draw_cell(ax: Axes, cell: CellGenotype, inputs: int, title: str) -> None:
    """One cell on ``ax``: node boxes, one labelled arrow per (input, node) pair.

    The layout is DARTS's left to right: inputs on the left, the intermediate nodes in one
    column, the output on the right. An arrow between two nodes of the column bends to the
    right, more the more nodes it skips, so that it passes beside the nodes in between."""
    last = max([*cell.concat, *(dst for _, _, dst in cell.edges)], default=inputs)
    middle = list(range(inputs, last + 1))
    pos: dict[int | str, tuple[float, float]] = {
        i: (0.0, _GAP_IN * ((inputs - 1) / 2 - i)) for i in range(inputs)}
    for j, node in enumerate(middle):
        pos[node] = (_COLUMN, _GAP * ((len(middle) - 1) / 2 - j))
    pos["out"] = (_COLUMN + _OUT, 0.0)
    labels: dict[int | str, tuple[str, str]] = {
        i: (f"${input_name(i, inputs)}$", "input") for i in range(inputs)}
    labels.update({n: (str(n), "node") for n in middle})
    labels["out"] = ("$c_{k}$", "output")
    for key, (text, kind) in labels.items():
        x, y = pos[key]
        ax.text(x, y, text, ha="center", va="center", fontsize=_FONT + 2, zorder=3,
                gid=f"node:{key}", bbox=dict(boxstyle="round,pad=0.4", fc=_COLOURS[kind],
                                             ec="black", lw=0.8))
    ops: dict[tuple[int, int], list[str]] = {}
    for op, src, dst in cell.edges:
        ops.setdefault((src, dst), []).append(op)
    for (src, dst), names in sorted(ops.items()):
        within = src >= inputs  # both ends in the column
        rad = -min(0.35 + 0.1 * (dst - src), 0.65) if within else 0.0
        _arrow(ax, pos[src], pos[dst], rad)
        # Labels of arrows from the two inputs sit at different distances along them (the
        # upper input's nearer its start), so that labels of arrows into one node, and of
        # arrows out of one input, stay apart; a column arc's label starts at its bulge.
        t = 0.5 if within or inputs == 1 else (0.36 if src == 0 else 0.76)
        lx, ly = _on_arc(pos[src], pos[dst], rad, t)
        ax.text(lx + (0.1 if within else 0.0), ly, "\n".join(names), linespacing=1.0,
                ha="left" if within else "center", va="center", fontsize=_FONT,
                zorder=4, gid=f"edge:{src}->{dst}",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    for node in cell.concat:
        _arrow(ax, pos[node], pos["out"], 0.0, colour="grey")
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(-0.7, _COLUMN + _OUT + 0.7)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.set_aspect("equal")  # arcs are drawn in screen space: label positions need it
    ax.set_title(title, fontsize=_FONT + 2)
    ax.set_axis_off()


def _on_arc(a: tuple[float, float], b: tuple[float, float], rad: float,
            t: float) -> tuple[float, float]:
    """The point at ``t`` of matplotlib's ``arc3,rad=RAD`` curve from a to b: a quadratic
    Bezier whose control point is the midpoint moved by rad * (dy, -dx) (equal aspect)."""
    (x1, y1), (x2, y2) = a, b
    cx = (x1 + x2) / 2 + rad * (y2 - y1)
    cy = (y1 + y2) / 2 - rad * (x2 - x1)
    u = 1 - t
    return (u * u * x1 + 2 * u * t * cx + t * t * x2,
            u * u * y1 + 2 * u * t * cy + t * t * y2)


def _arrow(ax: Axes, a: tuple[float, float], b: tuple[float, float], rad: float,
           colour: str = "black") -> None:
    ax.annotate("", xy=b, xytext=a, zorder=2,
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.0, shrinkA=15, shrinkB=15,
                                connectionstyle=f"arc3,rad={rad}"))


def save_figure(fig: Figure, out: Path, stem: str, svg: bool = False) -> list[Path]:
    """PNG (for screens) and PDF (for papers), and SVG if asked; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in ("png", "pdf", *(("svg",) if svg else ())):
        path = out / f"{stem}.{ext}"
        fig.savefig(path, dpi=200 if ext == "png" else None)
        written.append(path)
    return written
