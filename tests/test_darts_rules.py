"""DARTS-ES and P-DARTS's skip limit: the rules, live and replayed."""

from __future__ import annotations

import torch
from nasbench_suite.methods import SearchContext, get_method
from nasbench_suite.methods.darts_rules import SKIP, early_stop_epoch, limit_skips, normal_skips
from nasbench_suite.spaces import NetShape, create_space

SHAPE = NetShape(4, 3, 1, 10, 8)


def test_early_stop_fires_when_the_windowed_eigenvalue_grows_by_a_third() -> None:
    flat = [(e, 1.0) for e in range(20)]
    assert early_stop_epoch(flat) is None
    rising = [(e, 1.0 if e < 10 else 2.0) for e in range(20)]
    # windows of 5 ending at i and at i - 5: 1.0 / mean(...) < 0.75 first at i = 11
    assert early_stop_epoch(rising) == 11
    assert early_stop_epoch(rising, k=1, window=1, ratio=0.75) == 10
    assert early_stop_epoch([(e, v) for e, v in rising if e % 2 == 0], k=1, window=1) == 10


def _darts(space_name: str, **hp) -> object:  # type: ignore[no-untyped-def]
    space = create_space(space_name, SHAPE)
    cls = get_method("darts")
    return cls(space, space.supernet(), cls.Config(**hp),
               SearchContext(torch.device("cpu"), 10, 1, seed=0))


def test_live_early_stop_returns_the_architecture_of_k_epochs_before() -> None:
    method = _darts("restricted", early_stop=True, es_k=2, es_window=1)
    genotypes = {}
    for epoch, eig in enumerate([1.0, 1.0, 1.0, 1.0, 3.0]):
        with torch.no_grad():
            method.alpha.normal_(generator=torch.Generator().manual_seed(epoch))
        genotypes[epoch] = method.genotype()
        method.observe(epoch, {"hessian_eig": eig})
        if epoch < 4:
            assert not method.finished()
    assert method.finished() and method.stopped_at == 4 and method.returned_epoch == 2
    assert method.genotype() == genotypes[2]
    state = method.state_dict()
    again = _darts("restricted", early_stop=True, es_k=2, es_window=1)
    again.load_state_dict(state)
    assert again.finished() and again.genotype() == genotypes[2]


def test_skip_limit_keeps_the_strongest_skips_of_each_normal_cell() -> None:
    for space_name in ("restricted", "relaxed"):
        space = create_space(space_name, SHAPE)
        weights = torch.rand(space.layout.shape, generator=torch.Generator().manual_seed(1))
        weights[..., space.ops.index(SKIP)] += 5.0  # skip wins every edge
        plain = space.derive(weights)
        assert max(normal_skips(plain).values()) > 2
        limited = limit_skips(space, weights, 2)
        assert max(normal_skips(limited).values()) == 2
        for name in limited.normal_groups():
            g = space.layout.groups.index(name)
            edge_of = {(e.input, e.node): e.index for e in space.layout.edges}
            kept = sorted(float(weights[g, edge_of[(s, d)], space.ops.index(SKIP)])
                          for op, s, d in limited.groups[name].edges if op == SKIP)
            every = sorted(float(weights[g, edge_of[(s, d)], space.ops.index(SKIP)])
                           for op, s, d in plain.groups[name].edges if op == SKIP)
            assert kept == every[-2:]  # the two strongest stay
