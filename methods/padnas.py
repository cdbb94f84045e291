"""PAD-NAS (Xia, Xiao, Wang; arXiv 2005.07564): progressive, automatically pruned one-shot NAS.

One-shot and not differentiable: there are no architecture parameters. A run is ``M`` stages.
Each stage trains the supernet single-path (SPOS): every step samples one architecture
uniformly from the space that remains and trains only its ops. At the end of the stage a
constrained NSGA-II (pymoo) searches that space for architectures that are accurate with
inherited weights (``SearchContext.score_genotype``: BN recalibrated, held-out images) and
cheap (FLOPs, or a latency table measured on the run's device); candidates outside
``[cost_min, cost_max]`` are discarded. Every stage but the last then counts, per edge, how
often each op appears among the architectures of non-domination rank below ``rank_limit``
and prunes the ops whose normalised frequency is at most ``prune_threshold``; the next stage
fine-tunes the pruned supernet with the weights it has. The last stage's search is the
final search: its Pareto front is the run's series, its most accurate member the genotype.

Choices the paper leaves open, each a config value documented on :class:`PadNasConfig`:

* What one architecture is in a cell space. The paper searches a chain of layers, one block
  per layer. Here a path is an architecture of the space: in the restricted space each node
  takes ``inputs_per_node`` (the space's rule: 2) of its input edges, each with one non-zero
  op; in the relaxed space every edge carries exactly one op (PAD-NAS searches the
  single-op-per-edge part of that space). The zero op ``none`` is therefore never sampled:
  an edge a node does not take *is* the zero op, and a node always has an input, which
  single-path sampling of ``none`` per edge could not guarantee. Per-edge frequencies
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
* ``cost: latency`` (``--set cost=latency``): the forward time of every op module of the
  supernet at its input shape on the run's device, median of ``latency_repeats``, measured
  once before the first step, kept in the checkpoint and logged as a ``latency_table``
  event. An architecture's latency is the sum over its ops (stem, pre-processing and
  classifier are the same for all and left out).
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
* Held-out images: the class sets ``bilevel`` so that the loop splits the training images
  into train and val halves; the searches score on val, never on the test split.

Not implemented yet: the paper's Kendall-tau check (one-shot against stand-alone accuracy
over 30 architectures per stage) needs stand-alone training of each architecture; it belongs
with the evaluation commands.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from methods.base import Batch, Method, MethodConfig, SearchContext, accuracy
from nasbench_suite.errors import UsageError
from spaces import Genotype, Space
from spaces.supernet import SuperNet

COSTS = ("flops", "latency")
BOUNDS = ("relative", "absolute")
POOLS = ("archive", "population")


@dataclass
class PadNasConfig(MethodConfig):
    """PAD-NAS hyper-parameters. Weight-training values follow the DARTS family's CIFAR setting
    (the paper's lr 0.5 / 0.1 are for ImageNet at batch 1024); the fine-tuning lr keeps the
    paper's ratio 0.1 / 0.5."""

    #: M: number of stages when ``stage_epochs`` is not given (the run's epochs split evenly,
    #: earlier stages take the remainder; a run of fewer epochs has one stage per epoch)
    stages: int = 4
    #: epochs of each stage; must sum to the run's epochs (paper: 120, 80, 40)
    stage_epochs: list[int] | None = None
    w_lr: float = 0.025
    #: peak lr of every stage after the first (fine-tuning with inherited weights)
    finetune_lr: float = 0.005
    #: each stage's lr follows a cosine from its peak down to this
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
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


# -- pure helpers (tested on their own) ---------------------------------------------------------

def stage_schedule(epochs: int, stages: int, stage_epochs: list[int] | None) -> list[int]:
    """Epochs of each stage. Explicit ``stage_epochs`` must sum to ``epochs``."""
    if stage_epochs is not None:
        if sum(stage_epochs) != epochs:
            raise UsageError(f"padnas stage_epochs {list(stage_epochs)} sum to "
                             f"{sum(stage_epochs)}, but the run has {epochs} epochs")
        return list(stage_epochs)
    m = min(stages, epochs)
    return [epochs // m + (1 if i < epochs % m else 0) for i in range(m)]


def nondominated_ranks(objectives: np.ndarray) -> np.ndarray:
    """Non-domination rank (0 = Pareto front) of each row; every column is minimised."""
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    objectives = np.asarray(objectives, dtype=float)
    if len(objectives) == 0:
        return np.zeros(0, dtype=int)
    _, rank = NonDominatedSorting().do(objectives, return_rank=True)
    return np.asarray(rank, dtype=int)


def op_frequencies(masks: torch.Tensor) -> torch.Tensor:
    """Per (group, edge) the share of each op among the architectures that take the edge.

    ``masks`` is (N, G, E, O) bool; an edge no architecture takes gets all zeros.
    """
    counts = masks.to(torch.float64).sum(0)
    total = counts.sum(-1, keepdim=True)
    return torch.where(total > 0, counts / total.clamp_min(1), torch.zeros_like(counts))


def prune_by_frequency(active: torch.Tensor, freq: torch.Tensor,
                       threshold: float) -> torch.Tensor:
    """Remove the active ops with frequency <= ``threshold``, edge by edge.

    An edge without evidence (all frequencies zero) keeps its ops, and an edge never loses
    its last op: if every op would go, the most frequent stays.
    """
    keep = active & (freq > threshold)
    evidence = (freq * active).sum(-1) > 0
    keep = torch.where(evidence[..., None], keep, active)
    empty = ~keep.any(-1) & active.any(-1)
    if empty.any():
        best = freq.masked_fill(~active, -1.0).argmax(-1, keepdim=True)
        rescue = torch.zeros_like(active).scatter_(-1, best, True)
        keep = keep | (rescue & empty[..., None])
    return keep


class Encoding:
    """Architectures of the remaining space as integer genes.

    A node gene picks which of a node's edge combinations (``inputs`` edges) it takes; an
    edge gene picks one of the edge's remaining ops. Decisions with one choice are fixed and
    are not genes. A uniformly random gene vector is a uniformly random architecture.
    """

    def __init__(self, active: torch.Tensor, node_edges: list[list[int]],
                 inputs: int | None) -> None:
        self.shape = tuple(active.shape)
        G = self.shape[0]
        self.combos = [list(itertools.combinations(ids, min(inputs or len(ids), len(ids))))
                       for ids in node_edges]
        self.edge_ops = [[torch.nonzero(active[g, e]).flatten().tolist()
                          for e in range(self.shape[1])] for g in range(G)]
        if any(not ops for row in self.edge_ops for ops in row):
            raise ValueError("every edge needs at least one remaining op")
        genes: list[tuple[str, int, int, int]] = []
        for g in range(G):
            genes += [("node", g, k, len(c)) for k, c in enumerate(self.combos) if len(c) > 1]
            genes += [("edge", g, e, len(ops)) for e, ops in enumerate(self.edge_ops[g])
                      if len(ops) > 1]
        self.genes = genes
        self.choices = np.array([n for *_, n in genes], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.genes)

    def sample(self, u: np.ndarray) -> np.ndarray:
        """Genes from uniform numbers in [0, 1), shape (..., genes)."""
        return np.minimum((u * self.choices).astype(np.int64), self.choices - 1)

    def decode(self, x: np.ndarray) -> torch.Tensor:
        """The (G, E, O) bool mask of the ops a gene vector takes."""
        G, E, _ = self.shape
        node_pick = np.zeros((G, len(self.combos)), dtype=np.int64)
        edge_pick = np.zeros((G, E), dtype=np.int64)
        for (kind, g, i, _), value in zip(self.genes, np.asarray(x, dtype=np.int64), strict=True):
            (node_pick if kind == "node" else edge_pick)[g, i] = value
        mask = torch.zeros(self.shape, dtype=torch.bool)
        for g in range(G):
            for k, combos in enumerate(self.combos):
                for e in combos[node_pick[g, k]]:
                    mask[g, e, self.edge_ops[g][e][edge_pick[g, e]]] = True
        return mask

    def edge_probability(self) -> torch.Tensor:
        """(G, E, O): probability that a uniform path runs each op."""
        G, E, O = self.shape
        probs = torch.zeros(G, E, O)
        for combos in self.combos:
            for e in {e for c in combos for e in c}:
                p_edge = sum(e in c for c in combos) / len(combos)
                for g in range(G):
                    ops = self.edge_ops[g][e]
                    probs[g, e, ops] = p_edge / len(ops)
        return probs


def cost_range(table: torch.Tensor, fixed: float, node_edges: list[list[int]],
               inputs: int | None, active: torch.Tensor) -> tuple[float, float]:
    """Cheapest and dearest architecture under an additive per-(group, edge, op) cost."""
    big = torch.finfo(torch.float64).max
    t = table.to(torch.float64)
    lo_edge = t.masked_fill(~active, big).min(-1).values
    hi_edge = t.masked_fill(~active, -big).max(-1).values
    lo = hi = float(fixed)
    for ids in node_edges:
        k = min(inputs or len(ids), len(ids))
        lo += float(lo_edge[:, ids].sort(-1).values[:, :k].sum())
        hi += float(hi_edge[:, ids].sort(-1, descending=True).values[:, :k].sum())
    return lo, hi


@dataclass
class Candidate:
    """One evaluated architecture of a search."""

    mask: torch.Tensor
    cost: float
    acc: float
    feasible: bool


# -- the method ---------------------------------------------------------------------------------

class PadNas(Method):
    name = "padnas"
    description = ("PAD-NAS: single-path supernet, constrained NSGA-II, per-edge op pruning "
                   "over M stages")
    Config = PadNasConfig
    # Not bi-level optimisation (there are no architecture parameters): the flag makes the
    # loop hold out half of the training images, so that the searches score candidates on a
    # validation split, as SPOS and PAD-NAS do, never on the test split. The validation
    # batches the loop passes to ``step`` are not used.
    bilevel = True
    cfg: PadNasConfig

    def __init__(self, space: Space, supernet: SuperNet, cfg: PadNasConfig,
                 ctx: SearchContext) -> None:
        super().__init__(space, supernet, cfg, ctx)
        self.schedule = stage_schedule(ctx.epochs, cfg.stages, cfg.stage_epochs)
        self.stage_starts = [sum(self.schedule[:i]) for i in range(len(self.schedule))]
        self.node_edges = [self.layout.node_edges(k + 2) for k in range(self.layout.nodes)]
        default_inputs = getattr(space, "inputs_per_node", None)
        self.inputs: int | None = cfg.inputs_per_node or default_inputs
        nonzero = torch.zeros(len(self.layout.ops), dtype=torch.bool)
        nonzero[space.nonzero_ops] = True
        # 'none' is never a candidate: an edge a node does not take is the zero op.
        self.candidates = self.layout.full_mask() & nonzero
        self.active = self.candidates.clone()
        self.encoding = Encoding(self.active, self.node_edges, self.inputs)
        self.w_opt = torch.optim.SGD(supernet.parameters(), lr=cfg.w_lr,
                                     momentum=cfg.w_momentum, weight_decay=cfg.w_weight_decay)
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
            self.latency = self.measure_latency()
            self.pending.append(self._latency_event())
        self.epoch = epoch
        cfg, stage = self.cfg, self.stage_of(epoch)
        peak = cfg.w_lr if stage == 0 else cfg.finetune_lr
        t = (epoch - self.stage_starts[stage]) / self.schedule[stage]
        lr = cfg.w_lr_min + (peak - cfg.w_lr_min) * (1 + math.cos(math.pi * t)) / 2
        for group in self.w_opt.param_groups:
            group["lr"] = lr

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
        nn.utils.clip_grad_norm_(self.supernet.parameters(), self.cfg.grad_clip)
        self.w_opt.step()
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

    @torch.no_grad()
    def measure_latency(self) -> torch.Tensor:
        """Median forward time (ms) of every op module at its input shape, summed per group.

        Input shapes come from one forward of the full supernet with hooks; the ops are the
        supernet's own modules (non-affine BN, BN after pools), timed in eval mode.
        """
        cfg, device = self.cfg, self.ctx.device
        net = self.supernet
        shapes: dict[tuple[int, int, str], tuple[int, ...]] = {}
        hooks = []
        for i, cell in enumerate(net.cells):
            for e, edge in enumerate(cell.edges):
                for op_name, module in edge.items():
                    def hook(_m: nn.Module, args: tuple[torch.Tensor, ...],
                             key: tuple[int, int, str] = (i, e, op_name)) -> None:
                        shapes[key] = tuple(args[0].shape[1:])
                    hooks.append(module.register_forward_pre_hook(hook))
        was_training = net.training
        net.eval()
        try:
            stem = next(net.parameters())
            size = self.space.shape.image_size
            x = torch.zeros(1, self.space.shape.in_channels, size, size, device=stem.device)
            net(x, torch.ones(self.layout.shape, device=stem.device), self.layout.full_mask())
        finally:
            for h in hooks:
                h.remove()
        cell_table = torch.zeros(self.layout.layers, *self.layout.shape[1:], dtype=torch.float64)
        for i, cell in enumerate(net.cells):
            for e, edge in enumerate(cell.edges):
                for (op_name, module), o in zip(edge.items(), edge.positions, strict=True):
                    x = torch.randn(cfg.latency_batch, *shapes[(i, e, op_name)], device=device)
                    times = []
                    for r in range(cfg.latency_warmup + cfg.latency_repeats):
                        if device.type == "cuda":
                            torch.cuda.synchronize(device)
                        t0 = time.perf_counter()
                        module(x)
                        if device.type == "cuda":
                            torch.cuda.synchronize(device)
                        if r >= cfg.latency_warmup:
                            times.append(time.perf_counter() - t0)
                    cell_table[i, e, o] = 1e3 * statistics.median(times) / cfg.latency_batch
        net.train(was_training)
        out = torch.zeros(self.layout.shape, dtype=torch.float64)
        return out.index_add_(0, torch.tensor(self.layout.cell_groups), cell_table)

    def _latency_event(self) -> dict[str, Any]:
        assert self.latency is not None
        return {"kind": "latency_table", "unit": "ms per image", "device": str(self.ctx.device),
                "batch": self.cfg.latency_batch, "repeats": self.cfg.latency_repeats,
                "statistic": "median", "ops": list(self.layout.ops),
                "groups": list(self.layout.groups), "table": self.latency.tolist()}

    # -- constrained NSGA-II -------------------------------------------------------------------
    def search(self, stage: int) -> tuple[list[Candidate], list[Candidate], dict[str, Any]]:
        """Constrained NSGA-II over the remaining space.

        Returns the archive (every distinct architecture evaluated, feasible or not), the
        final population, and a summary. An architecture outside the cost bounds is never
        scored (its accuracy would not be used) and never ranked with the feasible ones.
        """
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.core.sampling import Sampling
        from pymoo.operators.crossover.pntx import TwoPointCrossover
        from pymoo.operators.mutation.pm import PolynomialMutation
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.optimize import minimize

        cfg, enc = self.cfg, self.encoding
        lo, hi = self.cost_bounds()
        scale = max(hi - lo, 1e-12)
        archive: dict[bytes, Candidate] = {}
        scorer = self.ctx.score_genotype
        assert scorer is not None, "the search loop must provide score_genotype"

        def evaluate(x: np.ndarray) -> Candidate:
            mask = enc.decode(x)
            key = mask.numpy().tobytes()
            if key not in archive:
                cost = self.mask_cost(mask)
                feasible = lo <= cost <= hi
                acc = scorer(self.space.genotype_from_mask(mask)) if feasible else math.nan
                archive[key] = Candidate(mask, cost, acc, feasible)
            return archive[key]

        def feasible_cost(x: np.ndarray) -> bool:
            return lo <= self.mask_cost(enc.decode(x)) <= hi

        class Arch(Problem):
            def __init__(self) -> None:
                super().__init__(n_var=len(enc), n_obj=2, n_ieq_constr=2, xl=0.0,
                                 xu=(enc.choices - 1).astype(float))

            def _evaluate(self, X: np.ndarray, out: dict[str, Any], *args: Any,
                          **kwargs: Any) -> None:
                cands = [evaluate(np.rint(x).astype(np.int64)) for x in X]
                # Infeasible candidates compare by constraint violation only (pymoo's
                # constraint domination), so their objectives are placeholders.
                out["F"] = np.array([[-(c.acc if c.feasible else 0.0), c.cost] for c in cands])
                out["G"] = np.array([[(lo - c.cost) / scale, (c.cost - hi) / scale]
                                     for c in cands])

        class BoundedSampling(Sampling):
            """Uniform random architectures, redrawing those outside the cost bounds."""

            def _do(self, problem: Problem, n_samples: int, *args: Any,
                    random_state: np.random.Generator | None = None, **kwargs: Any) -> np.ndarray:
                assert random_state is not None
                X = enc.sample(random_state.random((n_samples, len(enc))))
                for _ in range(cfg.sample_retries):
                    bad = [i for i, x in enumerate(X) if not feasible_cost(x)]
                    if not bad:
                        break
                    X[bad] = enc.sample(random_state.random((len(bad), len(enc))))
                return X.astype(float)

        seed = (self.ctx.seed * 1_000_003 + 97 * stage + 11) % (2**32)
        if len(enc) == 0:  # a single architecture is left: nothing to search
            only = evaluate(np.zeros(0, dtype=np.int64))
            population = [only]
            initial = [only]
        else:
            algorithm = NSGA2(
                pop_size=cfg.population, sampling=BoundedSampling(),
                crossover=TwoPointCrossover(prob=cfg.crossover_prob),
                mutation=PolynomialMutation(prob=1.0, prob_var=cfg.mutation_prob,
                                            eta=cfg.mutation_eta, vtype=float,
                                            repair=RoundingRepair()),
                eliminate_duplicates=True)
            initial_keys: list[bytes] = []

            def remember_initial(alg: Any) -> None:
                if alg.n_gen == 1:
                    for x in alg.pop.get("X"):
                        initial_keys.append(enc.decode(np.rint(x).astype(np.int64))
                                            .numpy().tobytes())

            result = minimize(Arch(), algorithm, ("n_gen", cfg.generations + 1), seed=seed,
                              verbose=False, callback=remember_initial)
            population = [evaluate(np.rint(x).astype(np.int64)) for x in result.pop.get("X")]
            initial = [archive[k] for k in initial_keys]
        feasible_initial = [c.acc for c in initial if c.feasible]
        summary = {
            "evaluated": len(archive),
            "scored": sum(c.feasible for c in archive.values()),
            "discarded": sum(not c.feasible for c in archive.values()),
            "cost_bounds": [lo, hi],
            "random_path_mean_acc": (float(np.mean(feasible_initial)) if feasible_initial
                                     else None),
            "seed": seed,
        }
        return list(archive.values()), population, summary

    def ranked(self, candidates: list[Candidate]) -> tuple[list[Candidate], np.ndarray]:
        """The feasible candidates and their non-domination ranks (accuracy up, cost down)."""
        feasible = [c for c in candidates if c.feasible]
        F = np.array([[-c.acc, c.cost] for c in feasible]).reshape(-1, 2)
        return feasible, nondominated_ranks(F)

    def _point(self, c: Candidate, stage: int) -> dict[str, Any]:
        genotype = self.space.genotype_from_mask(c.mask)
        cost = self.space.genotype_cost(genotype)
        return {"stage": stage + 1, "inherited_acc": c.acc, "cost": c.cost,
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
        pool = feasible if self.cfg.frequency_pool == "archive" else \
            [c for c in population if c.feasible]
        pool_ranks = ranks if pool is feasible else self.ranked(pool)[1]
        counted = [c.mask for c, r in zip(pool, pool_ranks, strict=True)
                   if r < self.cfg.rank_limit]
        self.freq = op_frequencies(torch.stack(counted))
        before = self.active
        self.active = prune_by_frequency(before, self.freq, self.cfg.prune_threshold)
        self.encoding = Encoding(self.active, self.node_edges, self.inputs)
        removed = [[self.layout.groups[g], e, self.layout.ops[o]]
                   for g, e, o in torch.nonzero(before & ~self.active).tolist()]
        events.append({"kind": "prune", "stage": stage + 1, "pool": self.cfg.frequency_pool,
                       "counted": len(counted), "rank_limit": self.cfg.rank_limit,
                       "threshold": self.cfg.prune_threshold, "removed": removed,
                       "remaining_ops": int(self.active.sum()),
                       "frequencies": self.freq.tolist()})
        return events

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
