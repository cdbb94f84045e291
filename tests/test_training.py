"""The training kit: config blocks, schedules, the Pareto helper."""

from __future__ import annotations

import pytest
import torch
from nasbench_suite.methods import get_method, list_methods
from nasbench_suite.methods.training import (
    AlphaAdam,
    WeightSGD,
    cosine,
    nondominated_ranks,
    pareto_front,
    scheduled_lr,
)


def test_pareto_front_keeps_ties_and_drops_dominated_points() -> None:
    points = [(0.5, 10.0), (0.6, 12.0), (0.4, 11.0), (0.6, 12.0), (0.7, 20.0), (0.5, 9.0)]
    acc, cost = zip(*points, strict=True)
    assert pareto_front(list(acc), list(cost)) == [1, 3, 4, 5]
    assert pareto_front([], []) == []


def test_nondominated_ranks_of_layers() -> None:
    ranks = nondominated_ranks([[0, 0], [1, 1], [2, 2], [0, 1]])
    assert ranks.tolist() == [0, 2, 3, 1]


def test_cosine_and_constant_schedules_are_functions_of_the_epoch() -> None:
    cfg = WeightSGD(w_lr=0.1, w_lr_min=0.0)
    assert scheduled_lr(cfg, 0, 10) == pytest.approx(0.1)
    assert scheduled_lr(cfg, 5, 10) == pytest.approx(0.05)
    assert cosine(1.0, 0.1, 0.01) == pytest.approx(0.01)
    constant = WeightSGD(w_lr=0.1, w_schedule="constant")
    assert scheduled_lr(constant, 7, 10) == 0.1
    with pytest.raises(ValueError, match="w_schedule"):
        WeightSGD(w_schedule="step").check_weights()


def test_alpha_budget_scales_the_learning_rate_to_the_run() -> None:
    block = AlphaAdam(a_lr=3e-4, alpha_budget_steps=19_550)
    assert block.alpha_lr(19_550) == pytest.approx(3e-4)
    assert block.alpha_lr(110) == pytest.approx(3e-4 * 19_550 / 110)
    assert AlphaAdam(a_lr=3e-4).alpha_lr(110) == 3e-4


@pytest.mark.parametrize("name", list_methods())
def test_every_method_spells_weight_settings_the_same_way(name: str) -> None:
    """One block, one spelling: a sweep over w_lr means the same thing for every method."""
    cfg = get_method(name).Config()
    assert isinstance(cfg, WeightSGD)
    assert cfg.w_lr > 0 and cfg.grad_clip > 0
    params = [torch.nn.Parameter(torch.zeros(2))]
    from nasbench_suite.methods.training import sgd

    assert sgd(params, cfg.w_lr, cfg.w_momentum, cfg.w_weight_decay).defaults["lr"] == cfg.w_lr
