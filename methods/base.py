"""The contract between the search loop and a method adapter.

The loop owns data, device, seeds, epochs, timing, metrics, progress and checkpoints. A
method owns its architecture parameters, how they become mixing weights and masks, one
search step, its end-of-epoch events, the genotype(s) it returns, and its checkpoint state.
It sees the space only through :class:`spaces.Space`'s public interface and its
:class:`spaces.Capabilities`, never its name or its supernet's modules, and imports nothing
from the suite's core (``nasbench_suite``): a bad setting is a ``ValueError``.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from nasbench_suite.methods.hessian import Eigenvalue, largest_eigenvalue
from nasbench_suite.spaces import Capabilities, Genotype, Space
from nasbench_suite.spaces.supernet import SuperNet

Batch = tuple[torch.Tensor, torch.Tensor]

#: Accuracy of a genotype's network with weights inherited from the supernet as it is now,
#: batch-norm statistics recalibrated on training batches (nasbench_suite.training.inherit).
GenotypeScorer = Callable[[Genotype], float]

#: ``--amp``'s precision. bfloat16 has float32's exponent range, so gradients need no loss
#: scaling; float16 (CUDA autocast's default when no dtype is given) would need a GradScaler
#: around every backward and optimiser step, which no method's step has.
AMP_DTYPE = torch.bfloat16


@dataclass(frozen=True)
class SearchContext:
    """What the loop tells a method about the run it is part of.

    Two scorers, on two different splits, so that a number a method reports is never the
    number it chose by:

    * ``report_accuracy``: the run's fixed scoring split, for numbers that are only reported
      (a recorded architecture's accuracy). A method must never choose by it.
    * ``choice_accuracy``: the method's own held-out split (methods with ``needs_heldout``),
      for choices (PAD-NAS's evolutionary search, NSE's front).
    """

    device: torch.device
    epochs: int
    steps_per_epoch: int
    seed: int
    amp: bool = False
    report_accuracy: GenotypeScorer | None = None
    choice_accuracy: GenotypeScorer | None = None

    def report(self, genotype: Genotype) -> float | None:
        return None if self.report_accuracy is None else float(self.report_accuracy(genotype))

    def choose(self, genotype: Genotype) -> float:
        if self.choice_accuracy is None:
            raise RuntimeError("this method chooses by held-out accuracy: the search context "
                               "must provide choice_accuracy (set needs_heldout)")
        return float(self.choice_accuracy(genotype))


@dataclass
class MethodConfig:
    """Base of every method's hyper-parameters; subclasses add typed fields with defaults
    (and the training kit's blocks, nasbench_suite.methods.training)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Method(abc.ABC):
    """Base class of the method adapters.

    Class attributes declare what the method needs: ``bilevel`` (alternating weight and
    architecture steps on two splits: the loop passes a validation batch to every step),
    ``needs_heldout`` (the loop holds out a validation split: every bilevel method, and
    methods that choose architectures by held-out accuracy), and whether its supernet
    carries an auxiliary head (:meth:`uses_auxiliary`).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    bilevel: ClassVar[bool] = False
    needs_heldout: ClassVar[bool] = False
    #: whether the supernet as searched differs from the derived network, so that the
    #: accuracy gap between them measures something (a single-path method's is its path)
    measures_gap: ClassVar[bool] = True

    def __init__(self, space: Space, supernet: SuperNet, cfg: MethodConfig,
                 ctx: SearchContext) -> None:
        self.space = space
        self.caps: Capabilities = space.capabilities
        self.supernet = supernet
        self.cfg = cfg
        self.ctx = ctx
        self.layout = space.layout
        self.generator = torch.Generator().manual_seed(ctx.seed + 7919)
        self._eigenvalue: Eigenvalue | None = None

    @classmethod
    def unsupported(cls, caps: Capabilities) -> str | None:
        """Why this method cannot search a space with ``caps`` (None: it can). Checked before
        any folder is written; a method that needs more (a pool larger than K) raises
        ValueError in its constructor."""
        return None

    @classmethod
    def unrunnable(cls, hp: MethodConfig, epochs: int) -> str | None:
        """Why these hyper-parameters cannot make a run of ``epochs`` epochs (None: they
        can). Checked with the config, so a sweep refuses such a trial before it writes any
        folder instead of failing it at its start."""
        return None

    @classmethod
    def uses_auxiliary(cls, cfg: MethodConfig) -> bool:
        return float(getattr(cfg, "auxiliary_weight", 0.0)) > 0

    @classmethod
    def alpha_steps(cls, epochs: int, steps_per_epoch: int) -> int:
        """How many architecture steps a run makes (for an alpha budget, training.AlphaAdam)."""
        return epochs * steps_per_epoch

    # -- what a method implements ----------------------------------------------------------
    @abc.abstractmethod
    def mixing(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixing weights (G, E, O) on the device and the active mask (G, E, O) on the CPU:
        the supernet as the method searches it."""

    @abc.abstractmethod
    def step(self, batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        """One search step; returns at least ``loss`` and ``acc`` of the weight phase."""

    @abc.abstractmethod
    def genotype(self) -> Genotype:
        """The architecture the method would return now."""

    def begin_epoch(self, epoch: int) -> None:  # noqa: B027 (an optional hook)
        """Called before the first step of ``epoch`` (learning-rate schedules)."""

    def end_epoch(self, epoch: int) -> list[dict[str, Any]]:
        """Prune, grow, evolve; each change an event dict with a ``kind``."""
        return []

    def finished(self) -> bool:
        """True when the method's own stopping rule says the search is over."""
        return False

    def keep_checkpoint(self, epoch: int) -> str | None:
        """A name if the run's state after ``epoch`` should be kept beside the newest
        checkpoint (PAD-NAS keeps one per stage), else None."""
        return None

    def warnings(self) -> list[str]:
        """What a reader of the run should know (an edge that never learned, ...): logged at
        the end and kept in the summary."""
        return []

    def observe(self, epoch: int, metrics: dict[str, Any]) -> None:  # noqa: B027 (a hook)
        """The epoch's metrics as the loop measured them (the Hessian eigenvalue, ...), for
        rules that use them (DARTS-ES); called after end_epoch."""

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

    def hessian_loss(self, batch: Batch) -> torch.Tensor:
        """The search loss whose Hessian w.r.t. the alphas is measured: cross-entropy of the
        supernet as the method mixes it."""
        weights, active = self.mixing()
        return self.forward_loss(batch, weights, active)[0]

    def hessian_eigenvalue(self, batches: list[Batch], iters: int,
                          tol: float = 1e-4) -> Eigenvalue:
        """The largest algebraic eigenvalue of the Hessian of the search loss (mean over
        ``batches``, fixed by the loop) w.r.t. the architecture parameters: RobustDARTS's
        sharpness measure (nasbench_suite.methods.hessian).

        The forward is in train mode, as in a search step, but batch-norm running statistics
        are put back afterwards: measuring must not change the search.
        """
        buffers = [b.detach().clone() for b in self.supernet.buffers()]
        was_training = self.supernet.training

        def loss() -> torch.Tensor:
            total = sum(self.hessian_loss(b) for b in batches)
            return total / len(batches)  # type: ignore[operator]

        self.supernet.train()
        try:
            return largest_eigenvalue(loss, self.arch_parameters(), iters=iters,
                                      seed=self.ctx.seed, tol=tol)
        finally:
            with torch.no_grad():
                for buf, saved in zip(self.supernet.buffers(), buffers, strict=True):
                    buf.copy_(saved)
            self.supernet.train(was_training)

    def autocast(self) -> torch.autocast:
        """Mixed precision (:data:`AMP_DTYPE`) for a forward where the run asked for AMP."""
        return torch.autocast(self.ctx.device.type, dtype=AMP_DTYPE, enabled=self.ctx.amp)

    def forward_loss(self, batch: Batch, weights: torch.Tensor, active: torch.Tensor,
                     aux_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy (plus the weighted auxiliary loss) and the logits of one batch."""
        x, y = batch
        with self.autocast():
            logits, aux = self.supernet(x, weights, active)
            loss = F.cross_entropy(logits, y)
            if aux is not None and aux_weight > 0:
                loss = loss + aux_weight * F.cross_entropy(aux, y)
        return loss, logits


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(-1) == y).float().mean())
