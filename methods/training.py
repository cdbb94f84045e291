"""The training kit every method and ``nasbench evaluate`` share.

Optimiser and schedule settings are config *blocks*: small dataclasses that a method's config
inherits, so that every method spells the same setting the same way (``w_lr``, ``a_lr``, ...)
and a sweep grid over ``w_lr`` means one thing for all of them. The builders turn a block into
a torch optimiser; schedules are closed forms of the epoch, so a resumed run sets exactly the
learning rate an uninterrupted one would.

The Pareto helper ranks points by non-domination with pymoo's sorting (one implementation for
the methods, the plots and the tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SCHEDULES = ("cosine", "constant")


@dataclass
class WeightSGD:
    """The network weights: SGD with momentum, weight decay, a gradient-norm clip, and a
    schedule from ``w_lr`` down to ``w_lr_min`` (DARTS's CIFAR settings by default)."""

    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    #: ``cosine`` (DARTS) or ``constant`` (GOLD-NAS)
    w_schedule: str = "cosine"

    def check_weights(self) -> None:
        if self.w_schedule not in SCHEDULES:
            raise ValueError(f"w_schedule must be one of {', '.join(SCHEDULES)}, "
                             f"got {self.w_schedule!r}")
        if self.w_lr <= 0 or self.w_lr_min < 0 or self.grad_clip <= 0:
            raise ValueError("w_lr and grad_clip must be positive, w_lr_min non-negative")


@dataclass
class AlphaAdam:
    """The architecture parameters: Adam (DARTS's settings by default).

    ``alpha_budget_steps``: when set, the alpha learning rate is scaled by
    ``alpha_budget_steps / (alpha steps this run makes)``. Adam moves a parameter by about
    ``lr`` per step in a consistent gradient direction, so the scaled rate gives a short run
    the same total alpha displacement as a run of ``alpha_budget_steps`` steps at ``a_lr``
    (the DARTS paper's search makes 50 epochs x 391 steps = 19,550). None keeps ``a_lr``.
    """

    a_lr: float = 3e-4
    a_betas: tuple[float, float] = (0.5, 0.999)
    a_weight_decay: float = 1e-3
    alpha_budget_steps: int | None = None

    def check_alphas(self) -> None:
        if self.a_lr <= 0:
            raise ValueError(f"a_lr must be positive, got {self.a_lr}")
        if self.alpha_budget_steps is not None and self.alpha_budget_steps < 1:
            raise ValueError(f"alpha_budget_steps must be positive, got "
                             f"{self.alpha_budget_steps}")

    def alpha_lr(self, steps: int) -> float:
        """``a_lr``, scaled to the run's ``steps`` alpha steps when a budget is set."""
        if self.alpha_budget_steps is None or steps <= 0:
            return self.a_lr
        return self.a_lr * self.alpha_budget_steps / steps


def sgd(params: Iterable[torch.Tensor], lr: float, momentum: float,
        weight_decay: float) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def weight_optimizer(module: nn.Module, cfg: WeightSGD) -> torch.optim.SGD:
    return sgd(module.parameters(), cfg.w_lr, cfg.w_momentum, cfg.w_weight_decay)


def alpha_adam(params: Iterable[torch.Tensor], cfg: AlphaAdam, steps: int) -> torch.optim.Adam:
    """Adam over the alphas at :meth:`AlphaAdam.alpha_lr` for a run of ``steps`` alpha steps."""
    return torch.optim.Adam(params, lr=cfg.alpha_lr(steps), betas=cfg.a_betas,
                            weight_decay=cfg.a_weight_decay)


def cosine(progress: float, peak: float, floor: float) -> float:
    """Cosine annealing from ``peak`` (progress 0) to ``floor`` (progress 1)."""
    return floor + (peak - floor) * (1 + math.cos(math.pi * progress)) / 2


def scheduled_lr(cfg: WeightSGD, epoch: int, epochs: int, peak: float | None = None) -> float:
    """The weights' learning rate of ``epoch`` (0-based) of ``epochs``."""
    peak = cfg.w_lr if peak is None else peak
    if cfg.w_schedule == "constant":
        return peak
    return cosine(epoch / max(epochs, 1), peak, cfg.w_lr_min)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_and_step(module: nn.Module, optimizer: torch.optim.Optimizer, clip: float) -> None:
    nn.utils.clip_grad_norm_(module.parameters(), clip)
    optimizer.step()


# -- Pareto ------------------------------------------------------------------------------------
def nondominated_ranks(objectives: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """Non-domination rank (0 = the Pareto front) of each row; every column is minimised."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    values = np.asarray(objectives, dtype=float)
    if len(values) == 0:
        return np.zeros(0, dtype=int)
    _, rank = NonDominatedSorting().do(values.reshape(len(values), -1), return_rank=True)
    return np.asarray(rank, dtype=int)


def pareto_front(accuracy: Sequence[float], cost: Sequence[float]) -> list[int]:
    """Indices of the (accuracy up, cost down) points no other point beats on both.

    Exact duplicates are all on the front (none dominates the other).
    """
    acc = np.asarray(accuracy, dtype=float)
    if len(acc) == 0:
        return []
    ranks = nondominated_ranks(np.stack([-acc, np.asarray(cost, dtype=float)], axis=1))
    return [int(i) for i in np.flatnonzero(ranks == 0)]


__all__ = ["SCHEDULES", "AlphaAdam", "WeightSGD", "alpha_adam", "clip_and_step", "cosine",
           "nondominated_ranks", "pareto_front", "scheduled_lr", "set_lr", "sgd",
           "weight_optimizer"]
