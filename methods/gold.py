"""GOLD-NAS (Bi et al., arXiv 2007.03331): one-level search with gradual pruning.

Follows the public implementation (sunsmarterjie/GOLD_NAS, ``cifar_search``; unofficial, as
its README says), whose defaults every field of :class:`GoldConfig` keeps; the paper's
equations could not be checked.

* Each (group, edge, op) has a sigmoid gate ``w = sigmoid(alpha)``, alpha starting at 0. The
  supernet mixes every active op's output with its gate ``w`` (the public forward multiplies
  by ``w``, not by the node-normalised ``w_hat``).
* One-level: weights and alphas step together on one minibatch of the whole training set
  (``bilevel = False``: the loop holds out no validation split). Loss = CE + 0.4 x auxiliary CE
  + lambda x R with ``R = sum over active ops of ln(1 + n_node w_hat) (reg_flops + mu FLOPs)``.
* ``w_hat = w / (sum of w over every active op on every edge entering the node)``. The public
  code sums over the first edge of a node only (its other edges divide by zero and are never
  pruned, so its FLOPs floor is unreachable); here the whole node is summed everywhere.
* After each epoch, ``n0`` rounds of: prune every op with ``w_hat <= eta_min``, then the single
  weakest op if its ``w_hat <= eta_max``. A pruned op leaves the mask for good, so the supernet
  never computes it again; a node never loses its last active op.
* lambda starts at ``lambda0`` with step ``d0``. After an epoch that pruned at least ``n0`` ops:
  ``d = d0, lambda = lambda / lambda_factor``; otherwise ``d = d x lambda_factor, lambda += d``.
* Pareto series: once more than ``stable_epochs`` epochs in a row pruned nothing, the next
  pruning first records the stable architecture (as it was before that pruning). The search
  ends once the current architecture's multiply-adds fall below the floor; the architecture
  at the floor is recorded too (``record_final``). It also ends (reason ``minimal``) when
  every node is down to its last input: no op can be pruned any more, so a floor below the
  cost of the smallest reachable network (at small sizes the stem and preprocessing are a
  larger share than at C=36) would otherwise keep it running to the epoch cap.

In a space with shared cell groups (DARTS's) the gates act on the shared groups; ``none``
has no output (the supernet never computes it), so it is masked out from the start. In a
space whose cells hold one op per edge (NAS-Bench-201's: ``Capabilities.complete_edges``)
the search still keeps any ops per edge; the architecture it returns and records is the
strongest kept op of each edge (the benchmark's table scores one op per edge), its cost that
cell's.

Choices where the paper or the public code leave room (each a config field or documented):

* Pruning happens only at the end of an epoch. The public forward also skips, mid-epoch, any
  op whose node-normalised gate is below eta_min; here the mask changes only when pruning.
* Within a round, ``w_hat`` is recomputed after the eta_min sweep before the weakest op is
  chosen; ties go to the lowest (group, edge, op) index. The eta_min sweep takes ops in
  ascending ``w_hat`` so that the guard keeps a node's strongest op.
* ``n_node`` counts the active ops into the node (the public code: those above eta_min,
  which is the same set once pruned ops are masked).
* FLOPs(op) are the cost table's multiply-adds of the cells the gate drives (FlopCounterMode
  counts 2 FLOPs per multiply-add; halved), divided by ``flops_unit``.
* The floor is either absolute (``min_flops``, the public 240M at C=36) or a share of the
  full supernet (``min_flops_fraction``): 240M is 30.887% of the C=36 supernet's 777M, and
  as a share it also fits C=16 (172M in all) and the mini network. The presets use the share.
* A point recorded at the same cost as the previous one (only parameter-free, FLOP-free ops
  pruned in between) replaces it, so the series' costs strictly decrease; the event says so.
* The step reports ``loss`` = CE + auxiliary (comparable across methods) and ``objective``
  = loss + lambda R, since lambda can grow by orders of magnitude.
* ``w_hat`` is computed in log space (a per-node softmax of ``logsigmoid(alpha)``), the
  same quantity without 0/0 when gates saturate under a large lambda.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from nasbench_suite.methods.base import Batch, Method, MethodConfig, SearchContext, accuracy
from nasbench_suite.methods.training import (
    WeightSGD,
    clip_and_step,
    scheduled_lr,
    set_lr,
    sgd,
    weight_optimizer,
)
from nasbench_suite.spaces import Genotype, Space
from nasbench_suite.spaces.supernet import SuperNet
from torch import nn


@dataclass
class GoldConfig(MethodConfig, WeightSGD):
    """Hyper-parameters; defaults are the public implementation's (train_search.py)."""

    #: network weights: SGD at a constant learning rate (the training kit's block), gradient
    #: norm clipped at 5 (the alphas are not clipped, as in the code)
    w_lr: float = 0.01
    w_schedule: str = "constant"
    #: architecture gates: SGD
    a_lr: float = 1.0
    a_momentum: float = 0.9
    a_weight_decay: float = 0.0
    #: initial alpha of every gate (sigmoid(0) = 0.5)
    alpha_init: float = 0.0
    #: weight of the auxiliary head's loss; > 0 makes the loop build the head
    auxiliary_weight: float = 0.4
    #: pruning: w_hat at or below eta_min is pruned; the weakest op at or below eta_max too
    eta_min: float = 0.01
    eta_max: float = 0.05
    #: pruning rounds per epoch, and the pruned-op count from which lambda is divided
    n0: int = 4
    #: lambda at the start, its first step d0, and the factor of the doubling/halving schedule
    #: (the public code calls d0 ``lambda0`` and the factor ``c0``)
    lambda0: float = 0.0
    d0: float = 1e-5
    lambda_factor: float = 2.0
    #: per-op resource weight ``reg_flops + mu x FLOPs(op)``; FLOPs in units of ``flops_unit``
    #: multiply-adds (1e6: millions, the public code's unit). mu = 0 (public default) makes
    #: every op cost the same: the constraint then counts ops, not FLOPs.
    reg_flops: float = 1.0
    mu: float = 0.0
    flops_unit: float = 1e6
    #: a pruning after more than this many epochs without pruning records an architecture
    stable_epochs: int = 3
    #: the search stops once the architecture's multiply-adds fall below the floor:
    #: ``min_flops_fraction`` x the full supernet's multiply-adds if set, else ``min_flops``
    #: (absolute multiply-adds; the paper's 240M is for C=36, 14 cells, 32x32 images)
    min_flops: float = 240e6
    min_flops_fraction: float | None = None
    #: record the architecture that passes the floor (or that the epoch budget ends on)
    record_final: bool = True

    def __post_init__(self) -> None:
        self.check_weights()
        if not 0 <= self.eta_min <= self.eta_max < 1:
            raise ValueError(f"need 0 <= eta_min <= eta_max < 1, got {self.eta_min}, "
                             f"{self.eta_max}")
        if self.n0 < 1 or self.stable_epochs < 0:
            raise ValueError("n0 must be >= 1 and stable_epochs >= 0")
        if self.lambda_factor <= 0 or self.flops_unit <= 0:
            raise ValueError("lambda_factor and flops_unit must be positive")
        if self.min_flops_fraction is not None and not 0 < self.min_flops_fraction < 1:
            raise ValueError(f"min_flops_fraction must be in (0, 1), got "
                             f"{self.min_flops_fraction}")


