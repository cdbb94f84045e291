"""The macro network as data, and the one builder that reads it.

A space describes the network around its cells with a :class:`Macro`: the stem, the
channels of every cell, which cells reduce, how many earlier outputs a cell reads, which of
its nodes form its output, the residual blocks between stages and the head. :class:`MacroNet`
builds that skeleton once for both the search supernet (spaces/supernet.py) and the discrete
network (spaces/network.py); they differ only in the cell they plug in. A new skeleton
(NAS-Bench-201's single-input cells with residual reduction blocks) is then a new space
file, not a new builder.

Module names are the DARTS code's and do not depend on the skeleton: ``stem``,
``cells.{i}`` (with ``pre0``, ``pre1`` and ``edges.{e}.{op}``), ``auxiliary``,
``classifier``; a skeleton that has them adds ``blocks.{i}`` (the block before cell ``i``)
and ``lastact`` (NAS-Bench-201's BN-ReLU before the pool).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from nasbench_suite.spaces.ops import FactorizedReduce, ReLUConvBN
from torch import nn

#: a cell's output: every intermediate node side by side (DARTS), or the last node alone
#: (NAS-Bench-201)
OUTPUTS = ("concat", "last")


@dataclass(frozen=True)
class Macro:
    """The network around the cells, as data.

    * ``stem_channels``: a 3x3 conv (no bias) plus BN to this many channels;
    * ``cell_channels[i]``: the channels C of cell ``i``'s nodes;
    * ``reductions``: the cells whose input edges have stride 2 (DARTS's reduction cells);
    * ``cell_inputs``: how many of the latest outputs a cell reads (2: the two previous
      cells, DARTS; 1: the previous output, NAS-Bench-201);
    * ``output``: ``concat`` or ``last`` (:data:`OUTPUTS`);
    * ``blocks``: cells preceded by a :class:`ResidualBlock` (stride 2, to the cell's C);
    * ``head_bn``: BN and ReLU before the global pool (NAS-Bench-201's ``lastact``);
    * ``aux_index``: the cell whose output DARTS's auxiliary head reads (None: no head);
    * ``empty_nodes``: whether a node may have no input at all (it then outputs zeros: a
      NAS-Bench-201 cell may hold only ``none`` on a node's edges); elsewhere that is an error.
    """

    stem_channels: int
    cell_channels: tuple[int, ...]
    reductions: tuple[int, ...]
    nodes: int
    cell_inputs: int = 2
    output: str = "concat"
    blocks: tuple[int, ...] = ()
    head_bn: bool = False
    aux_index: int | None = None
    empty_nodes: bool = False

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        if self.cell_inputs < 1:
            raise ValueError(f"a cell needs at least one input, got {self.cell_inputs}")

    @property
    def layers(self) -> int:
        return len(self.cell_channels)

    @property
    def multiplier(self) -> int:
        """A cell's output channels over its C."""
        return self.nodes if self.output == "concat" else 1

    @property
    def node_ids(self) -> range:
        return range(self.cell_inputs, self.cell_inputs + self.nodes)

    def cell_output(self, states: Sequence[torch.Tensor]) -> torch.Tensor:
        """The cell's output from all its states (inputs first, then the nodes)."""
        if self.output == "last":
            return states[-1]
        return torch.cat(list(states[self.cell_inputs:]), dim=1)


def darts_macro(channels: int, layers: int, nodes: int, stem_multiplier: int = 3,
                reductions: tuple[int, ...] | None = None) -> Macro:
    """DARTS's NetworkCIFAR: a stem to ``stem_multiplier`` x C, two reduction cells (at one
    and two thirds of the depth) that double C, two-input cells whose output concatenates
    every node, the auxiliary head after the cell at two thirds of the depth."""
    if layers < 3:
        raise ValueError(f"layers must be at least 3 (two reduction cells), got {layers}")
    reductions = (layers // 3, 2 * layers // 3) if reductions is None else reductions
    cell_channels, c = [], channels
    for i in range(layers):
        c *= 2 if i in reductions else 1
        cell_channels.append(c)
    return Macro(stem_channels=stem_multiplier * channels, cell_channels=tuple(cell_channels),
                 reductions=tuple(reductions), nodes=nodes, aux_index=2 * layers // 3)


class ResidualBlock(nn.Module):
    """NAS-Bench-201's ``ResNetBasicblock`` at stride 2: ReLU-conv3x3/2-BN, ReLU-conv3x3-BN,
    plus a shortcut of AvgPool2d(2, 2) and a bias-free 1x1 conv (D-X-Y/AutoDL-Projects,
    cell_operations.py). Affine BN in the search network too, as the benchmark's DARTS."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine=True)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine=True)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0),
                                        nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def preprocess(c_ins: Sequence[int], c: int, reduction_prev: bool,
               affine: bool) -> list[nn.Module | None]:
    """Bring a cell's inputs to ``c`` channels and one resolution: DARTS's ReLU-conv1x1-BN
    (a FactorizedReduce for the input from before a reduction cell). A single input already
    at ``c`` channels goes in unchanged (None: NAS-Bench-201's cells have no preprocessing)."""
    if len(c_ins) == 1:
        return [None if c_ins[0] == c else ReLUConvBN(c_ins[0], c, 1, 1, 0, affine)]
    pre: list[nn.Module | None] = [
        ReLUConvBN(c_in, c, 1, 1, 0, affine) for c_in in c_ins]
    if reduction_prev:  # the older inputs are at twice the resolution of the newest
        pre[:-1] = [FactorizedReduce(c_in, c, affine) for c_in in c_ins[:-1]]
    return pre


#: ``make_cell(index, input channels, C, reduction, reduction_prev)``: the cell to plug in
CellFactory = Callable[[int, tuple[int, ...], int, bool, bool], nn.Module]


class MacroNet(nn.Module):
    """The skeleton of :class:`Macro` with the cells that ``make_cell`` builds.

    A cell module takes its (unprocessed) inputs, oldest first, plus whatever the subclass
    passes, and says its output channels in ``out_channels``; :meth:`run` threads the
    outputs through the stack.
    """

    def __init__(self, macro: Macro, in_channels: int, num_classes: int, auxiliary: bool,
                 make_cell: CellFactory) -> None:
        super().__init__()
        from nasbench_suite.spaces.supernet import AuxiliaryHead

        self.macro = macro
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, macro.stem_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(macro.stem_channels))
        c_ins = (macro.stem_channels,) * macro.cell_inputs
        self.cells = nn.ModuleList()
        blocks: dict[str, nn.Module] = {}
        reduction_prev = False
        c_aux = 0
        for i, c in enumerate(macro.cell_channels):
            if i in macro.blocks:
                blocks[str(i)] = ResidualBlock(c_ins[-1], c)
                c_ins, reduction_prev = (c,) * macro.cell_inputs, False
            reduction = i in macro.reductions
            self.cells.append(make_cell(i, c_ins, c, reduction, reduction_prev))
            reduction_prev = reduction
            c_ins = (*c_ins[1:], self.cells[-1].out_channels)
            if i == macro.aux_index:
                c_aux = c_ins[-1]
        if auxiliary and macro.aux_index is None:
            raise ValueError("this network has no auxiliary head (its macro places none)")
        self.blocks = nn.ModuleDict(blocks) if blocks else None
        self.auxiliary = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.lastact = (nn.Sequential(nn.BatchNorm2d(c_ins[-1]), nn.ReLU(inplace=True))
                        if macro.head_bn else None)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_ins[-1], num_classes)
        self.aux_index = macro.aux_index

    def run(self, x: torch.Tensor, run_cell: Callable[[int, nn.Module, list[torch.Tensor]],
                                                      torch.Tensor],
            after_stem: Callable[[torch.Tensor], torch.Tensor] | None = None
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, auxiliary logits or None): ``run_cell(i, cell, inputs)`` runs cell i."""
        s = self.stem(x)
        if after_stem is not None:
            s = after_stem(s)
        inputs = [s] * self.macro.cell_inputs
        aux = None
        for i, cell in enumerate(self.cells):
            if self.blocks is not None and str(i) in self.blocks:
                inputs = [self.blocks[str(i)](inputs[-1])] * self.macro.cell_inputs
            inputs = [*inputs[1:], run_cell(i, cell, inputs)]
            if i == self.aux_index and self.auxiliary is not None and self.training:
                aux = self.auxiliary(inputs[-1])
        out = inputs[-1] if self.lastact is None else self.lastact(inputs[-1])
        return self.classifier(self.global_pooling(out).flatten(1)), aux


def zeros_node(x: torch.Tensor, stride: int) -> torch.Tensor:
    """The output of a node without input: zeros shaped as its input at ``stride``."""
    n, c, h, w = x.shape
    return x.new_zeros(n, c, -(-h // stride), -(-w // stride))
