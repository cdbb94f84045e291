"""The cost table against FlopCounterMode on the discrete network, and the DARTS V2 check."""

from __future__ import annotations

import pytest
import torch
from nasbench_suite.spaces import DARTS_V2, NetShape, create_space
from nasbench_suite.spaces.network import count_parameters
from torch.utils.flop_counter import FlopCounterMode


def _counted(net: torch.nn.Module, shape: NetShape) -> float:
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, shape.in_channels, shape.image_size, shape.image_size))
    return counter.get_total_flops()


@pytest.mark.parametrize("space_name", ["restricted", "relaxed"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_genotype_cost_equals_flop_counter_on_its_network(space_name: str, seed: int) -> None:
    shape = NetShape(channels=6, layers=5, in_channels=3, num_classes=10, image_size=16)
    space = create_space(space_name, shape)
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(space.layout.shape, generator=gen) < 0.5
    genotype = space.derive(torch.rand(space.layout.shape, generator=gen),
                            keep if space_name == "relaxed" else None)
    net = space.network(genotype, auxiliary=True)
    cost = space.genotype_cost(genotype)
    counted = _counted(net, shape)
    assert abs(cost.flops - counted) <= 0.01 * counted
    assert cost.params == count_parameters(net)
    assert cost.macs == cost.flops / 2


def test_darts_v2_has_about_3_3m_parameters_at_c36_20_cells() -> None:
    space = create_space("restricted", NetShape(36, 20, 3, 10, 32))
    net = space.network(DARTS_V2, auxiliary=True)
    params = count_parameters(net)
    assert abs(params - 3.3e6) <= 0.03 * 3.3e6
    assert space.genotype_cost(DARTS_V2).params == params
    # about 0.53 G multiply-adds, as published for the DARTS CIFAR-10 cell
    assert 0.5e9 < space.genotype_cost(DARTS_V2).macs < 0.6e9


def test_mask_cost_of_full_supernet_equals_counter() -> None:
    shape = NetShape(channels=4, layers=3, in_channels=1, num_classes=10, image_size=8)
    space = create_space("restricted", shape)
    net = space.supernet(affine=True, pool_bn=False).eval()
    active = torch.rand(space.layout.shape) < 0.7
    active[..., 3] = True
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 1, 8, 8), torch.ones(space.layout.shape), active)
    assert space.cost.mask_cost(active).flops == pytest.approx(counter.get_total_flops())
