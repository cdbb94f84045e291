"""The Genotype: a discrete architecture as plain data.

It is the only thing that passes from a search to evaluation, plots and other runs, so it is
deliberately free of tensors and modules and round-trips through JSON.

A DARTS cell has two input nodes (0 and 1: the outputs of the two previous cells) and
intermediate nodes 2, 3, ...; a NAS-Bench-201 cell has one input node (0) and nodes 1, 2, 3.
Each kept edge is ``(op, input_node, node)``. A node may receive any number of edges, and an
edge may appear once per op (the relaxed space keeps several ops on one edge).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from nasbench_suite.spaces.ops import PARAMETER_FREE


@dataclass(frozen=True)
class CellGenotype:
    """The kept ops of one cell type: ``edges`` is a tuple of ``(op, input_node, node)``."""

    edges: tuple[tuple[str, int, int], ...]
    concat: tuple[int, ...] = (2, 3, 4, 5)

    def inputs_of(self, node: int) -> list[tuple[str, int]]:
        return [(op, src) for op, src, dst in self.edges if dst == node]

    def check(self, nodes: int, name: str = "cell", inputs: int = 2,
              empty_nodes: bool = True) -> None:
        """Every edge and every output node fits a cell of ``inputs`` input nodes and
        ``nodes`` intermediate nodes (ids inputs .. inputs + nodes - 1, each fed from
        earlier nodes); with ``empty_nodes=False`` every intermediate node has an edge. Else
        a ValueError."""
        last = inputs + nodes - 1
        for op, src, dst in self.edges:
            if not inputs <= dst <= last or not 0 <= src < dst:
                raise ValueError(f"{name}: edge ({op}, {src}, {dst}) does not fit a "
                                 f"{nodes}-node cell with {inputs} input(s)")
        bad = [c for c in self.concat if not inputs <= c <= last]
        if bad or not self.concat:
            raise ValueError(f"{name}: concat {list(self.concat)} names nodes outside "
                             f"{inputs}..{last}")
        empty = sorted(set(range(inputs, last + 1)) - {dst for _, _, dst in self.edges})
        if empty and not empty_nodes:
            raise ValueError(f"{name}: node(s) {empty} have no input")

    def to_dict(self) -> dict:
        return {"edges": [list(e) for e in self.edges], "concat": list(self.concat)}

    @classmethod
    def from_dict(cls, data: dict) -> CellGenotype:
        edges = tuple((str(op), int(src), int(dst)) for op, src, dst in data["edges"])
        return cls(edges=edges, concat=tuple(int(c) for c in data.get("concat", (2, 3, 4, 5))))


@dataclass(frozen=True)
class Genotype:
    """A whole architecture: one :class:`CellGenotype` per group plus the cell -> group map.

    ``cell_groups`` is empty for spaces whose groups follow the DARTS rule (``normal`` for
    normal cells, ``reduce`` for reduction cells), so the same genotype builds networks of
    any depth. A space with one architecture per cell lists the group of every cell, which
    fixes the depth.
    """

    space: str
    groups: dict[str, CellGenotype]
    cell_groups: tuple[str, ...] = field(default=())

    def group_of(self, cell: int, reduction: bool) -> str:
        """The group of cell ``cell``: its own per-cell group, else the one group of a
        genotype whose every cell shares it (NAS-Bench-201's ``cell``), else DARTS's rule."""
        if self.cell_groups:
            return self.cell_groups[cell]
        if len(self.groups) == 1 and not {"normal", "reduce"} & set(self.groups):
            return next(iter(self.groups))
        return "reduce" if reduction else "normal"

    def check(self, nodes: int, inputs: int = 2, empty_nodes: bool = True) -> None:
        """Every group fits a cell of ``inputs`` inputs and ``nodes`` intermediate nodes
        (:meth:`CellGenotype.check`), and every per-cell group name is defined (a ValueError
        otherwise)."""
        for name, cell in self.groups.items():
            cell.check(nodes, f"group {name!r}", inputs, empty_nodes)
        missing = sorted(set(self.cell_groups) - set(self.groups))
        if missing:
            raise ValueError(f"cell_groups name undefined group(s) {missing}")

    def check_depth(self, layers: int) -> None:
        if self.cell_groups and len(self.cell_groups) != layers:
            raise ValueError(
                f"this {self.space} genotype has one architecture per cell for "
                f"{len(self.cell_groups)} cells; it cannot build {layers} cells")

    def ops(self, reduction: bool | None = None) -> list[str]:
        """Every kept op of every group (a group counts once, however many cells share it);
        of normal cells only with ``reduction=False``."""
        groups = self.normal_groups() if reduction is False else list(self.groups)
        return [op for g in groups for op, _, _ in self.groups[g].edges]

    def parameter_free_share(self, reduction: bool | None = None) -> float:
        """The share of parameter-free ops among the kept ops (of normal cells only with
        ``reduction=False``: a collapse shows there, while reduction cells keep pools by
        design; DARTS V2 is 0.25 in its normal cell, 0.625 over both)."""
        ops = self.ops(reduction)
        return sum(op in PARAMETER_FREE for op in ops) / max(len(ops), 1)

    def normal_groups(self) -> list[str]:
        """The groups of normal (not reduction) cells: ``normal``, or every per-cell group
        but those at one and two thirds of the depth."""
        if not self.cell_groups:
            return [g for g in self.groups if g != "reduce"]
        layers = len(self.cell_groups)
        reductions = (layers // 3, 2 * layers // 3)
        return list(dict.fromkeys(g for i, g in enumerate(self.cell_groups)
                                  if i not in reductions))

    def op_share(self, op: str, reduction: bool | None = None) -> float:
        """The share of ``op`` among the kept ops (of normal cells only with
        ``reduction=False``; RobustDARTS counts skip connections in normal cells)."""
        ops = self.ops(reduction)
        return sum(o == op for o in ops) / max(len(ops), 1)

    def to_dict(self) -> dict:
        return {
            "space": self.space,
            "groups": {name: cell.to_dict() for name, cell in self.groups.items()},
            "cell_groups": list(self.cell_groups),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Genotype:
        try:
            return cls(
                space=str(data["space"]),
                groups={str(k): CellGenotype.from_dict(v) for k, v in data["groups"].items()},
                cell_groups=tuple(str(g) for g in data.get("cell_groups", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a genotype: {exc!r}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        return cls.from_json(Path(path).read_text())


def darts_genotype(normal: list[tuple[str, int]], reduce: list[tuple[str, int]]) -> Genotype:
    """Convert the DARTS paper's notation (two ``(op, input)`` pairs per node) to a Genotype."""

    def cell(pairs: list[tuple[str, int]]) -> CellGenotype:
        return CellGenotype(tuple((op, src, 2 + i // 2) for i, (op, src) in enumerate(pairs)))

    return Genotype("restricted", {"normal": cell(normal), "reduce": cell(reduce)})


#: DARTS (2nd order) CIFAR-10 cell, Liu et al. 2019, as published in quark0/darts genotypes.py.
DARTS_V2 = darts_genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
)
