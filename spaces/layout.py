"""The architecture-variable layout that a space shows to the methods: groups x edges x ops."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from nasbench_suite.spaces.ops import ZERO


@dataclass(frozen=True)
class Edge:
    """Edge ``index`` feeds intermediate ``node`` from ``input`` (below the cell's input
    count: a cell input, e.g. 0 and 1 for the two previous cells of a DARTS cell)."""

    index: int
    node: int
    input: int


def cell_edges(nodes: int, inputs: int = 2) -> tuple[Edge, ...]:
    """Every intermediate node takes an edge from every earlier node: 2 + 3 + 4 + 5 = 14 for
    4 nodes after 2 inputs (DARTS), 1 + 2 + 3 = 6 for 3 nodes after 1 input (NAS-Bench-201).
    Intermediate nodes are numbered after the inputs: ``inputs .. inputs + nodes - 1``."""
    edges = []
    for k in range(nodes):
        for src in range(k + inputs):
            edges.append(Edge(len(edges), k + inputs, src))
    return tuple(edges)


def reduction_cells(layers: int) -> tuple[int, ...]:
    """Cells at one and two thirds of the depth halve the resolution (DARTS, GOLD-NAS)."""
    return (layers // 3, 2 * layers // 3)


@dataclass(frozen=True)
class ArchLayout:
    """Which architecture variables exist and which cells they drive.

    ``cell_groups[i]`` is the group whose variables drive cell ``i``; in the restricted
    space several cells share a group, in the relaxed space every cell is its own group.
    ``inputs``: the cell's input nodes (2 in DARTS's cell, 1 in NAS-Bench-201's).
    """

    groups: tuple[str, ...]
    group_reduction: tuple[bool, ...]
    ops: tuple[str, ...]
    nodes: int
    cell_groups: tuple[int, ...]
    inputs: int = 2

    @cached_property
    def edges(self) -> tuple[Edge, ...]:
        return cell_edges(self.nodes, self.inputs)

    @property
    def node_ids(self) -> range:
        """The intermediate nodes' ids, in order (each one's edges come from lower ids)."""
        return range(self.inputs, self.inputs + self.nodes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.groups), len(self.edges), len(self.ops))

    @property
    def layers(self) -> int:
        return len(self.cell_groups)

    def stride(self, group: int, edge: int) -> int:
        return 2 if self.group_reduction[group] and self.edges[edge].input < self.inputs else 1

    def node_edges(self, node: int) -> list[int]:
        return [e.index for e in self.edges if e.node == node]

    @cached_property
    def node_index(self) -> torch.Tensor:
        """Per edge, the index (0-based) of the intermediate node it feeds; for scatter sums."""
        return torch.tensor([e.node - self.inputs for e in self.edges])

    def zero_mask(self) -> torch.Tensor:
        """Bool (O,) marking the zero op, which is never computed."""
        return torch.tensor([op == ZERO for op in self.ops])

    def full_mask(self) -> torch.Tensor:
        """Every op active: the start of every search."""
        return torch.ones(self.shape, dtype=torch.bool)
