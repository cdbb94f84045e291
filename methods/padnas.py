"""PAD-NAS (Xia, Xiao, Wang; arXiv 2005.07564): progressive, automatically pruned one-shot NAS.

One-shot and not differentiable: there are no architecture parameters. A run is ``M`` stages.
Each stage trains the supernet single-path (SPOS): every step samples one architecture
uniformly from the space that remains and trains only its ops. At the end of the stage a
constrained NSGA-II (methods.padnas_search) searches that space for architectures that are
accurate with inherited weights (``SearchContext.choose``: BN recalibrated, the method's
held-out split) and cheap (FLOPs, or a latency table measured on the run's device,
spaces.latency); candidates outside ``[cost_min, cost_max]`` are discarded. Every stage but
the last then counts, per edge, how often each op appears among the architectures of
non-domination rank below ``rank_limit`` and prunes the ops whose normalised frequency is at
most ``prune_threshold`` (nasbench_suite.methods.padnas_prune); the next stage fine-tunes the pruned
supernet with the weights it has. The last stage's search is the final search: its Pareto
front is the run's series, its most accurate member the genotype; each front member's
accuracy is also measured on the run's scoring split (``SearchContext.report``), the number
the run reports.

Choices the paper leaves open, each a config value documented on :class:`PadNasConfig`:

* What one architecture is in a cell space. The paper searches a chain of layers, one block
  per layer. Here a path is an architecture of the space: where the space's derivation keeps
  ``inputs_per_node`` edges per node (DARTS's: 2), each node takes that many of its input
  edges, each with one non-zero op; where it keeps any number (GOLD-NAS's), every edge
  carries exactly one op (PAD-NAS searches the single-op-per-edge part of that space). The
  zero op ``none`` is therefore never sampled: an edge a node does not take *is* the zero
  op, and a node always has an input, which single-path sampling of ``none`` per edge could
  not guarantee. Per-edge frequencies
  count the non-zero ops on the edges an architecture takes; an edge no counted architecture
  takes carries no evidence and keeps its ops.
* Which architectures are counted: every feasible architecture the search evaluated (its
  archive, ``frequency_pool: archive``), ranked together. The final population alone
  (``population``) usually holds fewer than 10 fronts, so "rank < 10" would keep all of it.
  An op no counted architecture uses has frequency 0 and goes: with a small archive (the
  mini preset scores about 60 architectures per search) the first pruning is coarse.
* The cost window: ``cost_bounds: relative`` (default) reads ``cost_min``/``cost_max`` as
  fractions of the range from the cheapest to the dearest architecture of the unpruned
  space (exact: costs add up per op), ``absolute`` as multiply-adds or milliseconds. A
  candidate outside it is never scored and never ranked or counted; the initial population
  redraws such candidates (``sample_retries`` rounds); offspring outside it lose to every
  feasible one by pymoo's constraint domination. Genes are integers: polynomial mutation
  (``mutation_eta``) rounded by pymoo's RoundingRepair, two-point crossover; the search is
  seeded from the run's seed and the stage, and runs inside ``end_epoch``, so a checkpoint
  never holds a search half done.
* ``cost: latency`` (``--set cost=latency``): the forward time of every op at its input
  shape on the run's device (nasbench_suite.spaces.latency: torch.utils.benchmark, median of
  ``latency_repeats``), measured once before the first step, kept in the checkpoint and
  logged as a ``latency_table`` event. An architecture's latency is the sum over its ops
  (stem, pre-processing and classifier are the same for all and left out).
* Stages: the sources give "M = 4" with three training lengths (120 + 80 + 40 epochs at
  lr 0.5, 0.1, 0.1 on ImageNet), which cannot both hold. Here a stage is a training period
  followed by a search; ``stage_epochs`` lists them (the paper preset: 120, 80, 40) and
  ``stages`` splits the run's epochs evenly when it is not given.
* The supernet of a single-path method is its paths: :meth:`PadNas.mixing` returns the
  current architecture's path (one-hot weights, only its ops active), so the run's
  supernet-to-derived gap is zero by construction (the derived network *is* that path,
  which is the claim of inherited-weight evaluation). Each search event also reports the
  mean inherited accuracy of its random initial population (``random_path_mean_acc``:
  uniformly sampled paths within the cost window), the number to compare with the front.
  Before the first search the returned architecture is a fixed placeholder (each node's
  first edge combination, each edge's first remaining op).
* Held-out images: the class sets ``needs_heldout`` so that the loop splits the training
  images into train and val halves; the searches choose on val, never on the scoring or
  the test split.

* Evidence: an edge's frequencies prune only when at least ``min_evidence`` counted
  architectures take it (default 100: a share of ``prune_threshold`` = 1% is then at least
  one architecture), and a stage whose best front member is within ``chance_margin`` of
  chance accuracy prunes nothing (a one-shot supernet at chance ranks nothing). Both are
  logged (``prune`` events: ``edge_counts``, ``edges_with_evidence``; ``prune_skipped``).
  Fronts over two objectives are narrow, so "rank < 10" counts few architectures: about
  45-85 in a search that scores 64-250 (measured on digits, mini preset). The mini preset
  therefore prunes at 5% with 20 architectures per edge (the same rule: a share is at least
  one architecture); the paper preset keeps 1% and 100.
* Kept checkpoints: the state after each stage (``checkpoints/stage-N.pt``), which
  ``nasbench rankcorr`` reads to measure the paper's claim (Kendall tau of one-shot against
  stand-alone accuracy per stage, nasbench_suite.experiments.rankcorr).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from nasbench_suite.methods.base import Batch, Method, MethodConfig, SearchContext, accuracy
from nasbench_suite.methods.padnas_prune import edge_counts, op_frequencies, prune_by_frequency
from nasbench_suite.methods.padnas_search import (
    Candidate,
    Encoding,
    NsgaSettings,
    constrained_nsga2,
    cost_range,
)
from nasbench_suite.methods.training import (
    WeightSGD,
    clip_and_step,
    cosine,
    nondominated_ranks,
    set_lr,
    weight_optimizer,
)
from nasbench_suite.spaces import Genotype, Space
from nasbench_suite.spaces.supernet import SuperNet

COSTS = ("flops", "latency")
BOUNDS = ("relative", "absolute")
POOLS = ("archive", "population")


@dataclass
class PadNasConfig(MethodConfig, WeightSGD):
    """PAD-NAS hyper-parameters. Weight-training values follow the DARTS family's CIFAR setting
    (the paper's lr 0.5 / 0.1 are for ImageNet at batch 1024); the fine-tuning lr keeps the
    paper's ratio 0.1 / 0.5."""

    #: M: number of stages when ``stage_epochs`` is not given (the run's epochs split evenly,
    #: earlier stages take the remainder; a run of fewer epochs has one stage per epoch)
    stages: int = 4
    #: epochs of each stage; must sum to the run's epochs (paper: 120, 80, 40)
    stage_epochs: list[int] | None = None
    #: peak lr of every stage after the first (fine-tuning with inherited weights); each
    #: stage's lr follows a cosine from its peak (w_lr for the first) down to w_lr_min
    finetune_lr: float = 0.005
    #: inputs a node takes (None: the space's rule, 2 in restricted, every edge in relaxed)
    inputs_per_node: int | None = None
    #: NSGA-II (paper: population 64, 40 iterations after the initial population)
    population: int = 64
    generations: int = 40
    crossover_prob: float = 0.9
    #: polynomial mutation on integer genes (rounded); small eta so a gene can actually move
    mutation_eta: float = 3.0
    #: probability per gene (None: pymoo's 1 / number of genes)
    mutation_prob: float | None = None
    #: ``flops`` (multiply-adds of the derived network) or ``latency`` (ms per image, summed
    #: over the ops of a table measured once on the run's device)
    cost: str = "flops"
    #: ``relative``: bounds are fractions of [cheapest, dearest] architecture of the unpruned
    #: space; ``absolute``: multiply-adds or milliseconds. The default window discards the
    #: extreme tenth at each end, so the constraint acts in every run; 0 and 1 switch it off.
    cost_bounds: str = "relative"
    cost_min: float = 0.1
    cost_max: float = 0.9
    #: a sampled initial population retries candidates outside the bounds this many rounds
    sample_retries: int = 20
    rank_limit: int = 10
    prune_threshold: float = 0.01
    #: an edge's op frequencies count only when at least this many counted architectures
    #: take the edge (100: a share of 1% is then at least one architecture)
    min_evidence: int = 100
    #: a stage prunes only when the best front member's held-out accuracy beats chance
    #: (1 / classes) by this much: a one-shot supernet at chance carries no evidence
    chance_margin: float = 0.05
    frequency_pool: str = "archive"
    #: latency table: timed forwards per op (median) after warm-up runs, at this batch size
    latency_repeats: int = 7
    latency_warmup: int = 2
    latency_batch: int = 1

    def __post_init__(self) -> None:
        if self.stages < 1:
            raise ValueError(f"stages must be at least 1, got {self.stages}")
        if self.stage_epochs is not None and (not self.stage_epochs
                                              or min(self.stage_epochs) < 1):
            raise ValueError(f"stage_epochs must be positive epoch counts, got {self.stage_epochs}")
        if self.inputs_per_node is not None and self.inputs_per_node < 1:
            raise ValueError(f"inputs_per_node must be positive, got {self.inputs_per_node}")
        if self.population < 2:
            raise ValueError(f"population must be at least 2, got {self.population}")
        if self.generations < 0:
            raise ValueError(f"generations must be >= 0, got {self.generations}")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        if self.cost_bounds not in BOUNDS:
            raise ValueError(f"cost_bounds must be one of {', '.join(BOUNDS)}, "
                             f"got {self.cost_bounds!r}")
        if not self.cost_min < self.cost_max:
            raise ValueError(f"cost_min ({self.cost_min}) must be below cost_max "
                             f"({self.cost_max})")
        if self.cost_bounds == "relative" and not 0 <= self.cost_min < self.cost_max <= 1:
            raise ValueError("relative cost bounds must satisfy 0 <= cost_min < cost_max <= 1")
        if self.frequency_pool not in POOLS:
            raise ValueError(f"frequency_pool must be one of {', '.join(POOLS)}, "
                             f"got {self.frequency_pool!r}")
        if self.rank_limit < 1:
            raise ValueError(f"rank_limit must be at least 1, got {self.rank_limit}")
        if self.min_evidence < 0 or not 0 <= self.chance_margin < 1:
            raise ValueError("min_evidence must be >= 0 and chance_margin in [0, 1)")
        if not 0 <= self.prune_threshold < 1:
            raise ValueError(f"prune_threshold must be in [0, 1), got {self.prune_threshold}")
        for name in ("crossover_prob", "mutation_prob"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name in ("sample_retries", "latency_repeats", "latency_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.latency_warmup < 0:
            raise ValueError(f"latency_warmup must be >= 0, got {self.latency_warmup}")
        self.check_weights()


# -- schedule --------------------------------------------------------------------------------

def stage_schedule(epochs: int, stages: int, stage_epochs: list[int] | None) -> list[int]:
    """Epochs of each stage. Explicit ``stage_epochs`` must sum to ``epochs``."""
    if stage_epochs is not None:
        if sum(stage_epochs) != epochs:
            raise ValueError(f"padnas stage_epochs {list(stage_epochs)} sum to "
                             f"{sum(stage_epochs)}, but the run has {epochs} epochs")
        return list(stage_epochs)
    if epochs < stages:
        raise ValueError(f"padnas splits its epochs over {stages} stages; {epochs} epoch(s) "
                         f"are fewer (give at least {stages} epochs, or hp.stages)")
    return [epochs // stages + (1 if i < epochs % stages else 0) for i in range(stages)]


# -- the method ---------------------------------------------------------------------------------

class PadNas(Method):
    name = "padnas"
    description = ("PAD-NAS: single-path supernet, constrained NSGA-II, per-edge op pruning "
                   "over M stages")
    Config = PadNasConfig
    # Not bi-level (there are no architecture parameters), but its searches choose by
    # held-out accuracy: the loop holds out a validation split for them, as SPOS and PAD-NAS
    # do; the numbers it reports come from the run's scoring split.
    needs_heldout = True
    measures_gap = False
    cfg: PadNasConfig

    @classmethod
    def unrunnable(cls, hp: MethodConfig, epochs: int) -> str | None:
        assert isinstance(hp, PadNasConfig)
        try:
            stage_schedule(epochs, hp.stages, hp.stage_epochs)
        except ValueError as error:
            return str(error)
        return None

    def __init__(self, space: Space, supernet: SuperNet, cfg: PadNasConfig,
                 ctx: SearchContext) -> None:
        super().__init__(space, supernet, cfg, ctx)
        self.schedule = stage_schedule(ctx.epochs, cfg.stages, cfg.stage_epochs)
        self.stage_starts = [sum(self.schedule[:i]) for i in range(len(self.schedule))]
        self.node_edges = [self.layout.node_edges(k) for k in self.layout.node_ids]
        self.inputs: int | None = cfg.inputs_per_node or self.caps.inputs_per_node
        # 'none' is never a candidate: an edge a node does not take is the zero op.
        self.candidates = self.layout.full_mask() & space.nonzero_mask()
        self.active = self.candidates.clone()
        self.encoding = Encoding(self.active, self.node_edges, self.inputs)
        self.w_opt = weight_optimizer(supernet, cfg)
        self.latency: torch.Tensor | None = None  # (G, E, O) ms, measured on first need
        self.current: torch.Tensor | None = None  # mask of the architecture returned now
        self.front: list[dict[str, Any]] = []
        self.freq: torch.Tensor | None = None
        self.visits = torch.zeros(self.layout.shape, dtype=torch.int64)
        self.pending: list[dict[str, Any]] = []
        self.final_done = False
        self.epoch = 0

    # -- schedule ------------------------------------------------------------------------------
    def stage_of(self, epoch: int) -> int:
        return max(i for i, s in enumerate(self.stage_starts) if s <= epoch)

    def begin_epoch(self, epoch: int) -> None:
        if self.cfg.cost == "latency" and self.latency is None:
            # imported here: torch.utils.benchmark imports torch's C++-extension module,
            # which logs a CUDA warning that would precede every error line of the CLI
            from nasbench_suite.spaces.latency import latency_table

            self.latency = latency_table(self.space, self.ctx.device, self.cfg.latency_batch,
                                         self.cfg.latency_repeats, self.cfg.latency_warmup)
            self.pending.append(self._latency_event())
        self.epoch = epoch
        cfg, stage = self.cfg, self.stage_of(epoch)
        peak = cfg.w_lr if stage == 0 else cfg.finetune_lr
        t = (epoch - self.stage_starts[stage]) / self.schedule[stage]
        set_lr(self.w_opt, cosine(t, peak, cfg.w_lr_min))

    # -- single-path training ------------------------------------------------------------------
    def sample_path(self) -> torch.Tensor:
        """A uniformly random architecture of the remaining space, from the method's generator."""
        u = torch.rand(len(self.encoding), generator=self.generator, dtype=torch.float64)
        return self.encoding.decode(self.encoding.sample(u.numpy()))

    def step(self, batch: Batch, val_batch: Batch | None) -> dict[str, float]:
        path = self.sample_path()
        self.visits += path
        self.supernet.train()
        # set_to_none: ops off the path keep grad None, so SGD leaves them (and their
        # momentum and weight decay) untouched.
        self.w_opt.zero_grad(set_to_none=True)
        loss, logits = self.forward_loss(batch, path.to(self.ctx.device, torch.float32), path)
        loss.backward()
        clip_and_step(self.supernet, self.w_opt, self.cfg.grad_clip)
        return {"loss": float(loss.detach()), "acc": accuracy(logits, batch[1])}

    # -- cost ----------------------------------------------------------------------------------
    def cost_table(self) -> tuple[torch.Tensor, float]:
        """(G, E, O) additive cost per op and the fixed part, in the objective's unit."""
        if self.cfg.cost == "latency":
            assert self.latency is not None
            return self.latency, 0.0
        table = self.space.cost
        return table.group_flops() / 2, table.fixed_flops / 2

    def mask_cost(self, mask: torch.Tensor) -> float:
        table, fixed = self.cost_table()
        return float(fixed + table[mask].sum())

    def cost_bounds(self) -> tuple[float, float]:
        """Absolute [cost_min, cost_max]; relative bounds refer to the unpruned space."""
        cfg = self.cfg
        if cfg.cost_bounds == "absolute":
            return cfg.cost_min, cfg.cost_max
        table, fixed = self.cost_table()
        lo, hi = cost_range(table, fixed, self.node_edges, self.inputs, self.candidates)
        return lo + cfg.cost_min * (hi - lo), lo + cfg.cost_max * (hi - lo)

    def _latency_event(self) -> dict[str, Any]:
        assert self.latency is not None
        return {"kind": "latency_table", "unit": "ms per image", "device": str(self.ctx.device),
                "batch": self.cfg.latency_batch, "repeats": self.cfg.latency_repeats,
                "statistic": "median", "ops": list(self.layout.ops),
                "groups": list(self.layout.groups), "table": self.latency.tolist()}

    # -- constrained NSGA-II -------------------------------------------------------------------
    def search(self, stage: int) -> tuple[list[Candidate], list[Candidate], dict[str, Any]]:
        """Constrained NSGA-II over the remaining space (methods.padnas_search), scoring
        candidates with inherited weights on the method's held-out split."""
        cfg = self.cfg

        def score(mask: torch.Tensor) -> float:
            return self.ctx.choose(self.space.genotype_from_mask(mask))

        settings = NsgaSettings(cfg.population, cfg.generations, cfg.crossover_prob,
                                cfg.mutation_eta, cfg.mutation_prob, cfg.sample_retries)
        seed = (self.ctx.seed * 1_000_003 + 97 * stage + 11) % (2**32)
        return constrained_nsga2(self.encoding, self.mask_cost, self.cost_bounds(), score,
                                 settings, seed)

    def ranked(self, candidates: list[Candidate]) -> tuple[list[Candidate], np.ndarray]:
        """The feasible candidates and their non-domination ranks (accuracy up, cost down)."""
        feasible = [c for c in candidates if c.feasible]
        F = np.array([[-c.acc, c.cost] for c in feasible]).reshape(-1, 2)
        return feasible, nondominated_ranks(F)

    def _point(self, c: Candidate, stage: int) -> dict[str, Any]:
        genotype = self.space.genotype_from_mask(c.mask)
        cost = self.space.genotype_cost(genotype)
        # chosen by its held-out accuracy (val_acc); reported on the run's scoring split (acc)
        return {"stage": stage + 1, "val_acc": c.acc,
                "acc": self.ctx.report(genotype), "cost": c.cost,
                "macs": cost.macs, "params": cost.params,
                "param_free_share": genotype.parameter_free_share(),
                "genotype": genotype.to_dict()}

    # -- end of epoch: search, prune, record ----------------------------------------------------
    def end_epoch(self, epoch: int) -> list[dict[str, Any]]:
        events, self.pending = self.pending, []
        stage = self.stage_of(epoch)
        if epoch == 0:
            lo, hi = self.cost_bounds()
            events.append({"kind": "schedule", "stage_epochs": self.schedule,
                           "cost": self.cfg.cost, "cost_bounds": [lo, hi],
                           "inputs_per_node": self.inputs})
        events.append({"kind": "op_visits", "stage": stage + 1, "counts": self.visits.tolist()})
        self.visits.zero_()
        if epoch != self.stage_starts[stage] + self.schedule[stage] - 1:
            return events
        final = stage == len(self.schedule) - 1
        archive, population, summary = self.search(stage)
        feasible, ranks = self.ranked(archive)
        front = sorted((c for c, r in zip(feasible, ranks, strict=True) if r == 0),
                       key=lambda c: (c.cost, -c.acc))
        if front:
            best = max(front, key=lambda c: (c.acc, -c.cost))
            self.current = best.mask.clone()
            self.front = [self._point(c, stage) for c in front]
        elif final:
            raise RuntimeError(
                f"PAD-NAS's final search found no architecture with cost in "
                f"[{summary['cost_bounds'][0]:.4g}, {summary['cost_bounds'][1]:.4g}]; "
                f"widen cost_min/cost_max or enlarge population/generations")
        self.final_done = final
        events.append({"kind": "search", "stage": stage + 1, "final": final,
                       "population": self.cfg.population, "generations": self.cfg.generations,
                       **summary,
                       "front": [{k: v for k, v in p.items() if k != "genotype"}
                                 for p in self.front] if front else []})
        if final or not feasible:
            return events
        chance = 1.0 / self.space.shape.num_classes
        best_acc = max(c.acc for c in front) if front else 0.0
        if best_acc <= chance + self.cfg.chance_margin:
            events.append({"kind": "prune_skipped", "stage": stage + 1,
                           "reason": "the one-shot front is at chance", "best_acc": best_acc,
                           "chance": chance, "margin": self.cfg.chance_margin})
            return events
        pool = feasible if self.cfg.frequency_pool == "archive" else \
            [c for c in population if c.feasible]
        pool_ranks = ranks if pool is feasible else self.ranked(pool)[1]
        counted = torch.stack([c.mask for c, r in zip(pool, pool_ranks, strict=True)
                               if r < self.cfg.rank_limit])
        self.freq = op_frequencies(counted)
        counts = edge_counts(counted)
        before = self.active
        self.active = prune_by_frequency(before, self.freq, self.cfg.prune_threshold, counts,
                                         self.cfg.min_evidence)
        self.encoding = Encoding(self.active, self.node_edges, self.inputs)
        removed = [[self.layout.groups[g], e, self.layout.ops[o]]
                   for g, e, o in torch.nonzero(before & ~self.active).tolist()]
        events.append({"kind": "prune", "stage": stage + 1, "pool": self.cfg.frequency_pool,
                       "counted": len(counted), "rank_limit": self.cfg.rank_limit,
                       "threshold": self.cfg.prune_threshold, "removed": removed,
                       "min_evidence": self.cfg.min_evidence,
                       "edges_with_evidence": int((counts >= self.cfg.min_evidence).sum()),
                       "edge_counts": counts.tolist(),
                       "best_acc": best_acc, "remaining_ops": int(self.active.sum()),
                       "frequencies": self.freq.tolist()})
        return events

    def keep_checkpoint(self, epoch: int) -> str | None:
        """The state after each stage's last epoch is kept (rankcorr reads each stage's
        supernet)."""
        stage = self.stage_of(epoch)
        if epoch == self.stage_starts[stage] + self.schedule[stage] - 1:
            return f"stage-{stage + 1}"
        return None

    # -- what the loop reads -------------------------------------------------------------------
    def _current_mask(self) -> torch.Tensor:
        """The architecture returned now; before the first search a fixed placeholder
        (first edge combination, first remaining op)."""
        if self.current is not None:
            return self.current
        return self.encoding.decode(np.zeros(len(self.encoding), dtype=np.int64))

    def mixing(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current architecture as a path: one-hot weights, only its ops active.

        A single-path supernet is evaluated one path at a time, and the path of the returned
        architecture is exactly its derived network; running the other remaining ops with
        zero weight would only cost time. The remaining ops are ``remaining_ops`` in the
        metrics and the non-zero entries of :meth:`arch_weights`.
        """
        current = self._current_mask()
        return current.to(self.ctx.device, torch.float32), current

    def arch_weights(self) -> torch.Tensor:
        """The probability that a training path runs each op (pruning shows as zeros)."""
        return self.encoding.edge_probability()

    def genotype(self) -> Genotype:
        return self.space.genotype_from_mask(self._current_mask())

    def series(self) -> list[dict[str, Any]]:
        """The final search's Pareto front (cost ascending), once it has run."""
        return list(self.front) if self.final_done else []

    def epoch_metrics(self) -> dict[str, float]:
        return {"lr": float(self.w_opt.param_groups[0]["lr"]),
                "stage": float(self.stage_of(self.epoch) + 1),
                "remaining_ops": float(self.active.sum())}

    def progress(self) -> dict[str, float]:
        return {"ops": float(self.active.sum())}

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "w_opt": self.w_opt.state_dict(),
                "active": self.active.clone(), "latency": self.latency,
                "current": self.current, "front": self.front, "freq": self.freq,
                "visits": self.visits.clone(), "pending": list(self.pending),
                "final_done": self.final_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.w_opt.load_state_dict(state["w_opt"])
        self.active = state["active"].clone()
        self.encoding = Encoding(self.active, self.node_edges, self.inputs)
        self.latency = state["latency"]
        self.current = state["current"]
        self.front = list(state["front"])
        self.freq = state["freq"]
        self.visits = state["visits"].clone()
        self.pending = list(state["pending"])
        self.final_done = bool(state["final_done"])
