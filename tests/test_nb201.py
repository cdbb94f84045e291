"""The nb201 space: NAS-Bench-201's cell and skeleton, its derivation, networks and costs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from nasbench_suite.spaces import NetShape, create_space
from nasbench_suite.spaces.base import Space
from nasbench_suite.spaces.macro import ResidualBlock
from nasbench_suite.spaces.nb201_arch import (
    NB201_EDGES,
    NB201_OPS,
    arch_to_genotype,
    format_arch,
    genotype_to_arch,
    parse_arch,
)
from nasbench_suite.spaces.network import count_parameters
from nasbench_suite.spaces.ops import Pool
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search
from nasbench_suite.training.scratch import resolve_eval_config, train_from_scratch

TABLE = Path(__file__).resolve().parents[2] / "shared/data/nb201/nasbench201_cifar10.csv"
#: the benchmark's network: C=16, N=5 (15 cells), CIFAR-10
BENCH = NetShape(channels=16, layers=15, in_channels=3, num_classes=10, image_size=32)
SMALL = NetShape(channels=4, layers=3, in_channels=3, num_classes=10, image_size=8)
ALL_SKIP = format_arch(["skip_connect"] * 6)
ALL_NONE = format_arch(["none"] * 6)
#: the best CIFAR-10 cell of the benchmark's table (row 6111, validation accuracy 91.61)
BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")


def _scores(space: Space, arch: str) -> torch.Tensor:
    """Scores whose per-edge argmax (``none`` included) is the cell ``arch``."""
    scores = torch.zeros(space.layout.shape)
    edge = {(e.input, e.node): e.index for e in space.layout.edges}
    for op, key in zip(parse_arch(arch), NB201_EDGES, strict=True):
        scores[0, edge[key], space.ops.index(op)] = 1.0
    return scores


def _counted_flops(net: nn.Module, shape: NetShape) -> float:
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, shape.in_channels, shape.image_size, shape.image_size))
    return counter.get_total_flops()


def test_size_capabilities_and_layout() -> None:
    space = create_space("nb201", SMALL)
    assert space.log10_size() == pytest.approx(math.log10(15_625))
    caps = space.capabilities
    assert caps.zero_op and caps.shared_groups and caps.complete_edges
    assert not caps.multi_op_edges and caps.inputs_per_node is None
    assert space.layout.shape == (1, 6, 5) and space.ops == NB201_OPS
    assert [(e.input, e.node) for e in space.layout.edges] == list(NB201_EDGES)
    with pytest.raises(ValueError, match="3N"):
        create_space("nb201", NetShape(16, 4, 3, 10, 32))


@pytest.mark.skipif(not TABLE.exists(), reason="NAS-Bench-201 table not on this machine")
def test_every_benchmark_cell_round_trips_through_the_space() -> None:
    """arch string -> genotype -> (scores whose argmax it is) -> derive -> the same string."""
    space = create_space("nb201", SMALL)
    with TABLE.open() as f:
        archs = [row["arch str"] for row in csv.DictReader(f)]
    assert len(set(archs)) == 15_625
    for arch in archs:
        genotype = arch_to_genotype(arch)
        space.check_genotype(genotype)
        derived = space.derive(_scores(space, arch))
        assert derived == genotype and genotype_to_arch(derived) == arch


def test_derivation_takes_none_when_it_is_strongest_and_keep_limits_the_candidates() -> None:
    space = create_space("nb201", SMALL)
    scores = _scores(space, ALL_NONE) + 0.5 * _scores(space, ALL_SKIP)
    assert genotype_to_arch(space.derive(scores)) == ALL_NONE  # none wins: DARTS's rule here
    keep = torch.ones(space.layout.shape, dtype=torch.bool)
    keep[..., space.ops.index("none")] = False
    assert genotype_to_arch(space.derive(scores, keep)) == ALL_SKIP
    # several kept ops on one edge (GOLD-NAS): the strongest of them; none kept: ``none``
    keep = torch.zeros(space.layout.shape, dtype=torch.bool)
    keep[0, 0, [1, 3]] = True
    scores = torch.zeros(space.layout.shape)
    scores[0, 0, 3] = 2.0
    assert genotype_to_arch(space.derive(scores, keep)) == (
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_supernet_skeleton_shapes_and_batch_norms() -> None:
    space = create_space("nb201", BENCH)
    net = space.supernet()
    assert len(net.cells) == 15 and sorted(net.blocks) == ["10", "5"]
    seen: dict[int, tuple[int, ...]] = {}
    for i, cell in enumerate(net.cells):
        cell.register_forward_hook(lambda _m, _a, out, i=i: seen.update({i: out.shape[1:]}))
    G, E, O = space.layout.shape
    logits, aux = net(torch.randn(2, 3, 32, 32), torch.full((G, E, O), 0.2),
                      space.layout.full_mask())
    assert logits.shape == (2, 10) and aux is None
    assert [seen[i] for i in (0, 4, 5, 9, 10, 14)] == [
        (16, 32, 32), (16, 32, 32), (32, 16, 16), (32, 16, 16), (64, 8, 8), (64, 8, 8)]
    cell_bns = [m for m in net.cells.modules() if isinstance(m, nn.BatchNorm2d)]
    assert cell_bns and not any(m.affine for m in cell_bns)  # the benchmark's DARTS
    assert all(m.affine for m in net.blocks.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(isinstance(b, ResidualBlock) for b in net.blocks.values())
    pools = [m for m in net.cells.modules() if isinstance(m, Pool)]
    assert pools and all(len(p) == 1 for p in pools)  # no BN after the average pool
    assert not hasattr(net.cells[0], "pre0") or net.cells[0].pre0 is None
    skip = net.cells[0].edges[0]["skip_connect"]
    assert isinstance(skip, nn.Identity)


def test_a_node_without_input_is_zeros_in_nb201_and_an_error_elsewhere() -> None:
    space = create_space("nb201", SMALL)
    torch.manual_seed(0)
    net = space.supernet().double()
    G, E, O = space.layout.shape
    weights = torch.softmax(torch.randn(G, E, O, dtype=torch.float64), -1)
    active = space.layout.full_mask()
    active[0, 0] = False  # node 1 has only this edge: it outputs zeros
    outs = []
    for fused in (True, False):
        net.fused = fused
        outs.append(net(torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1),
                                    dtype=torch.float64), weights, active)[0])
    torch.testing.assert_close(outs[0], outs[1])
    restricted = create_space("restricted", SMALL)
    active = restricted.layout.full_mask()
    active[:, restricted.layout.node_edges(2)] = False
    reference = restricted.supernet()
    reference.fused = False  # the fused path mixes such a node to zeros with its wave
    with pytest.raises(RuntimeError, match="no active input"):
        reference(torch.randn(2, 3, 8, 8), torch.ones(active.shape), active)
    genotype = restricted.derive(torch.rand(restricted.layout.shape))
    cell = genotype.groups["normal"]
    holed = type(genotype)(genotype.space, {**genotype.groups, "normal": type(cell)(
        tuple(e for e in cell.edges if e[2] != 2), cell.concat)})
    with pytest.raises(ValueError, match="no input"):
        restricted.check_genotype(holed)
    with pytest.raises(ValueError, match="no input"):
        restricted.network(holed)


@pytest.mark.parametrize("arch", [ALL_SKIP, ALL_NONE, BEST])
def test_discrete_network_builds_and_its_cost_equals_the_counter(arch: str) -> None:
    space = create_space("nb201", BENCH)
    genotype = arch_to_genotype(arch)
    net = space.network(genotype)
    logits, _ = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    cost = space.genotype_cost(genotype)
    assert cost.flops == pytest.approx(_counted_flops(net, BENCH))
    assert cost.params == count_parameters(net)


def test_costs_span_the_published_range() -> None:
    """NAS-Bench-201 (CIFAR-10): 7.78 to 220.11 M FLOPs (multiply-adds), 0.073 to 1.531 M
    parameters, from the all-none to the all-conv3x3 cell."""
    space = create_space("nb201", BENCH)
    low = space.genotype_cost(arch_to_genotype(ALL_NONE))
    high = space.genotype_cost(arch_to_genotype(format_arch(["nor_conv_3x3"] * 6)))
    assert round(low.macs / 1e6, 2) == 7.78 and round(low.params / 1e6, 3) == 0.073
    assert round(high.macs / 1e6, 2) == 220.12 and round(high.params / 1e6, 3) == 1.532


def test_inherited_network_equals_the_supernet_on_its_cell() -> None:
    space = create_space("nb201", SMALL)
    torch.manual_seed(0)
    net = space.supernet().double().eval()
    genotype = arch_to_genotype(BEST)
    derived = space.network(genotype, search_ops=True).double().eval()
    assert derived.inherit_from(net) > 0
    mask = space.mask_of(genotype)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(derived(x)[0], net(x, mask.double(), mask)[0])


def test_darts_search_returns_an_nb201_cell(tiny_config) -> None:
    run = RunFolder(run_search(tiny_config(method="darts", space="nb201"), progress=False,
                               log=lambda _: None))
    genotype = run.genotype()
    assert genotype.space == "nb201" and set(genotype.groups) == {"cell"}
    assert parse_arch(genotype_to_arch(genotype))


def test_a_cell_trains_from_scratch_at_its_space_cost(tmp_path: Path) -> None:
    genotype = arch_to_genotype(BEST)
    cfg = resolve_eval_config({"epochs": 1, "channels": 4, "layers": 3, "batch_size": 128,
                               "out": str(tmp_path), "threads": 1})
    out = train_from_scratch(cfg, "best", genotype, progress=False, log=lambda _: None)
    result = EvalFolder(out).result()
    space = create_space("nb201", NetShape(4, 3, 1, 10, 8))
    assert result.layers == 3 and result.macs == space.genotype_cost(genotype).macs
