"""DARTS (Liu, Simonyan, Yang; ICLR 2019): softmax relaxation, bi-level optimisation.

Follows quark0/darts: the architecture step comes first, on a validation batch, then the
weight step on a training batch. First order takes the alpha gradient at the current
weights; second order at the weights after one virtual SGD step (with the optimiser's
momentum and weight decay), corrected by a finite-difference Hessian-vector product.

In a space whose derived edges may keep several ops (the relaxed GOLD-NAS space: per-cell
alphas, no top-2 rule) each edge keeps its strongest op, or, with ``relaxed_threshold``, every
op whose softmax weight exceeds it.

The unrolled (second-order) forward runs on copies of the batch-norm buffers: the reference
code evaluates the unrolled model as a separate network, so the live supernet's running
statistics see four updates per step (the train loss at w, the two finite-difference passes
and the weight step), not five.

Two remedies from the literature are options (methods/darts_rules.py): ``early_stop``
(RobustDARTS's DARTS-ES as its public code states it: stop when the local average of the
Hessian eigenvalue grows by ``es_factor``, return an earlier architecture; it needs the loop's
eigenvalue every ``es_every`` epochs, or every epoch: ``hessian_every`` 1 or 2) and
``max_skips`` (P-DARTS: at most that many skip connections per normal cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from nasbench_suite.methods.base import Batch, Method, MethodConfig, SearchContext, accuracy
from nasbench_suite.methods.darts_rules import early_stop_epoch, limit_skips
from nasbench_suite.methods.training import (
    AlphaAdam,
    WeightSGD,
    alpha_adam,
    clip_and_step,
    scheduled_lr,
    set_lr,
    weight_optimizer,
)
from nasbench_suite.spaces import Genotype, Space
from nasbench_suite.spaces.supernet import SuperNet
from torch import nn
from torch.func import functional_call


@dataclass
class DartsConfig(MethodConfig, AlphaAdam, WeightSGD):
    """DARTS's CIFAR-10 search settings (quark0/darts): the training kit's defaults."""

    order: int = 1
    init_scale: float = 1e-3
    #: finite-difference step of the Hessian-vector product: r / ||dL_val/dw'|| (DARTS: 0.01)
    hvp_r: float = 0.01
    #: spaces whose edges may keep several ops: keep every op whose softmax weight exceeds
    #: this (None: each edge's strongest op)
    relaxed_threshold: float | None = None
    #: DARTS-ES (RobustDARTS's src/utils.py, methods/darts_rules.py): eigenvalue every
    #: es_every epochs, local averages over es_window measurements, a stop once the newest
    #: exceeds es_factor x the one es_delta measurements before (not before es_start_epoch)
    early_stop: bool = False
    es_every: int = 2
    es_window: int = 5
    es_factor: float = 1.3
    es_start_epoch: int = 10
    es_delta: int = 4
    #: P-DARTS: at most this many skip connections per normal cell (None: no limit)
    max_skips: int | None = None
    #: the parameters of the earlier DARTS-ES rule, which did not follow RobustDARTS's code:
    #: older runs' configs hold them; they are dropped when such a run is read or resumed
    RETIRED: ClassVar[frozenset[str]] = frozenset({"es_k", "es_ratio"})

    def __post_init__(self) -> None:
        if self.order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {self.order}")
        if min(self.es_every, self.es_window, self.es_delta) < 1 or self.es_factor <= 1 \
                or self.es_start_epoch < 0:
            raise ValueError("es_every, es_window and es_delta must be >= 1, es_factor > 1 "
                             "and es_start_epoch >= 0")
        if self.max_skips is not None and self.max_skips < 0:
            raise ValueError(f"max_skips must be >= 0, got {self.max_skips}")
        self.check_weights()
        self.check_alphas()


class Darts(Method):
    name = "darts"
    description = "DARTS: softmax over each edge's ops, bi-level, 1st or 2nd order"
    Config = DartsConfig
    bilevel = True
    needs_heldout = True
    cfg: DartsConfig

    def __init__(self, space: Space, supernet: SuperNet, cfg: DartsConfig,
                 ctx: SearchContext) -> None:
        super().__init__(space, supernet, cfg, ctx)
        init = cfg.init_scale * torch.randn(self.layout.shape, generator=self.generator)
        self.alpha = nn.Parameter(init.to(ctx.device))
        self.active = self.layout.full_mask()
        self.w_opt = weight_optimizer(supernet, cfg)
        self.a_opt = alpha_adam([self.alpha], cfg, self.alpha_steps(ctx.epochs,
                                                                    ctx.steps_per_epoch))
        # DARTS-ES: the eigenvalue per epoch, the alphas of recent epochs, the stop
        self.eigenvalues: list[tuple[int, float]] = []
        self.snapshots: dict[int, torch.Tensor] = {}
        self.stopped_at: int | None = None
        self.returned_epoch: int | None = None

    def mixing(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.softmax(self.alpha, dim=-1), self.active

    def begin_epoch(self, epoch: int) -> None:
        set_lr(self.w_opt, scheduled_lr(self.cfg, epoch, self.ctx.epochs))

    @property
    def w_lr(self) -> float:
        return float(self.w_opt.param_groups[0]["lr"])

    def step(self, batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        assert val_batch is not None, "DARTS is bi-level: it needs a validation batch"
        self.supernet.train()
        if self.cfg.order == 1:
            weights, active = self.mixing()
            val_loss, _ = self.forward_loss(val_batch, weights, active)
            # Only the alpha gradient: the weight gradients would be thrown away.
            (grad,) = torch.autograd.grad(val_loss, [self.alpha])
        else:
            val_loss, grad = self._unrolled_alpha_grad(batch, val_batch)
        self.a_opt.zero_grad(set_to_none=True)
        self.alpha.grad = grad
        self.a_opt.step()

        weights, active = self.mixing()
        self.w_opt.zero_grad(set_to_none=True)
        loss, logits = self.forward_loss(batch, weights.detach(), active)
        loss.backward()
        clip_and_step(self.supernet, self.w_opt, self.cfg.grad_clip)
        return {"loss": float(loss.detach()), "acc": accuracy(logits, batch[1]),
                "val_loss": float(val_loss.detach())}

    def _unrolled_alpha_grad(self, batch: Batch, val_batch: Batch) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
        """DARTS 2nd order: dL_val(w', a)/da - eta * (d2 L_train / da dw) dL_val(w', a)/dw'."""
        names, params = zip(*[(n, p) for n, p in self.supernet.named_parameters()], strict=True)
        eta, cfg = self.w_lr, self.cfg
        weights, active = self.mixing()
        train_loss, _ = self.forward_loss(batch, weights.detach(), active)
        grads = torch.autograd.grad(train_loss, params, allow_unused=True)
        unrolled = {}
        for n, p, g in zip(names, params, grads, strict=True):
            g = torch.zeros_like(p) if g is None else g
            buf = self.w_opt.state.get(p, {}).get("momentum_buffer")
            moment = cfg.w_momentum * buf if buf is not None else torch.zeros_like(p)
            unrolled[n] = (p - eta * (moment + g + cfg.w_weight_decay * p)).detach()
            unrolled[n].requires_grad_(True)
        # The unrolled network is a separate network in the reference code: its batch norms
        # update copies of the buffers, not the live supernet's.
        state = {**{n: b.detach().clone() for n, b in self.supernet.named_buffers()},
                 **unrolled}
        weights, active = self.mixing()
        with self.autocast():
            logits, _ = functional_call(self.supernet, state, (val_batch[0], weights, active))
            val_loss = nn.functional.cross_entropy(logits, val_batch[1])
        grads = torch.autograd.grad(val_loss, [self.alpha, *unrolled.values()],
                                    allow_unused=True)
        d_alpha = grads[0]
        vector = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads[1:],
                                                                              strict=True)]
        return val_loss.detach(), d_alpha - eta * self._hessian_vector(params, vector, batch)

    def _hessian_vector(self, params: tuple[torch.Tensor, ...], vector: list[torch.Tensor],
                        batch: Batch) -> torch.Tensor:
        """(dL_train(w + R v)/da - dL_train(w - R v)/da) / 2R with R = r / ||v||."""
        norm = torch.sqrt(sum((v * v).sum() for v in vector))  # type: ignore[arg-type]
        radius = self.cfg.hvp_r / (float(norm) + 1e-12)
        grads = []
        for sign in (1.0, -2.0):
            with torch.no_grad():
                for p, v in zip(params, vector, strict=True):
                    p.add_(v, alpha=sign * radius)
            weights, active = self.mixing()
            loss, _ = self.forward_loss(batch, weights, active)
            grads.append(torch.autograd.grad(loss, [self.alpha])[0])
        with torch.no_grad():
            for p, v in zip(params, vector, strict=True):
                p.add_(v, alpha=radius)
        return (grads[0] - grads[1]) / (2 * radius)

    def observe(self, epoch: int, metrics: dict[str, Any]) -> None:
        """DARTS-ES: record the epoch's eigenvalue and alphas; stop when the rule fires."""
        if not self.cfg.early_stop or self.stopped_at is not None:
            return
        self.snapshots[epoch] = self.alpha.detach().cpu().clone()
        if metrics.get("hessian_eig") is not None:
            self.eigenvalues.append((epoch, float(metrics["hessian_eig"])))
        stop = early_stop_rule(self.eigenvalues, self.ctx.epochs - 1, self.cfg)
        if stop is not None:
            self.stopped_at, self.returned_epoch = stop
        # keep only the alphas an early stop could still return: the rule looks back
        # es_delta + es_window // 2 measurements of es_every epochs
        reach = self.cfg.es_every * (self.cfg.es_delta + self.cfg.es_window // 2)
        keep = self.returned_epoch if self.returned_epoch is not None else epoch - reach
        self.snapshots = {e: a for e, a in self.snapshots.items() if e >= keep}

    def finished(self) -> bool:
        return self.stopped_at is not None

    def genotype(self) -> Genotype:
        alpha = (self.snapshots[self.returned_epoch] if self.returned_epoch is not None
                 else self.alpha.detach())
        return self.derive(torch.softmax(alpha, dim=-1).cpu())

    def derive(self, weights: torch.Tensor) -> Genotype:
        """The space's derivation of softmax ``weights``, with the config's options."""
        keep = None
        if self.caps.multi_op_edges and self.cfg.relaxed_threshold is not None:
            keep = weights > self.cfg.relaxed_threshold
        if self.cfg.max_skips is not None:
            return limit_skips(self.space, weights, self.cfg.max_skips, keep)
        return self.space.derive(weights, keep)

    def epoch_metrics(self) -> dict[str, float]:
        out = {"w_lr": self.w_lr, "a_lr": float(self.a_opt.param_groups[0]["lr"])}
        if self.stopped_at is not None:
            out["es_stopped_at"] = float(self.stopped_at)
            out["es_returned_epoch"] = float(self.returned_epoch or 0)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha.detach().cpu(),
                "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(),
                "eigenvalues": list(self.eigenvalues), "snapshots": dict(self.snapshots),
                "stopped_at": self.stopped_at, "returned_epoch": self.returned_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.eigenvalues = [(int(e), float(v)) for e, v in state.get("eigenvalues", [])]
        self.snapshots = {int(e): a for e, a in state.get("snapshots", {}).items()}
        self.stopped_at = state.get("stopped_at")
        self.returned_epoch = state.get("returned_epoch")


def early_stop_rule(eigenvalues: list[tuple[int, float]], last: int,
                    cfg: DartsConfig) -> tuple[int, int] | None:
    """DARTS-ES with a config's parameters: (stopped at, returned epoch) or None."""
    return early_stop_epoch(eigenvalues, last, cfg.es_every, cfg.es_window, cfg.es_factor,
                            cfg.es_start_epoch, cfg.es_delta)
