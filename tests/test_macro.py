"""The macro seam: a new skeleton is a space file, not a new builder.

A toy space with single-input cells whose output concatenates their two nodes, residual
blocks between stages and BN-ReLU before the pool: the supernet (fused and module paths),
the discrete network, weight inheritance and the cost table all come from the same builder
as DARTS's and NAS-Bench-201's networks.
"""

from __future__ import annotations

import math

import pytest
import torch
from nasbench_suite.spaces import Genotype, NetShape, create_space
from nasbench_suite.spaces.base import Space
from nasbench_suite.spaces.layout import ArchLayout
from nasbench_suite.spaces.macro import Macro, darts_macro
from nasbench_suite.spaces.network import count_parameters
from nasbench_suite.spaces.supernet import SuperNet
from torch.utils.flop_counter import FlopCounterMode

SHAPE = NetShape(channels=4, layers=4, in_channels=3, num_classes=10, image_size=8, nodes=2)


class ToySpace(Space):
    """Single-input cells of 2 nodes whose output is both nodes side by side (so the next
    cell's input needs a 1x1 preprocessing), two stages with a residual block between."""

    name = "toy"
    default_ops = ("none", "skip_connect", "conv_3x3", "avg_pool_3x3")
    description = "test skeleton"
    derivation = "per edge the best op but none"
    shared_groups = True
    inputs_per_node = None
    multi_op_edges = False

    def macro_for(self, channels: int, layers: int) -> Macro:
        half = layers // 2
        return Macro(stem_channels=channels,
                     cell_channels=tuple(channels * (1 + (i >= half)) for i in range(layers)),
                     reductions=(), nodes=self.shape.nodes, cell_inputs=1, output="concat",
                     blocks=(half,), head_bn=True)

    def _layout(self) -> ArchLayout:
        return ArchLayout(groups=("cell",), group_reduction=(False,), ops=self.ops,
                          nodes=self.shape.nodes, cell_groups=(0,) * self.shape.layers,
                          inputs=1)

    def derive(self, scores: torch.Tensor, keep: torch.Tensor | None = None) -> Genotype:
        masked = scores.masked_fill(~self.nonzero_mask(), -math.inf)
        best = torch.zeros(self.layout.shape, dtype=torch.bool)
        return self.genotype_from_mask(best.scatter_(-1, masked.argmax(-1, keepdim=True), True))

    def log10_size(self, layers: int | None = None) -> float:
        return len(self.layout.edges) * math.log10(len(self.nonzero_ops))


def test_toy_skeleton_supernet_network_and_costs_agree() -> None:
    space = ToySpace(SHAPE)
    assert [(e.input, e.node) for e in space.layout.edges] == [(0, 1), (0, 2), (1, 2)]
    torch.manual_seed(0)
    net = space.supernet()
    names = set(net.state_dict())
    assert {"cells.1.pre0.op.1.weight", "blocks.2.conv_a.op.1.weight",
            "lastact.0.running_mean", "classifier.weight"} <= names
    assert not any(k.startswith("cells.0.pre0") for k in names)  # stem already at C
    G, E, O = space.layout.shape
    weights = torch.softmax(torch.randn(G, E, O, dtype=torch.float64), -1).requires_grad_()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    net.double()
    outs = []
    for fused in (True, False):
        net.fused = fused
        logits, aux = net(x, weights, space.layout.full_mask())
        assert logits.shape == (4, 10) and aux is None
        outs.append(logits)
    torch.testing.assert_close(outs[0], outs[1])

    genotype = space.derive(weights.detach())
    assert genotype.groups["cell"].concat == (1, 2)
    discrete = space.network(genotype, search_ops=True).double()
    assert discrete.inherit_from(net) > 0
    discrete.eval()
    net.eval()
    mask = space.mask_of(genotype)
    torch.testing.assert_close(discrete(x)[0], net(x, mask.to(weights.dtype), mask)[0])

    scratch = space.network(genotype).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        scratch(torch.zeros(1, 3, 8, 8))
    cost = space.genotype_cost(genotype)
    assert cost.flops == pytest.approx(counter.get_total_flops())
    assert cost.params == count_parameters(scratch)


def test_darts_macro_is_the_default_skeleton_and_refuses_shallow_networks() -> None:
    macro = darts_macro(channels=4, layers=5, nodes=4)
    assert macro.reductions == (1, 3) and macro.cell_channels == (4, 8, 8, 16, 16)
    assert macro.stem_channels == 12 and macro.aux_index == 3 and macro.cell_inputs == 2
    with pytest.raises(ValueError, match="at least 3"):
        darts_macro(channels=4, layers=2, nodes=4)
    restricted = create_space("restricted", NetShape(4, 5, 3, 10, 8))
    plain = SuperNet(restricted.layout, 4, 3, 10)  # no macro: DARTS's at the layout's depth
    assert plain.macro == restricted.macro
    assert plain.blocks is None and plain.lastact is None
    toy = ToySpace(SHAPE)
    with pytest.raises(ValueError, match="input"):  # a 1-input layout in a 2-input skeleton
        SuperNet(toy.layout, 4, 3, 10)
