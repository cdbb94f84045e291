"""Cost tables: FLOPs and parameters of every (cell, edge, op), counted once per run.

One counter serves the whole suite: ``torch.utils.flop_counter.FlopCounterMode``. It counts
convolutions and matrix products at 2 FLOPs per multiply-add and ignores element-wise work
(BN, ReLU, pooling, the weighted sum of a mixed edge). Because a supernet's mixing adds no
counted FLOPs, one forward of a probe supernet with every op active, split by module name,
gives each op's cost exactly, and the cost of a genotype is the fixed part (stem,
pre-processing, classifier) plus the costs of its kept ops. Papers quote multiply-adds under
the name "FLOPs"; :attr:`Cost.macs` is that number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch
from nasbench_suite.spaces.genotype import Genotype
from nasbench_suite.spaces.layout import ArchLayout
from nasbench_suite.spaces.macro import Macro
from nasbench_suite.spaces.supernet import SuperNet
from torch.utils.flop_counter import FlopCounterMode

COUNTER = f"torch.utils.flop_counter.FlopCounterMode (torch {torch.__version__})"


@dataclass(frozen=True)
class Cost:
    """FLOPs (counter convention, 2 per multiply-add) and parameters of one image's forward."""

    flops: float
    params: int

    @property
    def macs(self) -> float:
        """Multiply-adds: what the NAS papers call FLOPs."""
        return self.flops / 2

    def to_dict(self) -> dict[str, float]:
        return {"flops": self.flops, "macs": self.macs, "params": self.params,
                "counter": COUNTER}  # type: ignore[dict-item]


@dataclass(frozen=True)
class CostTable:
    """Per-cell costs ``cell_flops[L, E, O]`` and ``cell_params[L, E, O]`` plus the fixed part.

    :meth:`group_flops` sums the cells that share a group: the cost that one architecture
    variable controls, which makes an expected cost differentiable in the mixing weights.
    """

    layout: ArchLayout
    cell_flops: torch.Tensor
    cell_params: torch.Tensor
    fixed_flops: float
    fixed_params: int
    #: per (cell, edge): the (channels, height, width) of the edge's input, as the probe saw
    #: it (what an op needs to be built and timed on its own: nasbench_suite.spaces.latency)
    edge_inputs: dict[tuple[int, int], tuple[int, int, int]] = field(default_factory=dict)

    def group_flops(self) -> torch.Tensor:
        return self._per_group(self.cell_flops)

    def group_params(self) -> torch.Tensor:
        return self._per_group(self.cell_params)

    def _per_group(self, table: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.layout.shape, dtype=table.dtype)
        return out.index_add_(0, torch.tensor(self.layout.cell_groups), table)

    def mask_cost(self, active: torch.Tensor) -> Cost:
        """Cost of the supernet restricted to the ``active`` (G, E, O) ops."""
        a = active.to(torch.float64)
        return Cost(float(self.fixed_flops + (self.group_flops() * a).sum()),
                    int(self.fixed_params + (self.group_params() * a).sum()))

    def genotype_cost(self, genotype: Genotype) -> Cost:
        """Cost of the network built from ``genotype`` at this table's sizes."""
        genotype.check_depth(self.layout.layers)
        edge_index = {(e.input, e.node): e.index for e in self.layout.edges}
        op_index = {op: i for i, op in enumerate(self.layout.ops)}
        flops, params = float(self.fixed_flops), int(self.fixed_params)
        for cell in range(self.layout.layers):
            reduction = self.layout.group_reduction[self.layout.cell_groups[cell]]
            for op, src, dst in genotype.groups[genotype.group_of(cell, reduction)].edges:
                if op not in op_index:
                    raise ValueError(f"op {op!r} is not in this space's op list")
                e, o = edge_index[(src, dst)], op_index[op]
                flops += float(self.cell_flops[cell, e, o])
                params += int(self.cell_params[cell, e, o])
        return Cost(flops, params)


@lru_cache(maxsize=64)
def count_cost_table(layout: ArchLayout, channels: int, in_channels: int, num_classes: int,
                     image_size: int, stem_multiplier: int = 3,
                     macro: Macro | None = None) -> CostTable:
    """Count every op once on a probe supernet built as the discrete network would be
    (in the skeleton of ``macro``; default DARTS's).

    The probe lives on the meta device: the counter needs shapes only, so no convolution is
    computed and no memory is allocated, whatever the network's size.

    Memoised per process on its arguments (frozen layout and macro, sizes): the table is a
    pure function of them, and counting through the meta device's decompositions takes
    seconds, which every search of the same space and sizes (a test session's hundreds of
    tiny runs, an evaluation worker's successive trainings) would otherwise pay again. The
    table is read-only to its users.
    """
    with torch.device("meta"):
        probe = SuperNet(layout, channels, in_channels, num_classes, stem_multiplier,
                         affine=True, pool_bn=False, auxiliary=False, macro=macro).eval()
    x = torch.zeros(1, in_channels, image_size, image_size, device="meta")
    weights = torch.ones(layout.shape, device="meta")
    edge_inputs: dict[tuple[int, int], tuple[int, int, int]] = {}
    hooks = []
    for i, cell in enumerate(probe.cells):
        for e, edge in enumerate(cell.edges):
            module = next(iter(edge.values()))

            def record(_m: torch.nn.Module, args: tuple[torch.Tensor, ...],
                       key: tuple[int, int] = (i, e)) -> None:
                edge_inputs[key] = tuple(int(d) for d in args[0].shape[1:])  # type: ignore[assignment]

            hooks.append(module.register_forward_pre_hook(record))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        probe(x, weights, layout.full_mask())
    for hook in hooks:
        hook.remove()
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(probe).__name__
    L, E, O = layout.layers, len(layout.edges), len(layout.ops)
    cell_flops = torch.zeros(L, E, O, dtype=torch.float64)
    cell_params = torch.zeros(L, E, O, dtype=torch.float64)
    for i, cell in enumerate(probe.cells):
        for e, edge in enumerate(cell.edges):
            for (op, module), o in zip(edge.items(), edge.positions, strict=True):
                cell_flops[i, e, o] = counts.get(f"{root}.cells.{i}.edges.{e}.{op}", 0)
                cell_params[i, e, o] = sum(p.numel() for p in module.parameters())
    total_flops = counts.get("Global", 0)
    total_params = sum(p.numel() for p in probe.parameters())
    return CostTable(layout, cell_flops, cell_params,
                     float(total_flops - cell_flops.sum()),
                     int(total_params - cell_params.sum()), edge_inputs)
