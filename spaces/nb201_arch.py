"""NAS-Bench-201's own notation for its cells: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

Dong and Yang (ICLR 2020) name a cell by the op on each of its six edges: node 1 takes
op(node 0); node 2 sums op(node 0) and op(node 1); node 3, the cell's output, sums op(node 0),
op(node 1) and op(node 2). Every edge holds exactly one of five ops, ``none`` included, so the
space has 5^6 = 15,625 cells. This module only reads and writes that notation; the space
(spaces/nb201.py) turns it into a Genotype and the ground-truth tables are keyed by it.
"""

from __future__ import annotations

from nasbench_suite.spaces.genotype import CellGenotype, Genotype

#: the space's name, and its one architecture group (every cell shares it)
NB201 = "nb201"
NB201_GROUP = "cell"

#: the five candidate ops, in the benchmark's order
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                              "avg_pool_3x3")
#: the cell's intermediate nodes after its input node 0; the last one is the cell's output
NB201_NODES = 3
#: the six edges as (input node, node), in the order of the arch string
NB201_EDGES: tuple[tuple[int, int], ...] = tuple(
    (src, dst) for dst in range(1, NB201_NODES + 1) for src in range(dst))


def parse_arch(text: str) -> tuple[str, ...]:
    """The six ops of an arch string, in :data:`NB201_EDGES` order; ValueError if ``text``
    is not a cell of the space (wrong shape, an unknown op, an input out of order)."""
    if not isinstance(text, str):
        raise ValueError(f"an arch string is text, got {type(text).__name__}")
    nodes = text.strip().split("+")
    if len(nodes) != NB201_NODES:
        raise ValueError(f"not a NAS-Bench-201 cell: {text!r} has {len(nodes)} node(s), "
                         f"expected {NB201_NODES} ('|op~0|+|op~0|op~1|+|op~0|op~1|op~2|')")
    ops: list[str] = []
    for dst, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"not a NAS-Bench-201 cell: node {dst} {node!r} is not '|...|'")
        items = node[1:-1].split("|")
        if len(items) != dst:
            raise ValueError(f"not a NAS-Bench-201 cell: node {dst} has {len(items)} "
                             f"input(s), expected {dst}")
        for src, item in enumerate(items):
            op, sep, index = item.partition("~")
            if not sep or index != str(src):
                raise ValueError(f"not a NAS-Bench-201 cell: {item!r} on node {dst} should "
                                 f"read 'op~{src}'")
            if op not in NB201_OPS:
                raise ValueError(f"not a NAS-Bench-201 cell: unknown op {op!r}; the space's "
                                 f"ops are {', '.join(NB201_OPS)}")
            ops.append(op)
    return tuple(ops)


def format_arch(ops: tuple[str, ...] | list[str]) -> str:
    """The arch string of six ops given in :data:`NB201_EDGES` order."""
    if len(ops) != len(NB201_EDGES):
        raise ValueError(f"a NAS-Bench-201 cell has {len(NB201_EDGES)} edges, got {len(ops)}")
    unknown = [op for op in ops if op not in NB201_OPS]
    if unknown:
        raise ValueError(f"unknown op(s) {unknown}; the space's ops are {', '.join(NB201_OPS)}")
    nodes: list[list[str]] = [[] for _ in range(NB201_NODES)]
    for op, (src, dst) in zip(ops, NB201_EDGES, strict=True):
        nodes[dst - 1].append(f"{op}~{src}")
    return "+".join("|" + "|".join(node) + "|" for node in nodes)


def arch_to_genotype(text: str) -> Genotype:
    """The Genotype of an arch string: space ``nb201``, one group ``cell`` shared by every
    cell, nodes numbered as the benchmark numbers them (input 0, then 1, 2, 3), the output
    is node 3 alone, and a ``none`` edge is left out (it contributes nothing)."""
    edges = tuple((op, src, dst) for op, (src, dst) in zip(parse_arch(text), NB201_EDGES,
                                                            strict=True) if op != "none")
    return Genotype(NB201, {NB201_GROUP: CellGenotype(edges, (NB201_NODES,))})


def genotype_to_arch(genotype: Genotype) -> str:
    """The arch string of an ``nb201`` genotype; ValueError for any other genotype (another
    space, several ops on one edge, an edge that is not one of the cell's six)."""
    if genotype.space != NB201 or set(genotype.groups) != {NB201_GROUP}:
        raise ValueError(f"not a NAS-Bench-201 cell: a {genotype.space!r} genotype with "
                         f"groups {sorted(genotype.groups)}")
    ops = dict.fromkeys(NB201_EDGES, "none")
    for op, src, dst in genotype.groups[NB201_GROUP].edges:
        if (src, dst) not in ops:
            raise ValueError(f"not a NAS-Bench-201 cell: edge ({op}, {src}, {dst})")
        if ops[(src, dst)] != "none":
            raise ValueError(f"not a NAS-Bench-201 cell: edge {src}->{dst} holds "
                             f"{ops[(src, dst)]} and {op}")
        ops[(src, dst)] = op
    return format_arch(tuple(ops.values()))
