"""NAS-Bench-201's cell space (Dong and Yang, ICLR 2020), in the benchmark's own skeleton.

The cell: one input (node 0, the previous output), intermediate nodes 1, 2, 3, an edge from
every earlier node to every later one (6 edges), and node 3 alone as the output. Every edge
holds exactly one of five ops, ``none`` included, so the space has 5^6 = 15,625 cells; one
architecture (group ``cell``) is shared by every cell. A node whose edges are all ``none``
outputs zeros: that is a legal cell of the benchmark (the all-``none`` cell is in its table).

The skeleton (D-X-Y/AutoDL-Projects, ``TinyNetwork`` and its DARTS search model): a 3x3
conv stem to C channels plus BN; three stages of N cells at C, 2C and 4C; a residual block
(:class:`~nasbench_suite.spaces.macro.ResidualBlock`) between stages; BN, ReLU, global
average pool and a linear classifier. ``shape.layers`` is the number of cells, 3N (the
benchmark: C=16, N=5, 15 cells); ``shape.nodes`` and ``stem_multiplier`` do not apply (the
cell is the benchmark's). The search supernet uses non-affine BN in its cells (the
benchmark's DARTS), affine BN in the stem, the blocks and the head, and no BN after the
average pool (the benchmark's op has none). An auxiliary head, when a method asks for one,
reads the first cell of the last stage (DARTS's place: two thirds of the depth).

Derivation: per edge the strongest op of all five, ``none`` included (the benchmark
authors' DARTS genotype rule). A method that keeps several ops on one edge (GOLD-NAS) gets
the strongest of its kept ops per edge: the benchmark scores one op per edge.

Scores: the benchmark's table holds each cell trained at C=16, N=5 for 200 epochs
(nasbench_suite.report's ground truth, keyed by :func:`~nasbench_suite.spaces.nb201_arch.
genotype_to_arch`), whatever shape the search ran at.

Search shape on a CPU (the ``mini`` preset): one first-order DARTS epoch, ``nasbench run
--method darts --space nb201 --epochs 1 --threads 1``, measured on a 2-core machine shared
with four other agents (load average about 5) -- MINI_TIMINGS
"""

from __future__ import annotations

import math

import torch
from nasbench_suite.spaces.base import Space
from nasbench_suite.spaces.genotype import CellGenotype, Genotype
from nasbench_suite.spaces.layout import ArchLayout
from nasbench_suite.spaces.macro import Macro
from nasbench_suite.spaces.nb201_arch import NB201, NB201_GROUP, NB201_NODES, NB201_OPS
from nasbench_suite.spaces.ops import ZERO


def nb201_macro(channels: int, layers: int) -> Macro:
    """The benchmark's skeleton at C = ``channels`` with ``layers`` = 3N cells."""
    if layers < 3 or layers % 3:
        raise ValueError(f"layers must be 3N (three stages of N cells), got {layers}")
    n = layers // 3
    return Macro(stem_channels=channels,
                 cell_channels=tuple(channels * 2 ** (i // n) for i in range(layers)),
                 reductions=(), nodes=NB201_NODES, cell_inputs=1, output="last",
                 blocks=(n, 2 * n), head_bn=True, aux_index=2 * n, empty_nodes=True)


class Nb201Space(Space):
    name = NB201
    default_ops = NB201_OPS
    description = ("NAS-Bench-201 cell space: 1 shared cell, 1 input, 3 nodes, 6 edges, "
                   "5 ops (none included) in the benchmark's residual skeleton")
    derivation = "per edge the strongest op, none included; every edge kept"
    shared_groups = True
    inputs_per_node = None
    multi_op_edges = False
    complete_edges = True
    search_pool_bn = False

    def macro_for(self, channels: int, layers: int) -> Macro:
        return nb201_macro(channels, layers)

    def _layout(self) -> ArchLayout:
        return ArchLayout(groups=(NB201_GROUP,), group_reduction=(False,), ops=self.ops,
                          nodes=NB201_NODES, cell_groups=(0,) * self.shape.layers, inputs=1)

    def derive(self, scores: torch.Tensor, keep: torch.Tensor | None = None) -> Genotype:
        """Per edge the strongest op, ``none`` included; ``keep`` limits the candidates, and
        an edge with no candidate left holds ``none`` (a pruned edge contributes nothing)."""
        scores = scores.detach().cpu().to(torch.float64)
        if keep is not None:
            scores = scores.masked_fill(~keep.cpu(), -math.inf)
        best_score, best_op = scores[0].max(dim=-1)
        chosen = [(self.ops[int(best_op[e.index])], e) for e in self.layout.edges
                  if best_score[e.index] > -math.inf]
        edges = tuple((op, e.input, e.node) for op, e in chosen if op != ZERO)
        return Genotype(self.name, {NB201_GROUP: CellGenotype(edges, self.concat)})

    def log10_size(self, layers: int | None = None) -> float:
        """ops^edges: one op per edge, ``none`` included (5^6 = 15,625); depth-independent."""
        return len(self.layout.edges) * math.log10(len(self.ops))
