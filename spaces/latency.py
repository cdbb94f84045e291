"""Per-op latency on the run's own device: an additive cost table measured, not counted.

PAD-NAS constrains its search by phone latency from a per-op table; the suite measures the
same kind of table on the device a run uses. Every (cell, edge, op) key of the space's cost
table is built on its own at the input shape the cost probe recorded, in the search flavour
(non-affine BN, BN after pools), and timed in eval mode with ``torch.utils.benchmark``. Ops
of the same kind, shape and stride take the same time, so each distinct one is timed once.
An architecture's latency is then the sum over its ops (stem, pre-processing and classifier
are the same for every architecture and left out).
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import torch
import torch.utils.benchmark as benchmark
from nasbench_suite.spaces.ops import ZERO, create_op

if TYPE_CHECKING:
    from nasbench_suite.spaces.base import Space

#: (op, channels, height, width, stride): what fixes an op's latency
OpShape = tuple[str, int, int, int, int]


def time_op(shape: OpShape, device: torch.device, batch: int, repeats: int,
            warmup: int, number: int = 10) -> float:
    """Milliseconds per image of one op's forward at ``shape``: the median over ``repeats``
    blocks of the mean of ``number`` calls."""
    name, c, h, w, stride = shape
    op = create_op(name, c, stride, affine=False, pool_bn=True).to(device).eval()
    x = torch.randn(batch, c, h, w, device=device)
    timer = benchmark.Timer(stmt="op(x)", globals={"op": op, "x": x},
                            num_threads=torch.get_num_threads())
    with torch.no_grad():
        for _ in range(warmup):
            op(x)
        # blocks of `number` runs: one call of a tiny op is below the timer's resolution
        times = [timer.timeit(number).median for _ in range(repeats)]
    return 1e3 * statistics.median(times) / batch


def latency_table(space: Space, device: torch.device, batch: int = 1, repeats: int = 7,
                  warmup: int = 2) -> torch.Tensor:
    """(G, E, O) milliseconds per image: each group's ops summed over the cells it drives."""
    layout, cost = space.layout, space.cost
    per_shape: dict[OpShape, float] = {}
    cells = torch.zeros(layout.layers, *layout.shape[1:], dtype=torch.float64)
    for (cell, edge), (c, h, w) in sorted(cost.edge_inputs.items()):
        stride = layout.stride(layout.cell_groups[cell], edge)
        for o, name in enumerate(layout.ops):
            if name == ZERO:
                continue
            key = (name, c, h, w, stride)
            if key not in per_shape:
                per_shape[key] = time_op(key, device, batch, repeats, warmup)
            cells[cell, edge, o] = per_shape[key]
    out = torch.zeros(layout.shape, dtype=torch.float64)
    return out.index_add_(0, torch.tensor(layout.cell_groups), cells)
