"""Search spaces: a registry plus the ``create_space`` factory."""

from __future__ import annotations

from nasbench_suite.spaces.base import Capabilities, NetShape, Space
from nasbench_suite.spaces.cost import COUNTER, Cost, CostTable
from nasbench_suite.spaces.genotype import DARTS_V2, CellGenotype, Genotype
from nasbench_suite.spaces.nb201 import Nb201Space
from nasbench_suite.spaces.relaxed import RelaxedSpace
from nasbench_suite.spaces.restricted import RestrictedSpace

SPACES: dict[str, type[Space]] = {cls.name: cls
                                  for cls in (RestrictedSpace, RelaxedSpace, Nb201Space)}


def list_spaces() -> list[str]:
    return sorted(SPACES)


def create_space(name: str, shape: NetShape, ops: tuple[str, ...] | None = None,
                 skip: str = "auto") -> Space:
    """Instantiate space ``name`` at the given sizes (which fix its cost table); ``skip``:
    the search supernet's stride-1 skip (``auto``: the space's own; ``bn``; ``identity``)."""
    if name not in SPACES:
        raise ValueError(f"unknown space {name!r}; choose from {', '.join(list_spaces())}")
    return SPACES[name](shape, ops, skip)


__all__ = ["COUNTER", "DARTS_V2", "SPACES", "Capabilities", "CellGenotype", "Cost", "CostTable",
           "Genotype", "NetShape", "Space", "create_space", "list_spaces"]
