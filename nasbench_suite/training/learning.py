"""Did the architecture parameters learn? How far the mixing weights moved from their start.

A derived architecture is only a search result if the weights it is the argmax of moved away
from their initialisation: DARTS's alphas start at 1e-3 x randn, so with too few alpha steps
its "derived cell" is the argmax of random noise. Every epoch the loop records, over the
edges (group, edge) of the layout, from the method's logged architecture weights
(``Method.arch_weights``: softmax weights, sigmoid gates, sampling probabilities):

* ``alpha_move_median`` / ``alpha_move_max``: per edge the largest change of one op's weight
  since the start (max over ops of |w - w0|), median and max over the edges;
* ``edge_spread_median``: per edge the spread of its weights now (max minus min over the
  edge's active ops), median over the edges: 0 for a uniform edge;
* ``choice_changed_share``: the share of edges whose strongest op differs from the start's.
  At a start of 1e-3 x randn this counts flips of the initial noise (0.89 after one epoch
  whose median move was 0.003), so reports count changes since the architecture derived
  after the first epoch instead (:func:`choices_changed` on the weights of arch.jsonl).
"""

from __future__ import annotations

import torch


def learning_stats(initial: torch.Tensor, weights: torch.Tensor,
                   active: torch.Tensor | None = None) -> dict[str, float]:
    """The four numbers of the module docstring for (G, E, O) weights against the start."""
    w0 = initial.detach().to(torch.float64).cpu()
    w = weights.detach().to(torch.float64).cpu()
    if w.numel() == 0:
        return {}
    move = (w - w0).abs().amax(-1).flatten()
    on = active.cpu().bool() if active is not None else torch.ones_like(w, dtype=torch.bool)
    # Edges with no active op (pruned away) have no spread.
    hi = w.masked_fill(~on, -torch.inf).amax(-1)
    lo = w.masked_fill(~on, torch.inf).amin(-1)
    spread = torch.where(on.any(-1), hi - lo, torch.zeros_like(hi)).flatten()
    changed = (w.argmax(-1) != w0.argmax(-1)).flatten().to(torch.float64)
    return {"alpha_move_median": float(move.median()), "alpha_move_max": float(move.max()),
            "edge_spread_median": float(spread.median()),
            "choice_changed_share": float(changed.mean())}


def choices_changed(before: torch.Tensor, after: torch.Tensor) -> float:
    """The share of edges (group, edge) of (G, E, O) weights whose strongest op differs."""
    if before.numel() == 0:
        return 0.0
    return float((before.argmax(-1) != after.argmax(-1)).to(torch.float64).mean())
