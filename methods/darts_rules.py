"""Two remedies from the literature for DARTS's collapse, as plain functions.

Both are options of :class:`methods.darts.Darts` (``early_stop``, ``max_skips``) and are also
applied after the fact to a recorded DARTS search (``nasbench reproduce darts-failure``): a
search with the early stop is the same search up to its stop, and a skip limit changes only
the derivation, so replaying the rule on the recorded trajectory gives exactly what the live
option would.

* **DARTS-ES** (Zela et al., "Understanding and Robustifying DARTS", ICLR 2020), as the
  public code states it (automl/RobustDARTS, src/utils.py ``EVLocalAvg``): the dominant
  (largest) eigenvalue of the validation loss's Hessian w.r.t. the alphas is measured every
  ``every`` = 2 epochs; each measurement gets a local average over a window of ``window`` = 5
  measurements centred on it (fewer at the start), labelled with the epoch at the window's
  centre; once that label minus ``delta`` = 4 measurements reaches ``start_epoch`` = 10,
  the search stops when the newest local average exceeds ``factor`` = 1.3 times the one
  ``delta`` measurements before, and returns the architecture of the epoch that earlier
  average is labelled with (with the defaults: a stop at epoch e returns epoch e - 12).
* **P-DARTS's skip limit** (Chen et al., ICCV 2019): derive the cell as DARTS does; while a
  normal cell keeps more than ``M`` skip connections (M = 2), keep the ``M`` strongest, set
  the others' weights to zero and derive again (the edge then takes its next best op, or a
  node its next best edge).
"""

from __future__ import annotations

import torch
from nasbench_suite.spaces import Genotype, Space

SKIP = "skip_connect"


def early_stop_epoch(eigenvalues: list[tuple[int, float]], last: int, every: int = 2,
                     window: int = 5, factor: float = 1.3, start_epoch: int = 10,
                     delta: int = 4) -> tuple[int, int] | None:
    """DARTS-ES on ``(epoch, eigenvalue)`` measurements in epoch order: ``(the epoch it stops
    at, the epoch whose architecture it returns)``, or None if it never stops.

    Only measurements at epochs divisible by ``every`` count (RobustDARTS's schedule; a
    search that measured every epoch is replayed on every second one). The search's last
    epoch is not a stopping point (there is nothing left to stop).
    """
    measured = [(e, v) for e, v in eigenvalues if e % every == 0]
    epochs = [e for e, _ in measured]
    values = [v for _, v in measured]
    first = -(-window // 2) - 1  # the first measurement with a local average
    averages: dict[int, float] = {}
    for j in range(first, len(values)):
        averages[j] = sum(values[max(0, j + 1 - window):j + 1]) / min(j + 1, window)
        back = j - delta
        if back < first or back - window // 2 < 0:
            continue
        returned = epochs[back - window // 2]  # the label of the earlier local average
        if epochs[j] != last and returned >= start_epoch and \
                averages[j] > factor * averages[back]:
            return epochs[j], returned
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
