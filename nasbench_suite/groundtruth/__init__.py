"""Published ground truth for search spaces that have a table of every architecture.

Why a registry: the search loop and the results index ask "what is this genotype really
worth?" without knowing which spaces are tabulated; a space joins by adding its lookup here,
and a genotype of a space without a table simply has none (``None``), not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nasbench_suite.groundtruth import nb201
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.nb201_arch import NB201

#: space name -> its ground-truth function (Genotype -> flat ``gt_*`` columns)
GROUND_TRUTH: dict[str, Callable[[Genotype], dict[str, Any]]] = {NB201: nb201.record}

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
