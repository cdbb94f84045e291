"""The discrete network built from a Genotype, for training from scratch or inherited weights."""

from __future__ import annotations

import torch
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.layout import reduction_cells
from nasbench_suite.spaces.ops import SkipBN, create_op
from nasbench_suite.spaces.supernet import AuxiliaryHead, SuperNet, preprocess
from torch import nn


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of one path with probability ``drop_prob`` (DARTS's drop-path)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class DiscreteCell(nn.Module):
    """A cell with only its genotype's ops; every op of a node is summed with weight 1."""

    def __init__(self, genotype: Genotype, group: str, reduction: bool, nodes: int, c_pp: int,
                 c_p: int, c: int, reduction_prev: bool, affine: bool, pool_bn: bool,
                 skip_bn: bool = False) -> None:
        super().__init__()
        cell = genotype.groups[group]
        self.reduction = reduction
        self.pre0, self.pre1 = preprocess(c_pp, c_p, c, reduction_prev, affine)
        # Edge indices follow spaces.layout.cell_edges so that module names match the supernet.
        index = {}
        for k in range(nodes):
            for src in range(k + 2):
                index[(src, k + 2)] = len(index)
        self.edges = nn.ModuleDict()
        self.plan: list[list[tuple[str, str, int]]] = [[] for _ in range(nodes)]
        for op, src, dst in cell.edges:
            if not 2 <= dst < nodes + 2 or not 0 <= src < dst:
                raise ValueError(f"edge ({op}, {src}, {dst}) does not fit a {nodes}-node cell")
            key = str(index[(src, dst)])
            if key not in self.edges:
                self.edges[key] = nn.ModuleDict()
            stride = 2 if reduction and src < 2 else 1
            self.edges[key][op] = create_op(op, c, stride, affine, pool_bn, skip_bn)
            self.plan[dst - 2].append((key, op, src))
        empty = [k + 2 for k, p in enumerate(self.plan) if not p]
        if empty:
            raise ValueError(f"group {group!r}: node(s) {empty} have no input")
        self.concat = list(cell.concat)
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for plan in self.plan:
            total: torch.Tensor | None = None
            for key, op_name, src in plan:
                op = self.edges[key][op_name]
                out = op(states[src])
                # no drop-path on a skip (DARTS; GOLD-NAS likewise on its BN skip)
                if self.training and drop_prob > 0 and not isinstance(op, (nn.Identity, SkipBN)):
                    out = drop_path(out, drop_prob)
                total = out if total is None else total + out
            assert total is not None
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class Network(nn.Module):
    """The network of a genotype: DARTS's NetworkCIFAR generalised to any kept-op set.

    With ``affine=False, pool_bn=True`` the modules are those of the search supernet, so
    :meth:`inherit_from` can copy its weights (EDAS and PAD-NAS evaluate that way); add
    ``skip_bn=True`` when the supernet was built with it (its stride-1 skip_connect is a
    non-affine BN whose running statistics are then inherited too).
    """

    def __init__(self, genotype: Genotype, channels: int, layers: int, in_channels: int,
                 num_classes: int, nodes: int = 4, stem_multiplier: int = 3,
                 auxiliary: bool = False, drop_path_prob: float = 0.0, affine: bool = True,
                 pool_bn: bool = False, skip_bn: bool = False) -> None:
        super().__init__()
        genotype.check_depth(layers)
        self.genotype = genotype
        self.drop_path_prob = drop_path_prob
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
            reduction = i in reductions
            if reduction:
                c *= 2
            group = genotype.group_of(i, reduction)
            if group not in genotype.groups:
                raise ValueError(f"genotype has no cell group {group!r}")
            cell = DiscreteCell(genotype, group, reduction, nodes, c_pp, c_p, c,
                                reduction_prev, affine, pool_bn, skip_bn)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c
            if i == self.aux_index:
                c_aux = c_p
        self.auxiliary = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        return self.classifier(self.global_pooling(s1).flatten(1)), aux

    def inherit_from(self, supernet: SuperNet) -> int:
        """Copy every matching tensor of ``supernet`` (same names, same shapes); returns the count.

        Raises if an op of this network has no counterpart: then the two were not built from
        the same space and sizes.
        """
        source = supernet.state_dict()
        own = self.state_dict()
        missing = [k for k, v in own.items()
                   if k not in source or source[k].shape != v.shape]
        missing = [k for k in missing if not k.startswith("auxiliary.")]
        if missing:
            raise ValueError(f"supernet has no tensor for {missing[:3]}... ({len(missing)} in all)")
        copied = {k: source[k] for k in own if k in source and source[k].shape == own[k].shape}
        self.load_state_dict(copied, strict=False)
        return len(copied)


def count_parameters(module: nn.Module, exclude_auxiliary: bool = True) -> int:
    """Parameters as the DARTS code counts them: the auxiliary head left out."""
    return sum(p.numel() for name, p in module.named_parameters()
               if not (exclude_auxiliary and name.startswith("auxiliary")))
