"""The one supernet builder shared by every space and every method.

The forward takes the input plus per-(group, edge, op) mixing weights and an active mask.
An inactive op, and the zero op, are skipped entirely, so pruning makes the search faster,
not just zero a weight. How the weights are made (softmax, sigmoid gates, clamped one-hot
edges, sampled paths) is the method's business; the supernet only mixes.

Module names are shared with :class:`spaces.network.Network` (``cells.{i}.edges.{e}.{op}``),
so a derived network inherits supernet weights with a plain state-dict copy.
"""

from __future__ import annotations

import torch
from torch import nn

from spaces.layout import ArchLayout, reduction_cells
from spaces.ops import ZERO, FactorizedReduce, ReLUConvBN, create_op


class MixedEdge(nn.ModuleDict):
    """All candidate ops of one edge of one cell (the zero op has no module)."""

    def __init__(self, ops: tuple[str, ...], channels: int, stride: int, affine: bool,
                 pool_bn: bool) -> None:
        super().__init__({op: create_op(op, channels, stride, affine, pool_bn)
                          for op in ops if op != ZERO})
        # Positions in the layout's op list of the ops that have a module.
        self.positions = [i for i, op in enumerate(ops) if op != ZERO]


def preprocess(c_pp: int, c_p: int, c: int, reduction_prev: bool,
               affine: bool) -> tuple[nn.Module, nn.Module]:
    """Bring the two previous cells' outputs to ``c`` channels and the same resolution."""
    pre0: nn.Module = (FactorizedReduce(c_pp, c, affine) if reduction_prev
                       else ReLUConvBN(c_pp, c, 1, 1, 0, affine))
    return pre0, ReLUConvBN(c_p, c, 1, 1, 0, affine)


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier, with adaptive pooling so that it fits any input size.

    DARTS pools its 8x8 input with a 5x5/stride-3 window to 2x2; adaptive pooling to 2x2 gives
    the same shape and parameters at every resolution.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class SuperCell(nn.Module):
    def __init__(self, layout: ArchLayout, group: int, c_pp: int, c_p: int, c: int,
                 reduction_prev: bool, affine: bool, pool_bn: bool) -> None:
        super().__init__()
        self.group = group
        self.reduction = layout.group_reduction[group]
        self.nodes = layout.nodes
        self.pre0, self.pre1 = preprocess(c_pp, c_p, c, reduction_prev, affine)
        self.edges = nn.ModuleList(
            MixedEdge(layout.ops, c, layout.stride(group, e.index), affine, pool_bn)
            for e in layout.edges)
        self.edge_inputs = [e.input for e in layout.edges]
        self.node_edges = [layout.node_edges(k + 2) for k in range(layout.nodes)]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                active: list[list[bool]]) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for k, edge_ids in enumerate(self.node_edges):
            total: torch.Tensor | None = None
            for e in edge_ids:
                edge: MixedEdge = self.edges[e]  # type: ignore[assignment]
                x = states[self.edge_inputs[e]]
                w = weights[e]
                for op, pos in zip(edge.values(), edge.positions, strict=True):
                    if not active[e][pos]:
                        continue
                    out = w[pos] * op(x)
                    total = out if total is None else total + out
            if total is None:
                raise RuntimeError(f"node {k + 2} of a cell has no active input op")
            states.append(total)
        return torch.cat(states[2:], dim=1)


class SuperNet(nn.Module):
    """A DARTS-style stack of cells whose edges hold every candidate op of the layout.

    ``forward(x, weights, active)``: ``weights`` is a float tensor (G, E, O) on the model's
    device, ``active`` a bool tensor (G, E, O) (kept on the CPU: it steers Python control
    flow). Returns ``(logits, aux_logits)``; ``aux_logits`` is ``None`` unless the network has
    an auxiliary head and is training.
    """

    def __init__(self, layout: ArchLayout, channels: int, in_channels: int, num_classes: int,
                 stem_multiplier: int = 3, affine: bool = False, pool_bn: bool = True,
                 auxiliary: bool = False) -> None:
        super().__init__()
        self.layout = layout
        layers = layout.layers
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c = c_curr, c_curr, channels
        reductions = reduction_cells(layers)
        self.cells = nn.ModuleList()
        reduction_prev = False
        self.aux_index = 2 * layers // 3
        c_aux = 0
        for i in range(layers):
            if i in reductions:
                c *= 2
            group = layout.cell_groups[i]
            self.cells.append(SuperCell(layout, group, c_pp, c_p, c, reduction_prev, affine,
                                        pool_bn))
            reduction_prev = layout.group_reduction[group]
            c_pp, c_p = c_p, layout.nodes * c
            if i == self.aux_index:
                c_aux = c_p
        self.auxiliary = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if weights.shape != self.layout.shape or active.shape != self.layout.shape:
            raise ValueError(f"weights and mask must have shape {self.layout.shape}, "
                             f"got {tuple(weights.shape)} and {tuple(active.shape)}")
        mask = active.tolist()
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            g = cell.group
            s0, s1 = s1, cell(s0, s1, weights[g], mask[g])
            if i == self.aux_index and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, aux

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())
