"""PAD-NAS's progressive pruning: per-edge op frequencies among good architectures.

After a stage's search, the architectures of non-domination rank below ``rank_limit`` vote:
per (group, edge), the share of each op among those that take the edge. Ops whose share is at
most ``prune_threshold`` leave that edge's op set for good (every edge gets its own set).
"""

from __future__ import annotations

import torch


def op_frequencies(masks: torch.Tensor) -> torch.Tensor:
    """Per (group, edge) the share of each op among the architectures that take the edge.

    ``masks`` is (N, G, E, O) bool; an edge no architecture takes gets all zeros.
    """
    counts = masks.to(torch.float64).sum(0)
    total = counts.sum(-1, keepdim=True)
    return torch.where(total > 0, counts / total.clamp_min(1), torch.zeros_like(counts))


def edge_counts(masks: torch.Tensor) -> torch.Tensor:
    """(G, E): how many of the (N, G, E, O) architectures take each edge."""
    return masks.any(-1).sum(0)


def prune_by_frequency(active: torch.Tensor, freq: torch.Tensor, threshold: float,
                       counts: torch.Tensor | None = None, min_evidence: int = 0
                       ) -> torch.Tensor:
    """Remove the active ops with frequency <= ``threshold``, edge by edge.

    An edge without enough evidence (fewer than ``min_evidence`` architectures behind its
    frequencies, or none) keeps its ops: a share of 1% means something only among 100 or
    more. An edge never loses its last op: if every op would go, the most frequent stays.
    """
    keep = active & (freq > threshold)
    evidence = (freq * active).sum(-1) > 0
    if counts is not None:
        evidence &= counts >= min_evidence
    keep = torch.where(evidence[..., None], keep, active)
    empty = ~keep.any(-1) & active.any(-1)
    if empty.any():
        best = freq.masked_fill(~active, -1.0).argmax(-1, keepdim=True)
        rescue = torch.zeros_like(active).scatter_(-1, best, True)
        keep = keep | (rescue & empty[..., None])
    return keep
