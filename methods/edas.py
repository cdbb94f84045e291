"""EDAS (Hong, Ahn, Kim; arXiv 1912.01237): relax one edge, clamp every other edge.

Only the abstract is public. It says: sample a single edge, relax its variables, clamp the
variables of every other edge to zero or one, so that the supernet stays (almost) a discrete
network and pruning it by the derivation rule costs no accuracy; "several regularization
methods" help exploration. Everything else is a choice of this suite, each a config value:

* ``edge_sampling``: ``uniform`` (default: every step draws its edge uniformly from all
  (group, edge) pairs of the layout) or ``round_robin`` (a seeded permutation of all pairs,
  visited in turn, reshuffled after each pass, so each pair is visited once per pass).
* ``edges_per_step``: 1 (default, the abstract's single edge). The edge is drawn from the
  whole layout, not one per group: with shared groups the normal and the reduction cell
  compete for the same step, with one group per cell every cell does.
* ``optimisation``: ``bilevel`` (default; DARTS first order: an alpha step on a validation
  batch, then a weight step on a training batch, DARTS's optimisers and schedule) or
  ``one_level`` (one forward/backward on the training batch updates both). The loop holds
  out a validation split for every EDAS run (``bilevel`` is a class attribute); in
  ``one_level`` the validation half is left unused.
* Edges of one op (DARTS's space): the relaxed edge mixes its ops with a softmax. Edges that
  may keep several ops (GOLD-NAS's space, ``Capabilities.multi_op_edges``): each op has a
  sigmoid gate, and a clamped gate is on when sigmoid(alpha) >= 0.5, i.e. alpha >= 0
  (GOLD-NAS's gates, clamped), which is also that space's derivation.
* ``clamp`` (edges of one op): ``argmax`` (default, as the abstract states it: each other
  edge runs only the op with the largest alpha; an edge whose argmax is ``none`` runs
  nothing) or ``derived`` (the other edges are exactly the derived DARTS cell: best non-zero
  op, top-2 edges per node; the supernet then differs from the derived network only on the
  relaxed edge, the abstract's "no drop after pruning" by construction). With sigmoid gates
  both mean the same.
* A node must keep an input. If every clamped op into a node is off (every argmax is
  ``none``, or every gate below 0.5), the strongest non-zero op into that node stays on: the
  multi-op derivation rule, applied to the clamped supernet too.
* Regularisers, all off by default: ``explore_eps`` (in a weight step each clamped edge runs,
  with this probability, one uniformly drawn non-zero op instead: weight sharing for ops that
  are not the argmax), ``entropy_weight`` (subtracts this times the relaxed edge's entropy
  from the architecture loss, keeping it undecided longer), ``temperature`` (of the relaxed
  edge's softmax or sigmoid).

Only the sampled edge's alphas get a gradient: the clamped rows of the mixing weights are
constants, and every (group, edge) has its own alpha parameter, so Adam, which skips
parameters without a gradient, leaves the other edges untouched (no momentum drift, no
weight decay): a lazy Adam whose step count is per edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from methods.base import Batch, Method, MethodConfig, SearchContext, accuracy
from methods.training import (
    AlphaAdam,
    WeightSGD,
    alpha_adam,
    clip_and_step,
    scheduled_lr,
    set_lr,
    weight_optimizer,
)
from spaces import Genotype, Space
from spaces.supernet import SuperNet

EDGE_SAMPLING = ("uniform", "round_robin")
OPTIMISATION = ("bilevel", "one_level")
CLAMP = ("argmax", "derived")


@dataclass
class EdasConfig(MethodConfig, AlphaAdam, WeightSGD):
    """DARTS's optimisers and schedule (the training kit's blocks) plus EDAS's choices."""

    edge_sampling: str = "uniform"
    edges_per_step: int = 1
    optimisation: str = "bilevel"
    clamp: str = "argmax"
    init_scale: float = 1e-3
    #: regulariser: chance that a clamped edge runs a random non-zero op in a weight step
    explore_eps: float = 0.0
    #: regulariser: weight of the relaxed edge's entropy, subtracted from the alpha loss
    entropy_weight: float = 0.0
    #: temperature of the relaxed edge's softmax or sigmoid gates
    temperature: float = 1.0

    def __post_init__(self) -> None:
        for name, allowed in (("edge_sampling", EDGE_SAMPLING),
                              ("optimisation", OPTIMISATION), ("clamp", CLAMP)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")
        if self.edges_per_step < 1:
            raise ValueError(f"edges_per_step must be at least 1, got {self.edges_per_step}")
        if not 0.0 <= self.explore_eps <= 1.0:
            raise ValueError(f"explore_eps must be in [0, 1], got {self.explore_eps}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        self.check_weights()
        self.check_alphas()


class Edas(Method):
    name = "edas"
    description = "EDAS: one sampled edge relaxed per step, every other edge clamped to one-hot"
    Config = EdasConfig
    bilevel = True
    needs_heldout = True
    cfg: EdasConfig

    def __init__(self, space: Space, supernet: SuperNet, cfg: EdasConfig,
                 ctx: SearchContext) -> None:
        super().__init__(space, supernet, cfg, ctx)
        G, E, O = self.layout.shape
        if cfg.edges_per_step > G * E:
            raise ValueError(f"edges_per_step={cfg.edges_per_step} exceeds the layout's "
                             f"{G * E} (group, edge) pairs")
        # Edges that may keep several ops get independent sigmoid gates, others a softmax.
        self.gated = self.caps.multi_op_edges
        init = cfg.init_scale * torch.randn((G * E, O), generator=self.generator)
        # One parameter per (group, edge): Adam skips parameters whose grad is None, so a
        # step moves only the sampled edge.
        self.alphas = nn.ParameterList(nn.Parameter(row.to(ctx.device)) for row in init)
        self.nonzero = space.nonzero_mask()
        self.w_opt = weight_optimizer(supernet, cfg)
        self.a_opt = alpha_adam(self.alphas.parameters(), cfg,
                                self.alpha_steps(ctx.epochs, ctx.steps_per_epoch))
        self.steps = 0
        self.visits = torch.zeros((G, E), dtype=torch.long)
        self.rr_order = torch.randperm(G * E, generator=self.generator)
        self.rr_pos = 0
        self.pending_events: list[dict[str, Any]] = []
        self.last_edges: list[tuple[int, int]] = []

    # -- architecture variables -------------------------------------------------------------
    @property
    def alpha(self) -> torch.Tensor:
        """All alphas as one detached (G, E, O) tensor on the CPU."""
        return torch.stack([p.detach() for p in self.alphas]).cpu().view(self.layout.shape)

    def _relax(self, row: torch.Tensor) -> torch.Tensor:
        """The relaxed edge's mixing weights: a softmax, or sigmoid gates (multi-op edges)."""
        t = self.cfg.temperature
        return torch.sigmoid(row / t) if self.gated else torch.softmax(row / t, dim=-1)

    def clamped(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The every-edge-clamped supernet: 0/1 weights (G, E, O) and the same as a mask."""
        alpha = self.alpha
        if self.gated:
            keep = (alpha >= 0) & self.nonzero
        elif self.cfg.clamp == "derived":
            keep = self.space.mask_of(self.space.derive(torch.softmax(alpha, dim=-1)))
        else:
            keep = torch.zeros(alpha.shape, dtype=torch.bool)
            keep.scatter_(-1, alpha.argmax(-1, keepdim=True), True)
            keep &= self.nonzero
        self._feed_every_node(keep, alpha)
        return keep.to(torch.float32), keep

    def _feed_every_node(self, keep: torch.Tensor, alpha: torch.Tensor) -> None:
        """Turn on the strongest non-zero op into any node that has no kept op (in place)."""
        masked = alpha.masked_fill(~self.nonzero, -math.inf)
        O = alpha.shape[-1]
        for node in range(2, 2 + self.layout.nodes):
            ids = self.layout.node_edges(node)
            for g in range(len(self.layout.groups)):
                if not keep[g, ids].any():
                    flat = int(masked[g, ids].flatten().argmax())
                    keep[g, ids[flat // O], flat % O] = True

    def mixing(self) -> tuple[torch.Tensor, torch.Tensor]:
        weights, active = self.clamped()
        return weights.to(self.ctx.device), active

    def arch_weights(self) -> torch.Tensor:
        """What each edge would mix if it were the relaxed one (the clamps hide it)."""
        alpha = self.alpha
        return self._relax(alpha)

    def step_mixing(self, edges: list[tuple[int, int]], grad: bool,
                    explore: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Clamped weights with ``edges`` relaxed; only those rows depend on the alphas."""
        weights, active = self.clamped()
        if explore and self.cfg.explore_eps > 0:
            self._explore(weights, active, edges)
        weights = weights.to(self.ctx.device)
        E = len(self.layout.edges)
        rows = []
        for g, e in edges:
            row = self._relax(self.alphas[g * E + e])
            rows.append(row if grad else row.detach())
            active[g, e] = True
        index = (torch.tensor([g for g, _ in edges], device=weights.device),
                 torch.tensor([e for _, e in edges], device=weights.device))
        return weights.index_put(index, torch.stack(rows)), active

    def _explore(self, weights: torch.Tensor, active: torch.Tensor,
                 edges: list[tuple[int, int]]) -> None:
        """Regulariser: some clamped edges run one random non-zero op instead (in place)."""
        G, E, _ = self.layout.shape
        hit = torch.rand((G, E), generator=self.generator) < self.cfg.explore_eps
        choice = torch.randint(len(self.space.nonzero_ops), (G, E), generator=self.generator)
        ops = torch.tensor(self.space.nonzero_ops)[choice]
        for g, e in edges:
            hit[g, e] = False
        for g, e in hit.nonzero().tolist():
            active[g, e] = False
            active[g, e, ops[g, e]] = True
            weights[g, e] = active[g, e].to(weights.dtype)

    # -- edge sampling -----------------------------------------------------------------------
    def sample_edges(self) -> list[tuple[int, int]]:
        """The (group, edge) pairs relaxed in this step."""
        G, E, _ = self.layout.shape
        k = self.cfg.edges_per_step
        if self.cfg.edge_sampling == "uniform":
            flat = torch.randperm(G * E, generator=self.generator)[:k].tolist()
        else:
            flat = []
            while len(flat) < k:
                if self.rr_pos >= G * E:
                    self.rr_order = torch.randperm(G * E, generator=self.generator)
                    self.rr_pos = 0
                pair = int(self.rr_order[self.rr_pos])
                self.rr_pos += 1
                if pair not in flat:
                    flat.append(pair)
        return [(p // E, p % E) for p in flat]

    # -- search step -------------------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> None:
        set_lr(self.w_opt, scheduled_lr(self.cfg, epoch, self.ctx.epochs))

    def _entropy(self, edges: list[tuple[int, int]]) -> torch.Tensor:
        E = len(self.layout.edges)
        total = torch.zeros((), device=self.ctx.device)
        for g, e in edges:
            w = self._relax(self.alphas[g * E + e])
            if self.gated:
                w = w.clamp(1e-6, 1 - 1e-6)
                total = total - (w * w.log() + (1 - w) * (1 - w).log()).sum()
            else:
                total = total - (w * w.clamp_min(1e-12).log()).sum()
        return total

    def step(self, batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        if not self.supernet.training:  # walking every module each step costs ~30 ms
            self.supernet.train()
        edges = self.sample_edges()
        self.last_edges = edges
        before = self._edge_states(edges)
        E = len(self.layout.edges)
        params = [self.alphas[g * E + e] for g, e in edges]
        stats: dict[str, float] = {}
        self.a_opt.zero_grad(set_to_none=True)
        if self.cfg.optimisation == "bilevel":
            assert val_batch is not None, "EDAS bilevel needs a validation batch"
            weights, active = self.step_mixing(edges, grad=True)
            val_loss, _ = self.forward_loss(val_batch, weights, active)
            a_loss = val_loss - self.cfg.entropy_weight * self._entropy(edges)
            grads = torch.autograd.grad(a_loss, params)
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            self.a_opt.step()
            stats["val_loss"] = float(val_loss.detach())
            weights, active = self.step_mixing(edges, grad=False, explore=True)
            self.w_opt.zero_grad(set_to_none=True)
            loss, logits = self.forward_loss(batch, weights, active)
            loss.backward()
        else:
            weights, active = self.step_mixing(edges, grad=True, explore=True)
            self.w_opt.zero_grad(set_to_none=True)
            loss, logits = self.forward_loss(batch, weights, active)
            (loss - self.cfg.entropy_weight * self._entropy(edges)).backward()
            self.a_opt.step()
        clip_and_step(self.supernet, self.w_opt, self.cfg.grad_clip)
        self.steps += 1
        for g, e in edges:
            self.visits[g, e] += 1
        self._record_switches(edges, before)
        return {"loss": float(loss.detach()), "acc": accuracy(logits, batch[1]), **stats}

    def _edge_states(self, edges: list[tuple[int, int]]) -> list[list[str]]:
        """The clamped ops of each edge, by name (to log when the relaxed edge flips)."""
        _, keep = self.clamped()
        return [[self.space.ops[o] for o in keep[g, e].nonzero().flatten().tolist()]
                for g, e in edges]

    def _record_switches(self, edges: list[tuple[int, int]], before: list[list[str]]) -> None:
        after = self._edge_states(edges)
        for (g, e), old, new in zip(edges, before, after, strict=True):
            if old != new:
                self.pending_events.append({
                    "kind": "switch", "group": self.layout.groups[g], "edge": e,
                    "from": old, "to": new, "step": self.steps})

    def end_epoch(self, epoch: int) -> list[dict[str, Any]]:
        visits = {name: self.visits[g].tolist() for g, name in enumerate(self.layout.groups)}
        events = [*self.pending_events, {
            "kind": "edge_visits", "visits": visits, "steps": int(self.visits.sum()),
            "unvisited": int((self.visits == 0).sum()),
            "switches": len(self.pending_events)}]
        self.pending_events = []
        self.visits.zero_()
        return events

    def epoch_metrics(self) -> dict[str, float]:
        return {"a_lr": float(self.a_opt.param_groups[0]["lr"])}

    # -- results -----------------------------------------------------------------------------
    def genotype(self) -> Genotype:
        alpha = self.alpha
        if self.gated:
            return self.space.derive(torch.sigmoid(alpha), keep=alpha >= 0)
        return self.space.derive(torch.softmax(alpha, dim=-1))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha, "steps": self.steps,
                "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(),
                "visits": self.visits.clone(), "rr_order": self.rr_order.clone(),
                "rr_pos": self.rr_pos, "pending_events": list(self.pending_events)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        E = len(self.layout.edges)
        with torch.no_grad():
            for i, p in enumerate(self.alphas):
                p.copy_(state["alpha"][i // E, i % E])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.steps = int(state["steps"])
        self.visits = state["visits"].clone()
        self.rr_order = state["rr_order"].clone()
        self.rr_pos = int(state["rr_pos"])
        self.pending_events = list(state["pending_events"])
