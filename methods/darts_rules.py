"""Two remedies from the literature for DARTS's collapse, as plain functions.

Both are options of :class:`methods.darts.Darts` (``early_stop``, ``max_skips``) and are also
applied after the fact to a recorded DARTS search (``nasbench reproduce darts-failure``): a
search with the early stop is the same search up to its stop, and a skip limit changes only
the derivation, so replaying the rule on the recorded trajectory gives exactly what the live
option would.

* **DARTS-ES** (Zela et al., "Understanding and Robustifying DARTS", ICLR 2020): stop once the
  dominant (largest) eigenvalue of the validation loss's Hessian w.r.t. the alphas has grown
  too much, ``mean_w(lambda, i - k) / mean_w(lambda, i) < ratio`` with ``k = 5``,
  ``ratio = 0.75`` and ``mean_w`` the mean over a window of ``w = 5`` measurements, and return
  the architecture of epoch ``i - k``. The paper averages over a local window; here the
  window ends at the epoch (a causal rule: it never looks ahead).
* **P-DARTS's skip limit** (Chen et al., ICCV 2019): derive the cell as DARTS does; while a
  normal cell keeps more than ``M`` skip connections (M = 2), keep the ``M`` strongest, set
  the others' weights to zero and derive again (the edge then takes its next best op, or a
  node its next best edge).
"""

from __future__ import annotations

import torch
from nasbench_suite.spaces import Genotype, Space

SKIP = "skip_connect"


def early_stop_epoch(eigenvalues: list[tuple[int, float]], k: int = 5, window: int = 5,
                     ratio: float = 0.75) -> int | None:
    """The epoch ``i`` at which DARTS-ES stops, from ``(epoch, eigenvalue)`` measurements in
    epoch order, or None if it never does. The architecture to return is epoch ``i - k``'s.

    ``k`` counts measurements (one per epoch when the eigenvalue is measured every epoch).
    """
    values = [v for _, v in eigenvalues]
    for i in range(k + window - 1, len(values)):
        now = sum(values[i - window + 1:i + 1]) / window
        before = sum(values[i - k - window + 1:i - k + 1]) / window
        if now > 0 and before / now < ratio:
            return eigenvalues[i][0]
    return None


def normal_skips(genotype: Genotype) -> dict[str, int]:
    """Skip connections kept per normal group."""
    return {g: sum(op == SKIP for op, _, _ in genotype.groups[g].edges)
            for g in genotype.normal_groups()}


def limit_skips(space: Space, weights: torch.Tensor, max_skips: int,
                keep: torch.Tensor | None = None) -> Genotype:
    """P-DARTS's rule on ``weights`` (G, E, O): derive; in every normal group with more than
    ``max_skips`` kept skip connections, zero the weight of all but the strongest
    ``max_skips`` and derive again, until none has more."""
    if SKIP not in space.ops:
        return space.derive(weights, keep)
    s = space.ops.index(SKIP)
    weights = weights.detach().cpu().clone()
    genotype = space.derive(weights, keep)
    groups = list(space.layout.groups)
    edge_of = {(e.input, e.node): e.index for e in space.layout.edges}
    for _ in range(weights.shape[1] * len(groups)):  # each pass removes at least one skip
        over = {g: n for g, n in normal_skips(genotype).items() if n > max_skips}
        if not over:
            return genotype
        for name in over:
            g = groups.index(name)
            kept = [edge_of[(src, dst)] for op, src, dst in genotype.groups[name].edges
                    if op == SKIP]
            kept.sort(key=lambda e: -float(weights[g, e, s]))
            for e in kept[max_skips:]:
                weights[g, e, s] = 0.0
                if keep is not None:
                    keep = keep.clone()
                    keep[g, e, s] = False
        genotype = space.derive(weights, keep)
    return genotype