class Gold(Method):
    name = "gold"
    description = ("GOLD-NAS: sigmoid gates, one-level, gradual pruning under a resource "
                   "constraint, Pareto series")
    Config = GoldConfig
    bilevel = False
    cfg: GoldConfig

    def __init__(self, space: Space, supernet: SuperNet, cfg: GoldConfig,
                 ctx: SearchContext) -> None:
        super().__init__(space, supernet, cfg, ctx)
        layout = self.layout
        self.alpha = nn.Parameter(torch.full(layout.shape, cfg.alpha_init, device=ctx.device))
        # The zero op has no output: it is never a candidate (spaces that have one).
        self.active = layout.full_mask() & ~layout.zero_mask()
        self.w_opt = weight_optimizer(supernet, cfg)
        self.a_opt = sgd([self.alpha], cfg.a_lr, cfg.a_momentum, cfg.a_weight_decay)
        self.node_of_edge = layout.node_index  # (E,) 0-based node of each edge
        self.n_nodes = layout.nodes
        flops = space.cost.group_flops().to(torch.float32) / 2 / cfg.flops_unit
        self.op_weight = (cfg.reg_flops + cfg.mu * flops).to(ctx.device)
        self.initial_macs = space.cost.mask_cost(self.active).macs
        self.floor = (cfg.min_flops_fraction * self.initial_macs
                      if cfg.min_flops_fraction is not None else cfg.min_flops)
        if self.floor >= self.initial_macs:
            raise ValueError(
                f"the FLOPs floor ({self.floor / 1e6:.4g}M multiply-adds) is not below the "
                f"supernet's {self.initial_macs / 1e6:.4g}M: the search would stop at once; "
                f"lower min_flops or set min_flops_fraction")
        self.lam = cfg.lambda0
        self.d = cfg.d0
        self.stable = 0
        self.pruned_last = 0
        self.pruned_total = 0
        self.done = False
        self.points: list[dict[str, Any]] = []
        self._refresh()

    # -- gates -----------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Cache what depends on the mask only (the device copy and the current cost)."""
        self.active_dev = self.active.to(self.ctx.device, torch.float32)
        self.macs = self.space.cost.mask_cost(self.active).macs

    def gates(self) -> torch.Tensor:
        return torch.sigmoid(self.alpha)

    def mixing(self) -> tuple[torch.Tensor, torch.Tensor]:
        # The supernet skips inactive ops; zeroing their gates keeps the logged weights honest.
        return self.gates() * self.active_dev, self.active

    def node_normalised(self, alpha: torch.Tensor,
                        active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``w_hat`` (G, E, O) of the gates ``sigmoid(alpha)`` over every active op of every
        edge into the node, and the number of active ops into each edge's node (G, E, 1).
        Inactive entries are 0.

        Computed in log space (a softmax of ``logsigmoid(alpha)`` per node): lambda grows
        without bound while little is pruned, and gates that underflow to 0 would otherwise
        make ``w / sum(w)`` a 0/0 with an infinite gradient.
        """
        a = active.to(alpha.dtype)
        node = self.node_of_edge.to(alpha.device)
        g = alpha.shape[0]
        log_w = F.logsigmoid(alpha).masked_fill(a == 0, -math.inf)
        # Shift by the node's largest log-gate (a constant for the gradient: softmax is
        # shift-invariant), so the largest active op contributes exp(0) = 1 to the sum.
        edge_max = log_w.detach().amax(-1)  # (G, E)
        node_max = torch.full((g, self.n_nodes), -math.inf, dtype=alpha.dtype,
                              device=alpha.device)
        node_max = node_max.scatter_reduce(1, node.expand(g, -1), edge_max, "amax")
        shifted = torch.exp(log_w - node_max[:, node, None])  # inactive: exp(-inf) = 0
        node_sum = torch.zeros(g, self.n_nodes, dtype=alpha.dtype, device=alpha.device)
        node_sum = node_sum.index_add(1, node, shifted.sum(-1))
        node_cnt = torch.zeros(g, self.n_nodes, dtype=alpha.dtype, device=alpha.device)
        node_cnt = node_cnt.index_add(1, node, a.sum(-1))
        return shifted / node_sum[:, node, None], node_cnt[:, node, None]

    def regulariser(self) -> torch.Tensor:
        """R = sum over active ops of ln(1 + n_node w_hat) (reg_flops + mu FLOPs(op))."""
        w_hat, n = self.node_normalised(self.alpha, self.active_dev)
        return (self.active_dev * torch.log1p(n * w_hat) * self.op_weight).sum()

    # -- search ----------------------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> None:
        set_lr(self.w_opt, scheduled_lr(self.cfg, epoch, self.ctx.epochs))

    def step(self, batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        """One forward/backward on ``batch``; both optimisers step on its gradients."""
        self.supernet.train()
        self.w_opt.zero_grad(set_to_none=True)
        self.a_opt.zero_grad(set_to_none=True)
        weights, active = self.mixing()
        ce, logits = self.forward_loss(batch, weights, active, self.cfg.auxiliary_weight)
        reg = self.regulariser()
        objective = ce + self.lam * reg
        objective.backward()
        clip_and_step(self.supernet, self.w_opt, self.cfg.grad_clip)
        self.a_opt.step()
        # ``loss`` is the data loss (CE + auxiliary), comparable across methods and epochs;
        # lambda x R can dwarf it late in a search, when lambda has grown by orders of magnitude.
        return {"loss": float(ce.detach()), "acc": accuracy(logits, batch[1]),
                "reg": float(reg.detach()), "objective": float(objective.detach())}

    def prune(self) -> list[dict[str, Any]]:
        """``n0`` rounds of the eta_min and eta_max rules; returns the pruned ops in order."""
        cfg = self.cfg
        alpha = self.alpha.detach().cpu().to(torch.float64)
        active = self.active
        node = self.node_of_edge
        pruned: list[dict[str, Any]] = []

        def cut(g: int, e: int, o: int, w_hat: float, rule: str) -> None:
            active[g, e, o] = False
            pruned.append({"group": g, "edge": e, "op": o, "w_hat": w_hat, "rule": rule})

        def node_count(g: int, e: int) -> int:
            return int(active[g][node == node[e]].sum())

        for _ in range(cfg.n0):
            w_hat, _ = self.node_normalised(alpha, active)
            low = (active & (w_hat <= cfg.eta_min)).nonzero().tolist()
            for g, e, o in sorted(low, key=lambda i: float(w_hat[tuple(i)])):
                if node_count(g, e) > 1:  # never remove a node's last input
                    cut(g, e, o, float(w_hat[g, e, o]), "eta_min")
            w_hat, n = self.node_normalised(alpha, active)
            candidate = active & (n > 1)
            if candidate.any():
                masked = w_hat.masked_fill(~candidate, float("inf"))
                flat = int(masked.argmin())
                g, e, o = torch.unravel_index(torch.tensor(flat), masked.shape)
                value = float(masked.flatten()[flat])
                if value <= cfg.eta_max:
                    cut(int(g), int(e), int(o), value, "eta_max")
        if pruned:
            self._refresh()
            # Freeze the pruned alphas: without this their momentum keeps moving them.
            buf = self.a_opt.state.get(self.alpha, {}).get("momentum_buffer")
            if buf is not None:
                buf.mul_(self.active_dev)
        return pruned

    def prunable(self) -> bool:
        """Whether some node still has more than one active op (a node keeps its last)."""
        per_edge = self.active.sum(-1).to(torch.float64)  # (G, E)
        per_node = torch.zeros(per_edge.shape[0], self.n_nodes, dtype=torch.float64)
        per_node = per_node.index_add(1, self.node_of_edge.cpu(), per_edge)
        return bool((per_node > 1).any())

    def update_lambda(self, pruned: int) -> None:
        """The variable constraint: relax after a strong pruning, tighten otherwise."""
        if pruned >= self.cfg.n0:
            self.d = self.cfg.d0
            self.lam = self.lam / self.cfg.lambda_factor
        else:
            self.d = self.d * self.cfg.lambda_factor
            self.lam = self.lam + self.d

    def end_epoch(self, epoch: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        stable_mask = self.active.clone()
        lam = self.lam
        ops = self.prune()
        n = len(ops)
        self.pruned_last = n
        self.pruned_total += n
        if ops:
            events.append({
                "kind": "prune", "lambda": lam, "count": n,
                "ops": [[self.layout.groups[p["group"]], p["edge"], self.space.ops[p["op"]]]
                        for p in ops],
                "w_hat": [p["w_hat"] for p in ops], "rules": [p["rule"] for p in ops],
                "macs": self.macs, "active_ops": int(self.active.sum())})
        self.update_lambda(n)
        if n == 0:
            self.stable += 1
        else:
            if self.stable > self.cfg.stable_epochs:
                events.append(self._record(stable_mask, epoch, "stable", lam))
            self.stable = 0
        reason = "epochs"
        if self.macs < self.floor:
            self.done, reason = True, "floor"
        elif not self.prunable():
            # Every node is down to its last input: nothing can go, whatever lambda does.
            self.done, reason = True, "minimal"
        last = epoch + 1 >= self.ctx.epochs
        if self.cfg.record_final and (self.done or last):
            events.append(self._record(self.active.clone(), epoch, reason, lam))
        return events

    def _record(self, mask: torch.Tensor, epoch: int, reason: str,
                lam: float) -> dict[str, Any]:
        """Add a point to the series; a point at the same cost as the last one replaces it
        (only parameter-free ops were pruned in between), so costs strictly decrease."""
        genotype = self._genotype_of(mask)
        cost = self.space.genotype_cost(genotype)
        acc = self.ctx.report(genotype)  # reported on the scoring split, never chosen by
        replaces = None
        if self.points and cost.macs >= self.points[-1]["macs"]:
            replaces = self.points.pop()["index"]
        point = {"index": len(self.points), "epoch": epoch, "reason": reason,
                 "macs": cost.macs, "params": cost.params, "acc": acc,
                 "active_ops": int(mask.sum()), "lambda": lam,
                 "stable_epochs": self.stable, "genotype": genotype.to_dict()}
        self.points.append(point)
        event = {"kind": "record", **{k: v for k, v in point.items() if k != "genotype"}}
        if replaces is not None:
            event["replaces"] = replaces
        return event

    def finished(self) -> bool:
        return self.done

    def genotype(self) -> Genotype:
        return self._genotype_of(self.active)

    def _genotype_of(self, mask: torch.Tensor) -> Genotype:
        """The kept ops as a genotype. A space whose cells hold exactly one op per edge
        (``Capabilities.complete_edges``: NAS-Bench-201's) gets the strongest gate among each
        edge's kept ops, an edge with none kept the zero op; the gates' cost and the pruning
        see every kept op. Elsewhere the mask as it is."""
        if self.caps.complete_edges:
            return self.space.derive(self.alpha.detach(), keep=mask)
        return self.space.genotype_from_mask(mask)

    def series(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.points]

    def epoch_metrics(self) -> dict[str, float]:
        return {"lambda": self.lam, "lambda_step": self.d, "pruned": self.pruned_last,
                "pruned_total": self.pruned_total, "stable_epochs": self.stable,
                "flops_floor": self.floor, "recorded": len(self.points)}

    def progress(self) -> dict[str, float]:
        # FLOPs as the papers count them: millions of multiply-adds.
        return {"MFLOPs": self.macs / 1e6, "ops": int(self.active.sum()), "lambda": self.lam}

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha.detach().cpu(),
                "active": self.active.clone(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "lambda": self.lam, "d": self.d,
                "stable": self.stable, "pruned_last": self.pruned_last,
                "pruned_total": self.pruned_total, "done": self.done,
                "points": [dict(p) for p in self.points]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.active = state["active"].clone()
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.lam, self.d = float(state["lambda"]), float(state["d"])
        self.stable = int(state["stable"])
        self.pruned_last, self.pruned_total = int(state["pruned_last"]), int(state["pruned_total"])
        self.done = bool(state["done"])
        self.points = [dict(p) for p in state["points"]]
        self._refresh()


__all__ = ["Gold", "GoldConfig", "SearchContext"]
