"""The one supernet builder shared by every space and every method.

The forward takes the input plus per-(group, edge, op) mixing weights and an active mask.
An inactive op, and the zero op, are skipped entirely, so pruning makes the search faster,
not just zero a weight. How the weights are made (softmax, sigmoid gates, clamped one-hot
edges, sampled paths) is the method's business; the supernet only mixes.

Module names are shared with :class:`spaces.network.Network` (``cells.{i}.edges.{e}.{op}``),
so a derived network inherits supernet weights with a plain state-dict copy.

Two execution paths compute the same function (tests/test_fused.py checks values and
gradients):

* the module path (this file) calls every active op module of every edge, one edge after
  the other, as the DARTS code does: the reference, used when ``fused=False`` and whenever
  someone observes the op modules (a forward hook on a module under ``cells``, a global
  module hook such as the one of the FLOP counter behind spaces/cost.py, or any torch
  dispatch mode);
* the fused path (default, spaces/fused.py) batches the edges of a cell by wave and runs
  each op type once per wave.

Set ``supernet.op_counter = collections.Counter()`` to count op executions: both paths add
one per forward for every ``(cell index, edge index, op name)`` they compute (the fused path
calls no op module's ``forward``, so forward hooks cannot count there).

Memory format: ``channels_last=None`` (default) runs the cells in channels_last on the CPU
when the op list has a pooling op (the DARTS op set), NCHW otherwise. It changes the layout
of the activations, not the values. Pooling and the 5x5 and dilated depthwise convolutions
are much faster in channels_last, batch norm over few channels (a pruned supernet's
per-edge tensors) slower. Measured (torch 2.14.1, C=8, 5 cells, batch 64, one process,
steps interleaved; NCHW against channels_last):

* DARTS first-order step, restricted space: 8x8x1 0.64 s against 0.61 s (1 thread);
  32x32x3 7.5 s against 5.8 s (1 thread).
* GOLD-NAS step, relaxed space (skip, sep_conv_3x3), 32x32x3, 2 threads: full supernet
  0.62 s against 0.63 s; after half the multiply-adds are pruned 0.30 s against 0.39 s
  (1 thread: 0.46 s against 0.52 s). Hence NCHW for op lists without pools.
* DARTS on the relaxed space, 2 threads: 8x8x1 0.32 s against 0.27 s, 32x32x3 1.61 s
  against 1.53 s: a small loss of the rule, set ``channels_last=True`` to take it.
"""

from __future__ import annotations

from collections import Counter

import torch
from nasbench_suite.spaces.fused import OpKey, forward_fused, op_kind, plan_waves
from nasbench_suite.spaces.layout import ArchLayout
from nasbench_suite.spaces.macro import Macro, MacroNet, darts_macro, preprocess, zeros_node
from nasbench_suite.spaces.ops import ZERO, Pool, create_op
from torch import nn

__all__ = ["AuxiliaryHead", "MixedEdge", "OpKey", "SuperCell", "SuperNet"]


class MixedEdge(nn.ModuleDict):
    """All candidate ops of one edge of one cell (the zero op has no module)."""

    def __init__(self, ops: tuple[str, ...], channels: int, stride: int, affine: bool,
                 pool_bn: bool, skip_bn: bool = False) -> None:
        super().__init__({op: create_op(op, channels, stride, affine, pool_bn, skip_bn)
                          for op in ops if op != ZERO})
        # Positions in the layout's op list of the ops that have a module.
        self.positions = [i for i, op in enumerate(ops) if op != ZERO]


