"""PAD-NAS's evolutionary search: architectures as integer genes, constrained NSGA-II (pymoo).

The search space that remains after pruning is encoded as genes (:class:`Encoding`); a
constrained NSGA-II (population, generations, polynomial mutation on integer genes rounded by
pymoo's RoundingRepair, two-point crossover) looks for architectures that are accurate (a
scorer the method supplies: inherited weights on its held-out split) and cheap (an additive
per-op cost: FLOPs or measured latency). Candidates outside ``[cost_min, cost_max]`` are
never scored: the initial population redraws them, offspring outside lose to every feasible
one by pymoo's constraint domination.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


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


@dataclass(frozen=True)
class NsgaSettings:
    """NSGA-II's knobs (paper: population 64, 40 generations after the initial one)."""

    population: int
    generations: int
    crossover_prob: float
    mutation_eta: float
    mutation_prob: float | None
    sample_retries: int


def constrained_nsga2(enc: Encoding, mask_cost: Callable[[torch.Tensor], float],
                      bounds: tuple[float, float], score: Callable[[torch.Tensor], float],
                      settings: NsgaSettings, seed: int
                      ) -> tuple[list[Candidate], list[Candidate], dict[str, Any]]:
    """Constrained NSGA-II over ``enc``'s space, maximising ``score`` and minimising cost.

    Returns the archive (every distinct architecture evaluated, feasible or not), the final
    population, and a summary (counts, the bounds, the mean score of the random initial
    population: the number to compare the front with).
    """
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.core.sampling import Sampling
    from pymoo.operators.crossover.pntx import TwoPointCrossover
    from pymoo.operators.mutation.pm import PolynomialMutation
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.optimize import minimize

    lo, hi = bounds
    scale = max(hi - lo, 1e-12)
    archive: dict[bytes, Candidate] = {}

    def evaluate(x: np.ndarray) -> Candidate:
        mask = enc.decode(x)
        key = mask.numpy().tobytes()
        if key not in archive:
            cost = mask_cost(mask)
            feasible = lo <= cost <= hi
            acc = score(mask) if feasible else math.nan
            archive[key] = Candidate(mask, cost, acc, feasible)
        return archive[key]

    def feasible_cost(x: np.ndarray) -> bool:
        return lo <= mask_cost(enc.decode(x)) <= hi

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
            for _ in range(settings.sample_retries):
                bad = [i for i, x in enumerate(X) if not feasible_cost(x)]
                if not bad:
                    break
                X[bad] = enc.sample(random_state.random((len(bad), len(enc))))
            return X.astype(float)

    if len(enc) == 0:  # a single architecture is left: nothing to search
        only = evaluate(np.zeros(0, dtype=np.int64))
        population = [only]
        initial = [only]
    else:
        algorithm = NSGA2(
            pop_size=settings.population, sampling=BoundedSampling(),
            crossover=TwoPointCrossover(prob=settings.crossover_prob),
            mutation=PolynomialMutation(prob=1.0, prob_var=settings.mutation_prob,
                                        eta=settings.mutation_eta, vtype=float,
                                        repair=RoundingRepair()),
            eliminate_duplicates=True)
        initial_keys: list[bytes] = []

        def remember_initial(alg: Any) -> None:
            if alg.n_gen == 1:
                for x in alg.pop.get("X"):
                    initial_keys.append(enc.decode(np.rint(x).astype(np.int64))
                                        .numpy().tobytes())

        result = minimize(Arch(), algorithm, ("n_gen", settings.generations + 1), seed=seed,
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
