"""DARTS-ES and P-DARTS's skip limit: the rules, live and replayed."""

from __future__ import annotations

import torch
from nasbench_suite.methods import SearchContext, get_method
from nasbench_suite.methods.darts_rules import SKIP, early_stop_epoch, limit_skips, normal_skips
from nasbench_suite.spaces import NetShape, create_space

SHAPE = NetShape(4, 3, 1, 10, 8)


def test_early_stop_follows_robustdarts_code() -> None:
    """RobustDARTS's EVLocalAvg with its defaults (every 2 epochs, window 5, factor 1.3, no
    stop considered before epoch 10, delta 4): a stop at epoch e returns epoch e - 12."""
    flat = [(e, 1.0) for e in range(0, 50, 2)]
    assert early_stop_epoch(flat, last=49) is None
    # the eigenvalue doubles from epoch 24 on; the local average of the measurement at epoch
    # e (the 5 newest measurements) first exceeds 1.3x the one 4 measurements before at
    # e = 26 (mean(1, 1, 1, 2, 2) = 1.4 > 1.3), labelled epoch 22; the earlier one is
    # labelled 14 >= 10, so the search stops at 26 and returns epoch 14
    rising = [(e, 1.0 if e < 24 else 2.0) for e in range(0, 50, 2)]
    assert early_stop_epoch(rising, last=49) == (26, 14)
    # an early jump: nothing is considered until the returned epoch reaches 10
    early = [(e, 1.0 if e < 4 else 2.0) for e in range(0, 50, 2)]
    assert early_stop_epoch(early, last=49) is None
    # measured every epoch: replayed on the even epochs only, the same answer
    every = [(e, 1.0 if e < 24 else 2.0) for e in range(50)]
    assert early_stop_epoch(every, last=49) == (26, 14)
    # the search's last epoch is no stopping point
    assert early_stop_epoch([(e, v) for e, v in rising if e <= 26], last=26) is None
    # parameters as options: a looser factor never fires on a doubling
    assert early_stop_epoch(rising, last=49, factor=2.5) is None


def _darts(space_name: str, **hp) -> object:  # type: ignore[no-untyped-def]
    space = create_space(space_name, SHAPE)
    cls = get_method("darts")
    return cls(space, space.supernet(), cls.Config(**hp),
               SearchContext(torch.device("cpu"), 10, 1, seed=0))


def test_live_early_stop_returns_the_rules_earlier_architecture() -> None:
    method = _darts("restricted", early_stop=True, es_every=1, es_window=1, es_delta=2,
                    es_start_epoch=0)
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
    again = _darts("restricted", early_stop=True, es_every=1, es_window=1, es_delta=2,
                   es_start_epoch=0)
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
