"""The restricted DARTS cell space (Liu et al., ICLR 2019).

Two architectures, ``normal`` and ``reduce``, each shared by every cell of its kind; 8 ops
including the zero op; a derived cell keeps the best non-zero op of each edge and the two
strongest edges of each node.
"""

from __future__ import annotations

import math

import torch
from nasbench_suite.spaces.base import Space
from nasbench_suite.spaces.genotype import CellGenotype, Genotype
from nasbench_suite.spaces.layout import ArchLayout, reduction_cells
from nasbench_suite.spaces.ops import DARTS_OPS


class RestrictedSpace(Space):
    name = "restricted"
    default_ops = DARTS_OPS
    description = "DARTS cell space: 2 shared cell types, 14 edges, 8 ops, top-2 inputs per node"
    derivation = "per edge the best op but none; per node the 2 strongest edges"
    shared_groups = True
    inputs_per_node = 2
    multi_op_edges = False

    def _layout(self) -> ArchLayout:
        layers = self.shape.layers
        reductions = reduction_cells(layers)
        return ArchLayout(groups=("normal", "reduce"), group_reduction=(False, True),
                          ops=self.ops, nodes=self.shape.nodes,
                          cell_groups=tuple(int(i in reductions) for i in range(layers)))

    def derive(self, scores: torch.Tensor, keep: torch.Tensor | None = None) -> Genotype:
        """DARTS's rule: per edge the best op other than ``none``; per node the 2 edges whose
        best op is strongest. ``keep`` removes pruned ops from the candidates."""
        scores = scores.detach().cpu().to(torch.float64).clone()
        allowed = torch.zeros(len(self.ops), dtype=torch.bool)
        allowed[self.nonzero_ops] = True
        candidates = allowed.expand_as(scores).clone()
        if keep is not None:
            candidates &= keep.cpu()
        scores[~candidates] = -math.inf
        groups = {}
        for g, name in enumerate(self.layout.groups):
            best_score, best_op = scores[g].max(dim=-1)
            edges = []
            for node in range(2, 2 + self.shape.nodes):
                ids = [e for e in self.layout.node_edges(node) if best_score[e] > -math.inf]
                if not ids:
                    raise ValueError(f"group {name!r}: node {node} has no candidate op left")
                ids.sort(key=lambda e: -float(best_score[e]))
                for e in sorted(ids[: self.inputs_per_node]):
                    edges.append((self.ops[int(best_op[e])], self.layout.edges[e].input, node))
            groups[name] = CellGenotype(tuple(edges), tuple(range(2, 2 + self.shape.nodes)))
        return Genotype(self.name, groups)

    def log10_size(self, layers: int | None = None) -> float:
        """(prod_k C(k, 2) x ops^(2 x nodes)) per cell type, squared; independent of depth."""
        n_ops = len(self.nonzero_ops)
        per_cell = sum(math.log10(math.comb(k + 2, self.inputs_per_node))
                       for k in range(self.shape.nodes))
        per_cell += self.inputs_per_node * self.shape.nodes * math.log10(n_ops)
        return 2 * per_cell
