"""Ops, supernet, derivation rules and space sizes."""

from __future__ import annotations

import math

import pytest
import torch
from nasbench_suite.spaces import DARTS_V2, Genotype, NetShape, create_space, list_spaces
from nasbench_suite.spaces.ops import OPS, ZERO, create_op

from tests._helpers import count_calls

TINY_SHAPE = NetShape(channels=4, layers=3, in_channels=1, num_classes=10, image_size=8)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [8, 7])
def test_op_keeps_shape_at_stride_1_and_halves_at_stride_2(name: str, stride: int,
                                                           size: int) -> None:
    op = create_op(name, 6, stride, affine=True, pool_bn=True)
    y = op(torch.randn(2, 6, size, size))
    expected = size if stride == 1 else math.ceil(size / 2)
    assert y.shape == (2, 6, expected, expected)


def test_zero_op_has_no_module() -> None:
    with pytest.raises(ValueError, match=r"never computed|skipped"):
        create_op(ZERO, 4, 1, True, True)


@pytest.mark.parametrize("space_name", list_spaces())
def test_supernet_forward_backward_and_masked_ops_never_run(space_name: str) -> None:
    space = create_space(space_name, TINY_SHAPE)
    net = space.supernet(auxiliary=True)
    calls = count_calls(net)
    G, E, O = space.layout.shape
    weights = torch.full((G, E, O), 1.0 / O, requires_grad=True)
    active = torch.rand(G, E, O, generator=torch.Generator().manual_seed(1)) < 0.6
    active[:, :, space.nonzero_ops[0]] = True  # keep every node fed
    logits, aux = net(torch.randn(4, 1, 8, 8), weights, active)
    assert logits.shape == (4, 10) and aux is not None and aux.shape == (4, 10)
    (logits.sum() + aux.sum()).backward()
    for (i, e, name), n in calls.items():
        g = space.layout.cell_groups[i]
        assert n == int(bool(active[g, e, space.ops.index(name)])), (i, e, name)
    # Gradient reaches exactly the weights of computed ops (the zero op is never computed).
    computed = active.clone()
    computed[:, :, [i for i, op in enumerate(space.ops) if op == ZERO]] = False
    assert weights.grad is not None
    assert torch.equal(weights.grad != 0, computed)


@pytest.mark.parametrize("space_name", list_spaces())
def test_fused_path_never_computes_masked_ops(space_name: str) -> None:
    """The batched (fused) forward has no per-module calls to count, so the weights of
    every masked op are poisoned with NaN: an op computed and then multiplied by 0 (or
    summed in) would turn the logits and every gradient into NaN."""
    space = create_space(space_name, TINY_SHAPE)
    net = space.supernet(auxiliary=True)
    G, E, O = space.layout.shape
    active = torch.rand(G, E, O, generator=torch.Generator().manual_seed(2)) < 0.5
    active[:, :, space.nonzero_ops[0]] = True
    with torch.no_grad():
        for i, cell in enumerate(net.cells):
            g = space.layout.cell_groups[i]
            for e, edge in enumerate(cell.edges):
                for name, module in edge.items():
                    if not active[g, e, space.ops.index(name)]:
                        for param in module.parameters():
                            param.fill_(float("nan"))
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    outputs = {}
    for fused in (True, False):
        net.fused = fused
        assert net.fused == fused and not net._observed()
        weights = torch.full((G, E, O), 1.0 / O, requires_grad=True)
        logits, aux = net(x, weights, active)
        (logits.sum() + aux.sum()).backward()
        assert torch.isfinite(logits).all() and torch.isfinite(weights.grad).all()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        outputs[fused] = logits.detach()
        net.zero_grad(set_to_none=True)
    torch.testing.assert_close(outputs[True], outputs[False], rtol=1e-4, atol=1e-5)


