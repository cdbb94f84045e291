"""EDAS (Hong, Ahn, Kim; arXiv 1912.01237): relax one edge, clamp every other edge.

Only the abstract is public. It says: sample a single edge, relax its variables, clamp the
variables of every other edge to zero or one, so that the supernet stays (almost) a discrete
network and pruning it by the derivation rule costs no accuracy; "several regularization
methods" help exploration. Everything else is a choice of this suite, each a config value:

* ``edge_sampling``: ``sweep`` (default: each epoch a new seeded permutation of all (group,
  edge) pairs of the layout, taken in turn, so every edge is relaxed at least once per
  epoch), ``round_robin`` (the same permutation carried across epochs) or ``uniform`` (every
  step draws its edges uniformly).
* ``edges_per_step``: None (default) relaxes ``ceil(pairs / steps per epoch)`` edges per step,
  the fewest that visit every edge each epoch: 1, the abstract's single edge, whenever an
  epoch has at least as many steps as the layout has edges (DARTS's CIFAR search: 195 steps,
  28 pairs); more at the small budgets where it has not. The edges come from the whole
  layout, not one per group: with shared groups the normal and the reduction cell compete
  for the same step, with one group per cell every cell does.
* The per-edge budget (``per_edge_budget``, default on): DARTS gives every edge an Adam step
  at every step; here an edge gets one each time it is relaxed, ``visits = steps x k / pairs``
  in a run. Adam moves a parameter by about its learning rate per step, so the alpha
  learning rate is ``a_lr x (alpha_budget_steps or the run's steps) / visits``: every edge's
  alphas travel as far as DARTS's would over the same epochs.
* The supernet "as EDAS searches it" (``mixing``, whose inherited accuracy the run reports
  beside the derived network's, the gap that measures the abstract's "no drop after
  pruning"): every edge clamped, the edges the next step relaxes relaxed.
* The run records how far each edge's alphas moved (``edge_moves`` events) and warns
  (``Method.warnings``) about edges whose strongest op never changed from its initial one.
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
from nasbench_suite.methods.base import Batch, Method, MethodConfig, SearchContext, accuracy
from nasbench_suite.methods.training import (
    AlphaAdam,
    WeightSGD,
    clip_and_step,
    scheduled_lr,
    set_lr,
    weight_optimizer,
)
from nasbench_suite.spaces import Genotype, Space
from nasbench_suite.spaces.supernet import SuperNet
from torch import nn

EDGE_SAMPLING = ("sweep", "round_robin", "uniform")
OPTIMISATION = ("bilevel", "one_level")
CLAMP = ("argmax", "derived")


@dataclass
class EdasConfig(MethodConfig, AlphaAdam, WeightSGD):
    """DARTS's optimisers and schedule (the training kit's blocks) plus EDAS's choices."""

    edge_sampling: str = "sweep"
    #: None: ceil(pairs / steps per epoch), so every edge is relaxed each epoch
    edges_per_step: int | None = None
    #: scale the alpha learning rate to DARTS's per-edge budget (module docstring)
    per_edge_budget: bool = True
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
        if self.edges_per_step is not None and self.edges_per_step < 1:
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
        pairs = G * E
        self.k = cfg.edges_per_step or max(1, -(-pairs // max(ctx.steps_per_epoch, 1)))
        if self.k > pairs:
            raise ValueError(f"edges_per_step={self.k} exceeds the layout's {pairs} "
                             f"(group, edge) pairs")
        # Edges that may keep several ops get independent sigmoid gates, others a softmax.
        self.gated = self.caps.multi_op_edges
        init = cfg.init_scale * torch.randn((G * E, O), generator=self.generator)
        # One parameter per (group, edge): Adam skips parameters whose grad is None, so a
        # step moves only the sampled edge.
        self.alphas = nn.ParameterList(nn.Parameter(row.to(ctx.device)) for row in init)
        self.nonzero = space.nonzero_mask()
        self.w_opt = weight_optimizer(supernet, cfg)
        self.a_opt = torch.optim.Adam(self.alphas.parameters(), lr=self.alpha_lr(),
                                      betas=cfg.a_betas, weight_decay=cfg.a_weight_decay)
        self.steps = 0
        self.visits = torch.zeros((G, E), dtype=torch.long)
        self.rr_order = torch.randperm(G * E, generator=self.generator)
        self.rr_pos = 0
        self.alpha0 = init.view(self.layout.shape).clone()
        self.ever_changed = torch.zeros((G, E), dtype=torch.bool)
        self.pending_events: list[dict[str, Any]] = []
        self.last_edges: list[tuple[int, int]] = []

    def alpha_lr(self) -> float:
        """The alpha learning rate: DARTS's per-edge budget spread over an edge's visits."""
        cfg, ctx = self.cfg, self.ctx
        steps = ctx.epochs * ctx.steps_per_epoch
        if not cfg.per_edge_budget:
            return cfg.alpha_lr(steps)
        G, E, _ = self.layout.shape
        visits = max(steps * self.k / (G * E), 1e-9)
        return cfg.a_lr * (cfg.alpha_budget_steps or steps) / visits

    # -- architecture variables -------------------------------------------------------------
    @property
    def alpha(self) -> torch.Tensor:
        """All alphas as one detached (G, E, O) tensor on the CPU."""
        return torch.stack([p.detach() for p in self.alphas]).cpu().view(self.layout.shape)

    def arch_parameters(self) -> list[torch.Tensor]:
        """The alpha rows of the edges the next step relaxes: the only alphas EDAS's loss
        depends on, so its Hessian is the curvature its own step sees (``alpha`` is a
        detached copy, which no second derivative can be taken with respect to)."""
        E = len(self.layout.edges)
        return [self.alphas[g * E + e] for g, e in self.peek_edges()]

    def hessian_loss(self, batch: Batch) -> torch.Tensor:
        """The search loss with the next step's edges relaxed, as a graph of their alphas."""
        weights, active = self.step_mixing(self.peek_edges(), grad=True)
        return self.forward_loss(batch, weights, active)[0]

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
        for node in self.layout.node_ids:
            ids = self.layout.node_edges(node)
            for g in range(len(self.layout.groups)):
                if not keep[g, ids].any():
                    flat = int(masked[g, ids].flatten().argmax())
                    keep[g, ids[flat // O], flat % O] = True

    def mixing(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The supernet as EDAS searches it: clamped, the next step's edges relaxed."""
        weights, active = self.step_mixing(self.peek_edges(), grad=False)
        return weights.detach(), active

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
    def peek_edges(self) -> list[tuple[int, int]]:
        """The pairs the next step will relax, without drawing them."""
        generator = torch.Generator().set_state(self.generator.get_state())
        order, pos = self.rr_order.clone(), self.rr_pos
        try:
            return self.sample_edges()
        finally:
            self.generator.set_state(generator.get_state())
            self.rr_order, self.rr_pos = order, pos

    def sample_edges(self) -> list[tuple[int, int]]:
        """The (group, edge) pairs relaxed in this step."""
        G, E, _ = self.layout.shape
        k = self.k
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
        if self.cfg.edge_sampling == "sweep":  # a fresh pass over every edge each epoch
            G, E, _ = self.layout.shape
            self.rr_order = torch.randperm(G * E, generator=self.generator)
            self.rr_pos = 0

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
        alpha = self.alpha
        moves = (alpha - self.alpha0).abs().amax(-1)  # (G, E): the largest alpha move
        self.ever_changed |= self.choices(alpha) != self.choices(self.alpha0)
        events = [*self.pending_events, {
            "kind": "edge_visits", "visits": visits, "edge_visits": int(self.visits.sum()),
            "unvisited": int((self.visits == 0).sum()),
            "switches": len(self.pending_events)},
            {"kind": "edge_moves",
             "max_move": {name: moves[g].tolist() for g, name in enumerate(self.layout.groups)},
             "median_move": float(moves.median()), "init_spread": float(self.alpha0.std()),
             "never_changed": int((~self.ever_changed).sum())}]
        self.pending_events = []
        self.visits.zero_()
        return events

    def choices(self, alpha: torch.Tensor) -> torch.Tensor:
        """Each edge's strongest op (among those that have an output)."""
        return alpha.masked_fill(~self.nonzero, -math.inf).argmax(-1)

    def warnings(self) -> list[str]:
        stuck = (~self.ever_changed).nonzero().tolist()
        if not stuck:
            return []
        names = ", ".join(f"{self.layout.groups[g]}:{e}" for g, e in stuck[:8])
        more = f" and {len(stuck) - 8} more" if len(stuck) > 8 else ""
        return [f"edas: {len(stuck)} edge(s) never changed their strongest op from the "
                f"initial one ({names}{more}): their choice is the initialisation's"]

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
                "alpha0": self.alpha0.clone(), "ever_changed": self.ever_changed.clone(),
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
        self.alpha0 = state["alpha0"].clone()
        self.ever_changed = state["ever_changed"].clone()
