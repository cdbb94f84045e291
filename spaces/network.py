"""The discrete network built from a Genotype, for training from scratch or inherited weights."""

from __future__ import annotations

import torch
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.layout import cell_edges
from nasbench_suite.spaces.macro import Macro, MacroNet, darts_macro, preprocess, zeros_node
from nasbench_suite.spaces.ops import SkipBN, create_op
from nasbench_suite.spaces.supernet import SuperNet
from torch import nn


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of one path with probability ``drop_prob`` (DARTS's drop-path)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class DiscreteCell(nn.Module):
    """A cell with only its genotype's ops; every op of a node is summed with weight 1.

    A node without any kept op outputs zeros where the macro allows it (a NAS-Bench-201 cell
    with ``none`` on all of a node's edges); elsewhere such a genotype is refused.
    """

    def __init__(self, genotype: Genotype, group: str, reduction: bool, macro: Macro,
                 c_ins: tuple[int, ...], c: int, reduction_prev: bool, affine: bool,
                 pool_bn: bool, skip_bn: bool = False) -> None:
        super().__init__()
        cell = genotype.groups[group]
        inputs, nodes = macro.cell_inputs, macro.nodes
        self.reduction = reduction
        #: the stride of the edges that leave the cell's inputs (an empty node's zeros)
        self.stride = 2 if reduction else 1
        self.pre = preprocess(c_ins, c, reduction_prev, affine)
        for k, pre in enumerate(self.pre):  # registered as pre0, pre1 (DARTS's names)
            setattr(self, f"pre{k}", pre)
        # Edge indices follow spaces.layout.cell_edges so that module names match the supernet.
        index = {(e.input, e.node): e.index for e in cell_edges(nodes, inputs)}
        self.edges = nn.ModuleDict()
        self.plan: list[list[tuple[str, str, int]]] = [[] for _ in range(nodes)]
        for op, src, dst in cell.edges:
            if (src, dst) not in index:
                raise ValueError(f"edge ({op}, {src}, {dst}) does not fit a {nodes}-node cell")
            key = str(index[(src, dst)])
            if key not in self.edges:
                self.edges[key] = nn.ModuleDict()
            stride = self.stride if src < inputs else 1
            self.edges[key][op] = create_op(op, c, stride, affine, pool_bn, skip_bn)
            self.plan[dst - inputs].append((key, op, src))
        empty = [k + inputs for k, p in enumerate(self.plan) if not p]
        if empty and not macro.empty_nodes:
            raise ValueError(f"group {group!r}: node(s) {empty} have no input")
        self.concat = list(cell.concat)
        self.multiplier = len(self.concat)
        self.out_channels = self.multiplier * c

    def forward(self, inputs: list[torch.Tensor], drop_prob: float) -> torch.Tensor:
        states = [x if pre is None else pre(x) for pre, x in zip(self.pre, inputs, strict=True)]
        for plan in self.plan:
            total: torch.Tensor | None = None
            for key, op_name, src in plan:
                op = self.edges[key][op_name]
                out = op(states[src])
                # no drop-path on a skip (DARTS; GOLD-NAS likewise on its BN skip)
                if self.training and drop_prob > 0 and not isinstance(op, (nn.Identity, SkipBN)):
                    out = drop_path(out, drop_prob)
                total = out if total is None else total + out
            states.append(zeros_node(states[0], self.stride) if total is None else total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class Network(MacroNet):
    """The network of a genotype: DARTS's NetworkCIFAR generalised to any kept-op set and,
    through ``macro``, to any skeleton (default: DARTS's at ``channels`` and ``layers``).

    With ``affine=False, pool_bn=True`` the modules are those of the search supernet, so
    :meth:`inherit_from` can copy its weights (EDAS and PAD-NAS evaluate that way); add
    ``skip_bn=True`` when the supernet was built with it (its stride-1 skip_connect is a
    non-affine BN whose running statistics are then inherited too).
    """

    def __init__(self, genotype: Genotype, channels: int, layers: int, in_channels: int,
                 num_classes: int, nodes: int = 4, stem_multiplier: int = 3,
                 auxiliary: bool = False, drop_path_prob: float = 0.0, affine: bool = True,
                 pool_bn: bool = False, skip_bn: bool = False, macro: Macro | None = None
                 ) -> None:
        genotype.check_depth(layers)
        macro = macro or darts_macro(channels, layers, nodes, stem_multiplier)

        def make_cell(i: int, c_ins: tuple[int, ...], c: int, reduction: bool,
                      reduction_prev: bool) -> nn.Module:
            group = genotype.group_of(i, reduction)
            if group not in genotype.groups:
                raise ValueError(f"genotype has no cell group {group!r}")
            return DiscreteCell(genotype, group, reduction, macro, c_ins, c, reduction_prev,
                                affine, pool_bn, skip_bn)

        super().__init__(macro, in_channels, num_classes, auxiliary, make_cell)
        self.genotype = genotype
        self.drop_path_prob = drop_path_prob

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.run(x, lambda _i, cell, inputs: cell(inputs, self.drop_path_prob))

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
