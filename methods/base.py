"""The contract between the search loop and a method adapter.

The loop owns data, device, seeds, epochs, timing, metrics, progress and checkpoints. A
method owns its architecture parameters, how they become mixing weights and masks, one
search step, its end-of-epoch events, the genotype(s) it returns, and its checkpoint state.
It sees the space only through :class:`spaces.Space`'s public interface.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from nasbench_suite.hessian import dominant_eigenvalue
from spaces import Genotype, Space
from spaces.supernet import SuperNet

Batch = tuple[torch.Tensor, torch.Tensor]


#: Held-out accuracy of a genotype's network with weights inherited from the supernet as it
#: is now, batch-norm statistics recalibrated on training batches (nasbench_suite.inherit).
GenotypeScorer = Callable[[Genotype], float]


@dataclass(frozen=True)
class SearchContext:
    """What the loop tells a method about the run it is part of."""

    device: torch.device
    epochs: int
    steps_per_epoch: int
    seed: int
    amp: bool = False
    score_genotype: GenotypeScorer | None = None


@dataclass
class MethodConfig:
    """Base of every method's hyper-parameters; subclasses add typed fields with defaults."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Method:
    """Base class of the method adapters.

    Class attributes declare what the method needs: ``spaces`` it can drive, whether it is
    ``bilevel`` (the loop then splits the training images into train and val halves), and
    whether its supernet carries an auxiliary head.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    spaces: ClassVar[frozenset[str]] = frozenset({"restricted", "relaxed"})
    bilevel: ClassVar[bool] = False

    def __init__(self, space: Space, supernet: SuperNet, cfg: MethodConfig,
                 ctx: SearchContext) -> None:
        self.space = space
        self.supernet = supernet
        self.cfg = cfg
        self.ctx = ctx
        self.layout = space.layout
        self.generator = torch.Generator().manual_seed(ctx.seed + 7919)

    @classmethod
    def check_space(cls, space_name: str) -> None:
        if space_name not in cls.spaces:
            raise ValueError(f"method {cls.name!r} cannot search the {space_name!r} space "
                             f"(it supports: {', '.join(sorted(cls.spaces))})")

    @classmethod
    def uses_auxiliary(cls, cfg: MethodConfig) -> bool:
        return float(getattr(cfg, "auxiliary_weight", 0.0)) > 0

    # -- what a method implements ----------------------------------------------------------
    def mixing(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixing weights (G, E, O) on the device and the active mask (G, E, O) on the CPU."""
        raise NotImplementedError

    def begin_epoch(self, epoch: int) -> None:
        """Called before the first step of ``epoch`` (learning-rate schedules)."""

    def step(self, batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        """One search step; returns at least ``loss`` and ``acc`` of the weight phase."""
        raise NotImplementedError

    def end_epoch(self, epoch: int) -> list[dict[str, Any]]:
        """Prune, grow, evolve; each change an event dict with a ``kind``."""
        return []

    def finished(self) -> bool:
        """True when the method's own stopping rule says the search is over."""
        return False

    def genotype(self) -> Genotype:
        raise NotImplementedError

    def arch_weights(self) -> torch.Tensor:
        """The architecture weights to log each epoch (G, E, O), on the CPU."""
        return self.mixing()[0].detach().cpu()

    def epoch_metrics(self) -> dict[str, float]:
        """Extra per-epoch metrics of the method (lambda, learning rates, ...)."""
        return {}

    def progress(self) -> dict[str, float]:
        """A few numbers for the progress bar."""
        return {}

    def series(self) -> list[dict[str, Any]]:
        """Recorded architectures for methods that return a series (empty otherwise)."""
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    # -- shared helpers --------------------------------------------------------------------
    def arch_parameters(self) -> list[torch.Tensor]:
        """The architecture parameters the Hessian is taken with respect to."""
        alpha = getattr(self, "alpha", None)
        return [alpha] if isinstance(alpha, torch.Tensor) else []

    def hessian_eigenvalue(self, batch: Batch, epoch: int, iters: int) -> float:
        """Dominant eigenvalue of the Hessian of ``batch``'s cross-entropy w.r.t. the
        architecture parameters (RobustDARTS's sharpness measure), by power iteration.

        The forward is in train mode, as in a search step, but batch-norm running statistics
        are put back afterwards: measuring must not change the search.
        """
        buffers = [b.detach().clone() for b in self.supernet.buffers()]

        def loss() -> torch.Tensor:
            weights, active = self.mixing()
            return self.forward_loss(batch, weights, active)[0]

        self.supernet.train()
        try:
            return dominant_eigenvalue(
                loss, self.arch_parameters(), iters=iters,
                generator=torch.Generator().manual_seed(self.ctx.seed * 1_000 + epoch))
        finally:
            with torch.no_grad():
                for buf, saved in zip(self.supernet.buffers(), buffers, strict=True):
                    buf.copy_(saved)

    def forward_loss(self, batch: Batch, weights: torch.Tensor, active: torch.Tensor,
                     aux_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy (plus the weighted auxiliary loss) and the logits of one batch."""
        x, y = batch
        with torch.autocast(self.ctx.device.type, enabled=self.ctx.amp):
            logits, aux = self.supernet(x, weights, active)
            loss = F.cross_entropy(logits, y)
            if aux is not None and aux_weight > 0:
                loss = loss + aux_weight * F.cross_entropy(aux, y)
        return loss, logits


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean())
