"""Helpers shared by several test modules that are not fixtures."""

from __future__ import annotations

import torch


def count_calls(supernet: torch.nn.Module) -> dict[tuple[int, int, str], int]:
    """Forward-hook counters on every op module of every edge of every cell: which ops a
    forward really ran is what masking and clamping promise, and only hooks can see it."""
    calls: dict[tuple[int, int, str], int] = {}
    for i, cell in enumerate(supernet.cells):
        for e, edge in enumerate(cell.edges):
            for name, module in edge.items():
                calls[(i, e, name)] = 0

                def hook(*_: object, key: tuple[int, int, str] = (i, e, name)) -> None:
                    calls[key] += 1

                module.register_forward_hook(hook)
    return calls
