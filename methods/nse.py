"""NSE (Ci et al., ICCV 2021, "Evolving Search Space for Neural Architecture Search").

Facts from the paper and the public implementation (orashi/NSE_NAS, read, not copied):
every edge holds a subset of K ops drawn from a larger pool and outputs the mean of the
chosen ops; alpha per (edge, op), p = sigmoid(alpha). Within a round:

* weight step (every step, training batch): each op of each edge's subset is included
  independently with probability ``sample_rate`` (0.5), an edge's draw repeated until it
  holds at least one op; the edge outputs the mean of its sampled ops.
* alpha step (every ``a_every``-th step, validation batch): per edge two distinct non-empty
  subsets ``s`` and ``u`` are drawn from prod p^g (1 - p)^(1 - g); with q_s, q_u their
  probabilities renormalised to sum to one, the edge's output is
  ``out_s * (q_s + 1 - sg(q_s)) + out_u * (q_u - sg(q_u))`` (sg: stop-gradient): the value of
  path ``s``, the gradient of the two-path expectation (a straight-through estimator). The
  loss adds ``mac_weight * (|E[MACs] - target| / unit) ** mac_power``. The public code's unit
  is a million MACs with weight 1e-5 and power 2 (``mac_alpha``, ``mac_beta``): at the suite's
  small networks that penalty is about 1e-9 of the loss, inert. Here the unit is, by
  default, the MACs of the network NSE searches (``mac_unit: null``: the mean MACs of the
  ``pilot_samples`` architectures drawn at the start, the same draw that sets the target),
  so the penalty reads "relative deviation from the budget" and pulls equally at every
  network size and on both spaces. (The full supernet's MACs, every op on every edge, were
  the unit before: in DARTS's space a derived cell is a few percent of them, the penalty was
  0.1-0.6% of the loss at the mini size, and its share differed between the spaces.) With
  the weight ``mac_weight`` 1 and the search starting 25% above the target, the penalty is
  0.06, a few percent of a cross-entropy of 2.3, as the public code's 1e-5 x (400 - 333)^2
  is of an ImageNet loss; ``mac_penalty_share`` per epoch records it (a test holds it above
  1% in the first epoch at the mini size on both spaces). ``mac_unit: 1e6, mac_weight:
  1e-5`` gives the public code's. Adam lr 5e-3, betas (0, 0.999). After each alpha step
  every op with alpha < ``drop_threshold`` (-2) leaves its subset for good.
* end of a round: architectures are drawn from p within a cost window around the target,
  together with the previous round's front, and scored with inherited, BN-recalibrated
  weights on the method's own held-out split (``SearchContext.choose``); their Pareto front
  over (accuracy, MACs) is recorded, each member's accuracy also measured on the run's
  scoring split (``SearchContext.report``: the number reported, never chosen by); each edge
  keeps the ops used on the front and is refilled up to K from its queue of never-tried
  pool ops; weights, alphas and both optimisers restart.

Choices of this suite (the paper is for a chain of multi-branch layers, not DARTS cells):

* Pool: the space's non-zero ops unless ``pool`` names them. The zero op is refused: in a
  mean it only scales the other branches down. GOLD-NAS's default op list (2 ops) is too
  small: the presets set the run field ``ops`` to the 7 non-zero DARTS ops there, and the
  method refuses a pool that is not larger than K.
* An edge of a DARTS cell has no residual path, so every edge keeps at least one op: in the
  samples, after drops (an edge's last op is never dropped) and after a refill (an edge with
  no front op keeps its highest-alpha op). Where a derived edge may keep several ops
  (``Capabilities.multi_op_edges``) a sampled architecture is therefore a non-empty op subset
  on every edge: exactly the paths the supernet trains. Where a derived node keeps
  ``inputs_per_node`` edges of one op each (DARTS's space), a sampled subset becomes a cell
  by the space's rule (best op of the subset by alpha, ties broken at random; the strongest
  edges per node), and the expected cost in the penalty is a proxy of that cell's: the mean
  MACs of a path's ops times the share of a node's edges the cell keeps.
* The budget: ``mac_target`` (multiply-adds) if given, else ``mac_target_fraction`` (0.8) of
  the mean MACs of ``pilot_samples`` architectures drawn at the start (p = 0.5 on the first
  subsets): the penalty pulls the search below where it starts, and the end-of-round window
  is centred on the budget: target x (1 +- ``window``).
* ``rounds`` (3) split the epochs into equal parts; with 7 pool ops and K = 3 each of the
  first two round ends refills every edge from its queue, so the space evolves twice. Each
  round has its own cosine learning-rate schedule (DARTS's SGD settings: the paper's are for
  ImageNet), as the public code restarts its scheduler every round. After the last round
  nothing restarts: the run ends with the trained supernet and :meth:`genotype` is the most
  accurate architecture of the last front.
* Best at budget: each round records the front member at or below the budget (target x
  (1 + window)) that is most accurate on the held-out split, with its accuracy on the
  scoring split; the paper's claim is that it improves round over round. Since every round
  restarts the weights, those inherited accuracies come from different supernets:
  ``nasbench reproduce claims`` trains each round's best-at-budget architecture from
  scratch with one short schedule to compare them.
* ``preserve_front``: the ops of the last front are never dropped (the public code's
  ``preserve_prev``), so the previous front can be scored again.
* A weight restart re-initialises every module with ``reset_parameters`` under a seed of
  (run seed, round), without touching the global random state.
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
    cosine,
    pareto_front,
    set_lr,
    weight_optimizer,
)
from nasbench_suite.spaces import Genotype, Space
from nasbench_suite.spaces.ops import ZERO
from nasbench_suite.spaces.supernet import SuperNet
from torch import nn


@dataclass
class NseConfig(MethodConfig, AlphaAdam, WeightSGD):
    """NSE's alpha optimiser (Adam lr 5e-3, betas (0, 0.999), no decay) and DARTS's SGD
    settings for the weights (the paper's are for ImageNet)."""

    a_lr: float = 5e-3
    a_betas: tuple[float, float] = (0.0, 0.999)
    a_weight_decay: float = 0.0
    k: int = 3
    pool: list[str] | None = None
    rounds: int = 3
    sample_rate: float = 0.5
    a_every: int = 2
    a_init: float = 0.0
    drop_threshold: float = -2.0
    preserve_front: bool = True
    mac_weight: float = 1.0
    mac_power: float = 2.0
    #: the penalty's unit of MACs; None: the searched network's (the pilot samples' mean)
    mac_unit: float | None = None
    #: the budget in multiply-adds; None: mac_target_fraction x the pilot samples' mean
    mac_target: float | None = None
    mac_target_fraction: float = 0.8
    pilot_samples: int = 32
    #: architectures scored at the end of each round (public code: 2000 on ImageNet)
    samples: int = 100
    window: float = 0.1
    draws_per_sample: int = 50

    def __post_init__(self) -> None:
        checks = [("k", self.k >= 2, "at least 2"), ("rounds", self.rounds >= 1, "positive"),
                  ("sample_rate", 0 < self.sample_rate <= 1, "in (0, 1]"),
                  ("a_every", self.a_every >= 1, "positive"),
                  ("samples", self.samples >= 1, "positive"),
                  ("pilot_samples", self.pilot_samples >= 1, "positive"),
                  ("window", self.window > 0, "positive"),
                  ("draws_per_sample", self.draws_per_sample >= 1, "positive"),
                  ("mac_unit", self.mac_unit is None or self.mac_unit > 0, "positive"),
                  ("mac_target_fraction", self.mac_target_fraction > 0, "positive")]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"{name} must be {what}, got {getattr(self, name)}")
        self.check_weights()
        self.check_alphas()


