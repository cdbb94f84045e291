"""Published ground truth for search spaces that have a table of every architecture.

Why a registry: the search loop and the results index ask "what is this genotype really
worth?" without knowing which spaces are tabulated; a space joins by adding its lookup here,
and a genotype of a space without a table simply has none (``None``), not an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nasbench_suite.errors import UsageError
from nasbench_suite.groundtruth import nb201
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.nb201_arch import NB201

if TYPE_CHECKING:
    import torch

    from nasbench_suite.spaces.base import Space

#: space name -> its ground-truth function (Genotype -> flat ``gt_*`` columns)
GROUND_TRUTH: dict[str, Callable[[Genotype], dict[str, Any]]] = {NB201: nb201.record}

#: space name -> its fixed sample of cells spread over the table's accuracy range, a pure
#: function of (n, seed): what `nasbench rankcorr` ranks every run of the space on
SAMPLES: dict[str, Callable[[int, int], list[Genotype]]] = {NB201: nb201.stratified_genotypes}

#: the columns every ground-truth record has
GT_COLUMNS: tuple[str, ...] = ("gt_arch", "gt_cifar10_valid", "gt_cifar10_test",
                               "gt_cifar100_test", "gt_imagenet16_test", "gt_percentile")


def ground_truth(genotype: Genotype) -> dict[str, Any] | None:
    """The genotype's published ground truth as flat columns (:data:`GT_COLUMNS`), or None
    when its space has no table. A genotype of a tabulated space that is not one of its
    architectures (e.g. several ops on one nb201 edge) is a ValueError: the space's own
    derivation should have produced a valid one."""
    record = GROUND_TRUTH.get(genotype.space)
    return None if record is None else record(genotype)


def tabulated(space: str | None) -> bool:
    """Whether a published table scores the cells of ``space``."""
    return space in GROUND_TRUTH


def several_ops_per_edge(genotype: Genotype) -> bool:
    """Whether some edge of the genotype holds more than one op (GOLD-NAS keeps any)."""
    for cell in genotype.groups.values():
        pairs = [(src, dst) for _, src, dst in cell.edges]
        if len(pairs) != len(set(pairs)):
            return True
    return False


def _tied(weights: torch.Tensor, among: torch.Tensor) -> bool:
    """Whether some edge's strongest op among the ``among`` ops (a (G, E, O) mask) is not
    unique."""
    import torch  # only here: reading the table needs no torch

    kept = weights.to(torch.float64).masked_fill(~among, -math.inf)
    return bool(((kept == kept.amax(-1, keepdim=True)) & among).sum(-1).gt(1).any())


def scored_cell(space: Space, genotype: Genotype, weights: torch.Tensor,
                active: torch.Tensor | None = None) -> Genotype | None:
    """The cell the table scores for a method's genotype: the genotype itself where every
    edge holds one op; else the space's own derivation over the method's architecture
    weights (G, E, O) restricted to the kept ops (nb201: the strongest kept op per edge);
    None where an edge's strongest kept ops tie (GOLD-NAS's start: equal gates everywhere),
    as the cell would then be an artefact of the op order, not of the search.

    ``active`` (the run's (G, E, O) mask of ops still in play, arch.jsonl's) catches the
    same tie in a one-op-per-edge genotype: GOLD-NAS derives one op per nb201 edge, and at
    its start that op is the first of four equal gates (skip_connect: the all-skip cell).
    A method whose cell is not the argmax of its weights (PAD-NAS: one active op per edge,
    uniform weights) has no tie among its active ops.

    Why not refuse several ops: a table scores one op per edge, but a method such as
    GOLD-NAS may end with several; the run keeps its own genotype (genotype.json) and
    records the cell that was scored (``gt_arch``) beside it.
    """
    if not several_ops_per_edge(genotype):
        if active is not None and _tied(weights, active.to(bool)):
            return None
        return genotype
    keep = space.mask_of(genotype)
    if _tied(weights, keep):
        return None
    return space.derive(weights, keep=keep)


def cell_ground_truth(space: Space, genotype: Genotype, weights: torch.Tensor,
                      active: torch.Tensor | None = None) -> dict[str, Any] | None:
    """:func:`ground_truth` of :func:`scored_cell`; None where the space has no table."""
    if not tabulated(genotype.space):
        return None
    cell = scored_cell(space, genotype, weights, active)
    return None if cell is None else ground_truth(cell)


def sample_cells(space: str, n: int, seed: int) -> list[Genotype]:
    """The space's fixed sample of ``n`` cells for ``seed`` (:data:`SAMPLES`)."""
    sample = SAMPLES.get(space)
    if sample is None:
        raise UsageError(f"the {space} space has no published table to sample cells from")
    try:
        return sample(n, seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