def test_restricted_derivation_two_inputs_one_nonzero_op_per_edge() -> None:
    space = create_space("restricted", TINY_SHAPE)
    for seed in range(5):
        scores = torch.rand(space.layout.shape, generator=torch.Generator().manual_seed(seed))
        scores[..., 0] += 1.0 * (seed % 2)  # a strong zero op must still never be chosen
        genotype = space.derive(scores)
        for name, cell in genotype.groups.items():
            g = space.layout.groups.index(name)
            for node in range(2, 6):
                inputs = cell.inputs_of(node)
                assert len(inputs) == 2
                assert len({src for _, src in inputs}) == 2
                for op, src in inputs:
                    assert op != ZERO
                    e = next(x.index for x in space.layout.edges
                             if (x.input, x.node) == (src, node))
                    best = max(space.nonzero_ops, key=lambda o, e=e: float(scores[g, e, o]))
                    assert op == space.ops[best]
            # the two kept edges are the two strongest of the node
            for node in range(2, 6):
                ids = space.layout.node_edges(node)
                strength = {space.layout.edges[e].input: float(scores[g, e, 1:].max())
                            for e in ids}
                top2 = sorted(strength, key=lambda s: -strength[s])[:2]
                assert sorted(src for _, src in cell.inputs_of(node)) == sorted(top2)


def test_restricted_derivation_respects_pruned_ops() -> None:
    space = create_space("restricted", TINY_SHAPE)
    scores = torch.rand(space.layout.shape)
    keep = torch.ones(space.layout.shape, dtype=torch.bool)
    sep = space.ops.index("sep_conv_3x3")
    scores[..., sep] = 10.0
    keep[..., sep] = False
    assert "sep_conv_3x3" not in space.derive(scores, keep).ops()


def test_relaxed_derivation_keeps_exactly_the_kept_ops_and_feeds_every_node() -> None:
    space = create_space("relaxed", TINY_SHAPE)
    gen = torch.Generator().manual_seed(0)
    keep = torch.rand(space.layout.shape, generator=gen) < 0.5
    for g in range(len(space.layout.groups)):
        for node in range(2, 6):
            keep[g, space.layout.node_edges(node)[0], 0] = True
    genotype = space.derive(torch.rand(space.layout.shape, generator=gen), keep)
    assert torch.equal(space.mask_of(genotype), keep)
    # A node with nothing kept gets its strongest op back, and only that one.
    keep[0, space.layout.node_edges(3)] = False
    scores = torch.zeros(space.layout.shape)
    e = space.layout.node_edges(3)[1]
    scores[0, e, 1] = 5.0
    mask = space.mask_of(space.derive(scores, keep))
    assert mask[0, space.layout.node_edges(3)].sum() == 1 and mask[0, e, 1]
    # Default rule (DARTS in the relaxed space): the strongest op of every edge, every edge kept.
    argmax = space.mask_of(space.derive(scores))
    assert torch.equal(argmax.sum(-1), torch.ones(space.layout.shape[:2], dtype=torch.long))
    assert len(space.derive(scores).cell_groups) == TINY_SHAPE.layers


def test_space_sizes() -> None:
    restricted = create_space("restricted", NetShape(16, 8, 3, 10, 32))
    assert 17.9 < restricted.log10_size() < 18.1
    relaxed14 = create_space("relaxed", NetShape(16, 14, 3, 10, 32))
    assert relaxed14.log10_size() > 117
    assert abs(relaxed14.log10_size() / 14 - math.log10(15 * 63 * 255 * 1023)) < 1e-9
    assert relaxed14.log10_size(20) > 160


def test_genotype_json_round_trip(tmp_path) -> None:
    space = create_space("relaxed", TINY_SHAPE)
    genotype = space.derive(torch.rand(space.layout.shape))
    for g in (DARTS_V2, genotype):
        path = tmp_path / "g.json"
        path.write_text(g.to_json())
        assert Genotype.load(path) == g
    with pytest.raises(ValueError, match="not a genotype"):
        Genotype.from_json('{"groups": 3}')