class AuxPool(nn.Module):
    """DARTS's auxiliary-head pooling, AvgPool2d(5, stride=3, padding=0), where it gives 2x2.

    DARTS places its head at 2/3 of the depth of a 32x32 network, on an 8x8 map, where that
    window gives 2x2 (so do 9x9 and 10x10). The suite's small images (8x8 digits, 16x16) put
    smaller or larger maps there; for those the pooling falls back to an adaptive average
    pool to 2x2, so that the head (and its parameters) stays the same at every size.
    """

    kernel, stride = 5, 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if all((s - self.kernel) // self.stride + 1 == 2 for s in (h, w)) and min(h, w) >= 5:
            return nn.functional.avg_pool2d(x, self.kernel, self.stride, 0,
                                            count_include_pad=False)
        return nn.functional.adaptive_avg_pool2d(x, 2)


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier: ReLU, 5x5/3 average pool to 2x2, conv1x1 to 128, BN,
    ReLU, conv2x2 to 768, BN, ReLU, linear (quark0/darts ``AuxiliaryHeadCIFAR``), with the
    pooling of :class:`AuxPool` (the same at 8x8, adaptive elsewhere)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            AuxPool(),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class SuperCell(nn.Module):
    """One cell: the preprocessing of its inputs and a :class:`MixedEdge` per edge."""

    def __init__(self, layout: ArchLayout, macro: Macro, group: int, c_ins: tuple[int, ...],
                 c: int, reduction_prev: bool, affine: bool, pool_bn: bool, index: int = 0,
                 skip_bn: bool = False) -> None:
        super().__init__()
        self.macro = macro
        self.group = group
        self.index = index
        self.channels = c
        self.out_channels = macro.multiplier * c
        self.reduction = layout.group_reduction[group]
        self.nodes = layout.nodes
        self.inputs = layout.inputs
        self.pre = preprocess(c_ins, c, reduction_prev, affine)
        for k, pre in enumerate(self.pre):  # registered as pre0, pre1 (DARTS's names)
            setattr(self, f"pre{k}", pre)
        self.edges = nn.ModuleList(
            MixedEdge(layout.ops, c, layout.stride(group, e.index), affine, pool_bn,
                      skip_bn)
            for e in layout.edges)
        self.edge_inputs = [e.input for e in layout.edges]
        self.node_edges = [layout.node_edges(k) for k in layout.node_ids]
        self.op_names = [op for op in layout.ops if op != ZERO]
        self.op_positions = [i for i, op in enumerate(layout.ops) if op != ZERO]
        self.waves = plan_waves(layout, group)
        # Per wave and op name: how the fused path runs it (same module type on every edge
        # of a wave, since a wave has one stride).
        self.wave_kinds = [{name: op_kind(self.edges[w.edges[0]][name])  # type: ignore[index]
                            for name in self.op_names} for w in self.waves]
        #: the stride of the edges that leave the cell's inputs (an empty node's zeros)
        self.stride = layout.stride(group, 0)

    def forward(self, inputs: list[torch.Tensor], weights: torch.Tensor,
                active: list[list[bool]], fused: bool = True,
                counter: Counter[OpKey] | None = None) -> torch.Tensor:
        states = [x if pre is None else pre(x) for pre, x in zip(self.pre, inputs, strict=True)]
        if fused:
            return forward_fused(self, states, weights, active, counter)
        return self._forward_modules(states, weights, active, counter)

    def empty_node(self, node: int, states: list[torch.Tensor]) -> torch.Tensor:
        """A node without an active input: zeros where the macro allows it, else an error."""
        if not self.macro.empty_nodes:
            raise RuntimeError(f"node {node} of a cell has no active input op")
        return zeros_node(states[0], self.stride)

    # -- reference: one op module at a time -------------------------------------------------
    def _forward_modules(self, states: list[torch.Tensor], weights: torch.Tensor,
                         active: list[list[bool]], counter: Counter[OpKey] | None
                         ) -> torch.Tensor:
        for node, edge_ids in zip(range(self.inputs, self.inputs + self.nodes),
                                  self.node_edges, strict=True):
            total: torch.Tensor | None = None
            for e in edge_ids:
                edge: MixedEdge = self.edges[e]  # type: ignore[assignment]
                x = states[self.edge_inputs[e]]
                w = weights[e]
                for (name, op), pos in zip(edge.items(), edge.positions, strict=True):
                    if not active[e][pos]:
                        continue
                    if counter is not None:
                        counter[(self.index, e, name)] += 1
                    out = w[pos] * op(x)
                    total = out if total is None else total + out
            states.append(self.empty_node(node, states) if total is None else total)
        return self.macro.cell_output(states)


class SuperNet(MacroNet):
    """A stack of cells whose edges hold every candidate op of the layout, in the skeleton of
    a :class:`~nasbench_suite.spaces.macro.Macro` (default: DARTS's, from ``channels``,
    ``stem_multiplier`` and the layout's reduction groups).

    ``forward(x, weights, active)``: ``weights`` is a float tensor (G, E, O) on the model's
    device, ``active`` a bool tensor (G, E, O) (kept on the CPU: it steers Python control
    flow). Returns ``(logits, aux_logits)``; ``aux_logits`` is ``None`` unless the network has
    an auxiliary head and is training.

    ``fused`` (default True) selects the batched execution of the cells (module docstring);
    False runs every op module one by one, as the DARTS code does. Set :attr:`op_counter` to a
    ``collections.Counter`` to count op executions on either path.

    ``channels_last``: the memory format of the cells' activations; None (default) picks
    channels_last for CPU inputs when the op list has a pooling op, NCHW otherwise (module
    docstring). ``skip_bn`` builds
    skip_connect at stride 1 as a non-affine BatchNorm2d, as GOLD-NAS's search network does
    (:func:`nasbench_suite.spaces.ops.create_op`).
    """

    def __init__(self, layout: ArchLayout, channels: int, in_channels: int, num_classes: int,
                 stem_multiplier: int = 3, affine: bool = False, pool_bn: bool = True,
                 auxiliary: bool = False, fused: bool = True,
                 channels_last: bool | None = None, skip_bn: bool = False,
                 macro: Macro | None = None) -> None:
        if macro is None:
            macro = darts_macro(channels, layout.layers, layout.nodes, stem_multiplier,
                                tuple(i for i, g in enumerate(layout.cell_groups)
                                      if layout.group_reduction[g]))

        def make_cell(i: int, c_ins: tuple[int, ...], c: int, _reduction: bool,
                      reduction_prev: bool) -> nn.Module:
            return SuperCell(layout, macro, layout.cell_groups[i], c_ins, c, reduction_prev,
                             affine, pool_bn, index=i, skip_bn=skip_bn)

        super().__init__(macro, in_channels, num_classes, auxiliary, make_cell)
        self.layout = layout
        self.fused = fused
        self.channels_last = channels_last
        self.skip_bn = skip_bn
        self.op_counter: Counter[OpKey] | None = None
        # Every module under the cells' edges: a hook on any of them asks for the module path.
        self._edge_modules = [m for cell in self.cells for m in cell.edges.modules()]
        # Whether the op list has pools: then channels_last pays off on the CPU (docstring).
        self._pools = any(isinstance(m, Pool) for m in self._edge_modules)

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                active: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if weights.shape != self.layout.shape or active.shape != self.layout.shape:
            raise ValueError(f"weights and mask must have shape {self.layout.shape}, "
                             f"got {tuple(weights.shape)} and {tuple(active.shape)}")
        mask = active.tolist()
        fused = self.fused and not self._observed()
        channels_last = (x.device.type == "cpu" and self._pools if self.channels_last is None
                         else self.channels_last)

        def after_stem(s: torch.Tensor) -> torch.Tensor:
            # After the stem, not before: a 1-channel input is both NCHW and channels_last,
            # and oneDNN then keeps the stem's output NCHW.
            return s.contiguous(memory_format=torch.channels_last) if channels_last else s

        def run_cell(_i: int, cell: nn.Module, inputs: list[torch.Tensor]) -> torch.Tensor:
            g = cell.group
            return cell(inputs, weights[g], mask[g], fused, self.op_counter)

        return self.run(x, run_cell, after_stem)

    def _observed(self) -> bool:
        """Whether anyone watches the op modules run (hooks, FLOP counter, dispatch modes)."""
        if torch._C._len_torch_dispatch_stack() > 0 or _global_module_hooks():
            return True
        return any(m._forward_hooks or m._forward_pre_hooks for m in self._edge_modules)


def _global_module_hooks() -> bool:
    """True if a global module hook is registered (torch's FLOP counter registers two)."""
    from torch.nn.modules import module as module_mod

    check = getattr(module_mod, "_has_any_global_hook", None)
    if check is not None:
        return bool(check())
    return bool(getattr(module_mod, "_global_forward_hooks", None)
                or getattr(module_mod, "_global_forward_pre_hooks", None))
