"""The relaxed GOLD-NAS space (Bi et al., arXiv 2007.03331).

Three DARTS constraints are lifted: an edge keeps any number of ops, a node any number of
inputs (at least one), and every cell has its own architecture. The default op list,
``skip_connect`` and ``sep_conv_3x3``, is the public implementation's (sunsmarterjie/GOLD_NAS,
an unofficial one).
"""

from __future__ import annotations

import math

import torch
from nasbench_suite.spaces.base import Space
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.layout import ArchLayout, reduction_cells
from nasbench_suite.spaces.ops import GOLD_OPS


class RelaxedSpace(Space):
    name = "relaxed"
    default_ops = GOLD_OPS
    description = ("GOLD-NAS space: one architecture per cell, any ops per edge, "
                   "any inputs per node (at least one)")
    derivation = "every op a method keeps; a node without input gets its strongest op"
    shared_groups = False
    inputs_per_node = None
    multi_op_edges = True
    # sunsmarterjie/GOLD_NAS's search network builds skip_connect at stride 1 as
    # BatchNorm2d(C, affine=False): on the skip's raw scale its gate would win for the
    # wrong reason (measured at initialisation: node outputs of RMS 1.3-1.8 against 1.0)
    skip_bn_default = True

    def _layout(self) -> ArchLayout:
        layers = self.shape.layers
        reductions = reduction_cells(layers)
        return ArchLayout(groups=tuple(f"cell{i}" for i in range(layers)),
                          group_reduction=tuple(i in reductions for i in range(layers)),
                          ops=self.ops, nodes=self.shape.nodes,
                          cell_groups=tuple(range(layers)))

    def _cell_group_names(self) -> tuple[str, ...]:
        return self.layout.groups

    def derive(self, scores: torch.Tensor, keep: torch.Tensor | None = None) -> Genotype:
        """Keep exactly the ``keep`` ops (default: the strongest op of every edge).

        A node left without input gets its strongest op back: a cell needs every node fed.
        """
        scores = scores.detach().cpu().to(torch.float64)
        nonzero = torch.zeros(len(self.ops), dtype=torch.bool)
        nonzero[self.nonzero_ops] = True
        masked = scores.masked_fill(~nonzero, -math.inf)
        if keep is None:
            keep = torch.zeros(self.layout.shape, dtype=torch.bool)
            keep.scatter_(-1, masked.argmax(-1, keepdim=True), True)
        keep = keep.cpu() & nonzero
        for g in range(len(self.layout.groups)):
            for node in range(2, 2 + self.shape.nodes):
                ids = self.layout.node_edges(node)
                if not keep[g, ids].any():
                    flat = int(masked[g, ids].flatten().argmax())
                    keep[g, ids[flat // len(self.ops)], flat % len(self.ops)] = True
        return self.genotype_from_mask(keep)

    def log10_size(self, layers: int | None = None) -> float:
        """Per cell prod_k (2^(inputs_k x ops) - 1): any non-empty subset of (input, op) pairs."""
        n_ops = len(self.nonzero_ops)
        per_cell = 0.0
        for k in range(self.shape.nodes):
            m = (k + 2) * n_ops
            per_cell += m * math.log10(2) + math.log10(1 - 2.0 ** -m)
        return (layers or self.shape.layers) * per_cell