class Nse(Method):
    name = "nse"
    description = ("NSE: evolving per-edge op subsets, multi-branch mean, two-path alpha step, "
                   "Pareto front per round")
    Config = NseConfig
    bilevel = True
    needs_heldout = True
    cfg: NseConfig

    def __init__(self, space: Space, supernet: SuperNet, cfg: NseConfig,
                 ctx: SearchContext) -> None:
        super().__init__(space, supernet, cfg, ctx)
        G, E, O = self.layout.shape
        self.pool = self._pool(space, cfg)
        self.alpha = nn.Parameter(torch.full((G, E, O), cfg.a_init, device=ctx.device))
        # Per edge a seeded queue of the pool: the first K form the subset, the rest wait.
        self.subset = torch.zeros((G, E, O), dtype=torch.bool)
        self.queue: list[list[list[int]]] = []
        for g in range(G):
            row = []
            for e in range(E):
                order = [self.pool[i] for i in torch.randperm(len(self.pool),
                                                              generator=self.generator)]
                self.subset[g, e, order[:cfg.k]] = True
                row.append(order[cfg.k:])
            self.queue.append(row)
        n_rounds = min(cfg.rounds, ctx.epochs)
        self.round_ends = [(r + 1) * ctx.epochs // n_rounds for r in range(n_rounds)]
        cost = space.cost
        self.op_macs = (cost.group_flops() / 2).to(torch.float32)
        self.fixed_macs = cost.fixed_flops / 2
        # A derived node that keeps k of its edges: each edge's expected share of the cost.
        self.edge_share = torch.ones(E)
        keep = self.caps.inputs_per_node
        if keep is not None:
            for edge in self.layout.edges:
                self.edge_share[edge.index] = min(1.0, keep / len(
                    self.layout.node_edges(edge.node)))
        self.front: list[dict[str, Any]] = []
        self.front_mask = torch.zeros((G, E, O), dtype=torch.bool)
        self.best: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []
        self.pending_events: list[dict[str, Any]] = []
        self.steps = 0
        self.expected_macs = math.nan
        self._bits: dict[int, torch.Tensor] = {}
        self._make_optimisers()
        pilot = self._pilot_target()
        # the penalty's unit: the MACs of the network NSE searches (its sampled paths' mean)
        self.unit = cfg.mac_unit or pilot
        self.target = (cfg.mac_target if cfg.mac_target is not None
                       else cfg.mac_target_fraction * pilot)
        self.penalty_shares: list[float] = []

    @staticmethod
    def _pool(space: Space, cfg: NseConfig) -> list[int]:
        names = list(cfg.pool) if cfg.pool else [space.ops[i] for i in space.nonzero_ops]
        if ZERO in names:
            raise ValueError("nse: the zero op cannot be in the pool (a multi-branch mean of "
                             "'none' only scales the other branches down)")
        unknown = [n for n in names if n not in space.ops]
        if unknown:
            raise ValueError(f"nse: pool op(s) {unknown} are not in the space's op list "
                             f"{list(space.ops)}; set the run field ops")
        if len(set(names)) != len(names):
            raise ValueError(f"nse: the pool has repeats: {names}")
        if len(names) <= cfg.k:
            raise ValueError(
                f"nse needs a pool larger than K={cfg.k} ops per edge to evolve the space; "
                f"the space offers {names}. Set the run field ops (e.g. "
                "ops=[max_pool_3x3,avg_pool_3x3,skip_connect,sep_conv_3x3,sep_conv_5x5,"
                "dil_conv_3x3,dil_conv_5x5]) or a smaller k")
        return [space.ops.index(n) for n in names]

    def _make_optimisers(self) -> None:
        cfg = self.cfg
        self.w_opt = weight_optimizer(self.supernet, cfg)
        self.a_opt = torch.optim.Adam([self.alpha], lr=cfg.a_lr, betas=cfg.a_betas,
                                      weight_decay=cfg.a_weight_decay)

    # -- rounds ------------------------------------------------------------------------------
    def round_of(self, epoch: int) -> int:
        return next((r for r, end in enumerate(self.round_ends) if epoch < end),
                    len(self.round_ends) - 1)

    def begin_epoch(self, epoch: int) -> None:
        # One cosine schedule per round, as a closed form of the epoch (resume-exact).
        r = self.round_of(epoch)
        start = self.round_ends[r - 1] if r > 0 else 0
        span = self.round_ends[r] - start
        set_lr(self.w_opt, cosine((epoch - start) / span, self.cfg.w_lr, self.cfg.w_lr_min))
        self.penalty_shares = []  # the share of this epoch's alpha steps

    # -- sampling ----------------------------------------------------------------------------
    def probs(self) -> torch.Tensor:
        """p = sigmoid(alpha), kept off 0 and 1 as the public code does (CPU, detached)."""
        return torch.sigmoid(self.alpha.detach()).cpu() * 0.999 + 5e-4

    def _subset_bits(self, n: int) -> torch.Tensor:
        """Every non-empty subset of n ops as rows of a (2^n - 1, n) bool table."""
        if n not in self._bits:
            codes = torch.arange(1, 2 ** n)
            self._bits[n] = (codes[:, None] >> torch.arange(n)[None]) & 1 == 1
        return self._bits[n]

    def _draw(self, ops: torch.Tensor, p: torch.Tensor, count: int) -> list[torch.Tensor]:
        """``count`` distinct non-empty subsets of ``ops`` from prod p^g (1 - p)^(1 - g)."""
        bits = self._subset_bits(len(ops))
        weight = torch.where(bits, p[ops], 1 - p[ops]).prod(-1)
        picks = torch.multinomial(weight, count, replacement=False, generator=self.generator)
        return [ops[bits[int(i)]] for i in picks]

    def sample_paths(self, probs: torch.Tensor) -> torch.Tensor:
        """One op subset per edge: independent draws with ``probs``, never empty (G, E, O).

        An edge whose first draw is empty is drawn again from the non-empty subsets, which
        gives exactly the independent draw conditioned on non-emptiness.
        """
        mask = (torch.rand(probs.shape, generator=self.generator) < probs) & self.subset
        for g, e in (~mask.any(-1)).nonzero().tolist():
            ops = self.subset[g, e].nonzero().flatten()
            mask[g, e, self._draw(ops, probs[g, e], 1)[0]] = True
        return mask

    def two_paths(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per edge two distinct non-empty subsets (the same one if the subset has one op)."""
        p = self.probs()
        s = torch.zeros(self.layout.shape, dtype=torch.bool)
        u = torch.zeros_like(s)
        G, E, _ = self.layout.shape
        for g in range(G):
            for e in range(E):
                ops = self.subset[g, e].nonzero().flatten()
                if len(ops) == 1:
                    s[g, e, ops] = u[g, e, ops] = True
                    continue
                a, b = self._draw(ops, p[g, e], 2)
                s[g, e, a] = True
                u[g, e, b] = True
        return s, u

    def _path_macs(self, path: torch.Tensor) -> torch.Tensor:
        """Per (group, edge) MACs of a path: its ops (relaxed) or the cell proxy (restricted)."""
        macs = self.op_macs.to(path.device)
        total = (macs * path).sum(-1)
        if self.caps.inputs_per_node is not None:
            total = total / path.sum(-1).clamp_min(1) * self.edge_share.to(path.device)
        return total

    def ste_mixing(self, s: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                     torch.Tensor]:
        """Two-path straight-through weights, the active mask and the expected MACs."""
        dev = self.ctx.device
        sub, sd, ud = self.subset.to(dev), s.to(dev), u.to(dev)
        p = torch.sigmoid(self.alpha) * 0.999 + 5e-4
        log_on, log_off = p.log(), (1 - p).log()
        log_s = torch.where(sd, log_on, log_off).masked_fill(~sub, 0).sum(-1)
        log_u = torch.where(ud, log_on, log_off).masked_fill(~sub, 0).sum(-1)
        q_s = torch.sigmoid(log_s - log_u)
        q_u = torch.sigmoid(log_u - log_s)
        mean_s = sd / sd.sum(-1, keepdim=True).clamp_min(1)
        mean_u = ud / ud.sum(-1, keepdim=True).clamp_min(1)
        weights = (mean_s * (q_s + 1 - q_s.detach())[..., None]
                   + mean_u * (q_u - q_u.detach())[..., None])
        macs = self.fixed_macs + (q_s * self._path_macs(sd) + q_u * self._path_macs(ud)).sum()
        return weights, s | u, macs

    @staticmethod
    def mean_weights(mask: torch.Tensor) -> torch.Tensor:
        """1/n on each of an edge's n active ops: the multi-branch mean."""
        m = mask.to(torch.float32)
        return m / m.sum(-1, keepdim=True).clamp_min(1)

    def mixing(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The supernet as evaluated: the mean of every op of each edge's subset."""
        return self.mean_weights(self.subset).to(self.ctx.device), self.subset.clone()

    def arch_weights(self) -> torch.Tensor:
        return torch.sigmoid(self.alpha.detach()).cpu() * self.subset

    def arch_parameters(self) -> list[torch.Tensor]:
        """None: NSE's alpha gradient is a straight-through estimate over two sampled paths,
        and the supernet it evaluates mixes its subsets evenly, so no loss is a smooth
        function of alpha whose Hessian RobustDARTS's sharpness measure could read."""
        return []

    # -- search step -------------------------------------------------------------------------
    def step(self, batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        if not self.supernet.training:  # walking every module each step costs ~30 ms
            self.supernet.train()
        rate = torch.full(self.layout.shape, self.cfg.sample_rate)
        mask = self.sample_paths(rate)
        self.w_opt.zero_grad(set_to_none=True)
        loss, logits = self.forward_loss(batch, self.mean_weights(mask).to(self.ctx.device), mask)
        loss.backward()
        clip_and_step(self.supernet, self.w_opt, self.cfg.grad_clip)
        stats = {"loss": float(loss.detach()), "acc": accuracy(logits, batch[1])}
        if self.steps % self.cfg.a_every == 0:
            assert val_batch is not None, "NSE's alpha step needs a validation batch"
            stats.update(self.alpha_step(val_batch))
        self.steps += 1
        return stats

    def alpha_step(self, val_batch: Batch) -> dict[str, float]:
        s, u = self.two_paths()
        weights, active, macs = self.ste_mixing(s, u)
        val_loss, _ = self.forward_loss(val_batch, weights, active)
        cfg = self.cfg
        penalty = cfg.mac_weight * ((macs - self.target).abs() / self.unit) ** cfg.mac_power
        (grad,) = torch.autograd.grad(val_loss + penalty, [self.alpha])
        total = float(val_loss.detach()) + float(penalty.detach())
        self.penalty_shares.append(float(penalty.detach()) / total if total > 0 else 0.0)
        self.a_opt.zero_grad(set_to_none=True)
        self.alpha.grad = grad
        self.a_opt.step()
        self.expected_macs = float(macs.detach())
        self.drop()
        return {"val_loss": float(val_loss.detach()), "mac_penalty": float(penalty.detach())}

    def drop(self) -> list[tuple[int, int, int]]:
        """Remove ops with alpha < drop_threshold; never an edge's last op, nor (by default)
        an op of the last front."""
        alpha = self.alpha.detach().cpu()
        low = (alpha < self.cfg.drop_threshold) & self.subset
        if self.cfg.preserve_front:
            low &= ~self.front_mask
        dropped = []
        for g, e in low.any(-1).nonzero().tolist():
            for o in sorted(low[g, e].nonzero().flatten().tolist(), key=lambda o: alpha[g, e, o]):
                if int(self.subset[g, e].sum()) <= 1:
                    break
                self.subset[g, e, o] = False
                dropped.append((g, e, o))
                self.pending_events.append({
                    "kind": "drop", "group": self.layout.groups[g], "edge": e,
                    "op": self.space.ops[o], "alpha": float(alpha[g, e, o]), "step": self.steps})
        return dropped

    # -- end of a round ----------------------------------------------------------------------
    def architecture(self, mask: torch.Tensor) -> Genotype:
        """The genotype of one sampled op subset per edge, by the space's rule."""
        if not self.caps.multi_op_edges:
            noise = 1e-6 * torch.rand(mask.shape, generator=self.generator)
            return self.space.derive(self.probs() + noise, keep=mask)
        return self.space.genotype_from_mask(mask)

    def _pilot_target(self) -> float:
        p = self.probs()
        costs = [self.space.genotype_cost(self.architecture(self.sample_paths(p))).macs
                 for _ in range(self.cfg.pilot_samples)]
        return float(sum(costs) / len(costs))

    def sample_architectures(self) -> tuple[list[Genotype], int]:
        """Up to ``samples`` distinct architectures within the cost window, and the draws made.

        If none falls in the window, the one drawn closest to the target stands in, so that a
        round always has a front.
        """
        cfg, p = self.cfg, self.probs()
        lo, hi = self.target * (1 - cfg.window), self.target * (1 + cfg.window)
        found: dict[str, Genotype] = {}
        nearest: tuple[float, Genotype] | None = None
        draws = 0
        while len(found) < cfg.samples and draws < cfg.samples * cfg.draws_per_sample:
            draws += 1
            geno = self.architecture(self.sample_paths(p))
            macs = self.space.genotype_cost(geno).macs
            if lo <= macs <= hi:
                found.setdefault(geno.to_json(), geno)
            elif nearest is None or abs(macs - self.target) < nearest[0]:
                nearest = (abs(macs - self.target), geno)
        if not found and nearest is not None:
            found[nearest[1].to_json()] = nearest[1]
        return list(found.values()), draws

    def refill(self, front_mask: torch.Tensor) -> tuple[int, int]:
        """Each edge keeps its subset's ops used on the front (at least its best op by alpha)
        and takes never-tried pool ops from its queue up to K; returns (kept, added)."""
        alpha = self.alpha.detach().cpu()
        kept = added = 0
        G, E, _ = self.layout.shape
        for g in range(G):
            for e in range(E):
                keep = self.subset[g, e] & front_mask[g, e]
                if not keep.any():
                    best = alpha[g, e].masked_fill(~self.subset[g, e], -math.inf).argmax()
                    keep[best] = True
                kept += int(keep.sum())
                queue = self.queue[g][e]
                while int(keep.sum()) < self.cfg.k and queue:
                    keep[queue.pop(0)] = True
                    added += 1
                self.subset[g, e] = keep
        return kept, added

    def restart(self, round_index: int) -> None:
        """New weights (seeded by run and round), alphas at their init, fresh optimisers."""
        with torch.no_grad():
            self.alpha.fill_(self.cfg.a_init)
        dev = self.ctx.device
        devices = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.ctx.seed * 1_000_003 + 7 * round_index + 1)
            for module in self.supernet.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
        self._make_optimisers()

    def end_epoch(self, epoch: int) -> list[dict[str, Any]]:
        events, self.pending_events = self.pending_events, []
        r = self.round_of(epoch)
        if epoch + 1 == self.round_ends[r]:
            events.append(self.end_round(r))
        return events

    def end_round(self, r: int) -> dict[str, Any]:
        sampled, draws = self.sample_architectures()
        candidates = {g.to_json(): (g, False) for g in sampled}
        for point in self.front:  # the previous front competes again, with today's weights
            geno = Genotype.from_dict(point["genotype"])
            if not (self.space.mask_of(geno) & ~self.subset).any():
                candidates.setdefault(geno.to_json(), (geno, True))
        points = []
        for geno, previous in candidates.values():
            cost = self.space.genotype_cost(geno)
            points.append({"round": r, "val_acc": self.ctx.choose(geno), "macs": cost.macs,
                           "params": cost.params, "previous": previous,
                           "genotype": geno.to_dict()})
        front = [points[i] for i in pareto_front([p["val_acc"] for p in points],
                                                 [p["macs"] for p in points])]
        front.sort(key=lambda p: p["macs"])
        best = max(front, key=lambda p: p["val_acc"])
        for p in front:  # chosen by val_acc; reported on the scoring split
            p["acc"] = self.ctx.report(Genotype.from_dict(p["genotype"]))
        budget = [p for p in front if p["macs"] <= self.target * (1 + self.cfg.window)]
        at_budget = max(budget, key=lambda p: p["val_acc"]) if budget else None
        for p in front:
            self.history.append({**p, "best": p is best, "best_at_budget": p is at_budget})
        self.front, self.best = front, best
        self.front_mask = torch.zeros_like(self.subset)
        for p in front:
            self.front_mask |= self.space.mask_of(Genotype.from_dict(p["genotype"]))
        final = r == len(self.round_ends) - 1
        event: dict[str, Any] = {
            "kind": "round", "round": r, "final": final, "draws": draws,
            "scored": len(points), "target_macs": self.target,
            "window": [self.target * (1 - self.cfg.window), self.target * (1 + self.cfg.window)],
            "front": [{k: p[k] for k in ("val_acc", "acc", "macs", "params", "previous")}
                      for p in front],
            "best_val_acc": best["val_acc"], "best_acc": best["acc"],
            "best_macs": best["macs"],
            "budget_best": None if at_budget is None else {
                k: at_budget[k] for k in ("val_acc", "acc", "macs", "params")}}
        if final:
            event["budget_acc_by_round"] = self.budget_accuracies()
        if not final:
            kept, added = self.refill(self.front_mask)
            self.restart(r + 1)
            event.update(kept=kept, added=added)
        event["subsets"] = self.subset_names()
        return event

    def budget_accuracies(self) -> list[float | None]:
        """Per round, the scoring-split accuracy of its best architecture at the budget."""
        rounds = len(self.round_ends)
        out: list[float | None] = [None] * rounds
        for p in self.history:
            if p.get("best_at_budget"):
                out[int(p["round"])] = p["acc"]
        return out

    def subset_names(self) -> dict[str, list[list[str]]]:
        return {name: [[self.space.ops[o] for o in self.subset[g, e].nonzero().flatten().tolist()]
                       for e in range(len(self.layout.edges))]
                for g, name in enumerate(self.layout.groups)}

    # -- results -----------------------------------------------------------------------------
    def genotype(self) -> Genotype:
        """The most accurate architecture of the last front; before the first front, the
        subsets' ops with p >= 0.5 (edges of one op: by the space's rule)."""
        if self.best is not None:
            return Genotype.from_dict(self.best["genotype"])
        p = self.probs()
        if not self.caps.multi_op_edges:
            return self.space.derive(p, keep=self.subset)
        keep = self.subset & (p >= 0.5)
        top = p.masked_fill(~self.subset, -1).argmax(-1, keepdim=True)
        keep.scatter_(-1, top, True)
        return self.space.genotype_from_mask(keep & self.subset)

    def series(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.history]

    def epoch_metrics(self) -> dict[str, float]:
        out = {"subset_ops": float(self.subset.sum()), "target_macs": self.target,
               "w_lr": float(self.w_opt.param_groups[0]["lr"])}
        if math.isfinite(self.expected_macs):
            out["expected_macs"] = self.expected_macs
        if self.penalty_shares:  # the epoch's alpha steps
            out["mac_penalty_share"] = sum(self.penalty_shares) / len(self.penalty_shares)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha.detach().cpu(),
                "subset": self.subset.clone(), "queue": [[list(q) for q in row]
                                                        for row in self.queue],
                "front": list(self.front), "front_mask": self.front_mask.clone(),
                "best": self.best, "history": list(self.history), "steps": self.steps,
                "target": self.target, "expected_macs": self.expected_macs,
                "penalty_shares": list(self.penalty_shares),
                "pending_events": list(self.pending_events),
                "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.subset = state["subset"].clone()
        self.queue = [[list(q) for q in row] for row in state["queue"]]
        self.front = list(state["front"])
        self.front_mask = state["front_mask"].clone()
        self.best = state["best"]
        self.history = list(state["history"])
        self.steps = int(state["steps"])
        self.target = float(state["target"])
        self.penalty_shares = list(state.get("penalty_shares", []))
        self.expected_macs = float(state["expected_macs"])
        self.pending_events = list(state["pending_events"])
        self._make_optimisers()
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
