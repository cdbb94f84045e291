"""The fused execution of a supercell: its edges batched by wave, one call per op type.

Why: on a 2-core CPU at the suite's small sizes every kernel call costs 10-300 us whatever its
size, and a DARTS cell issues ~170 convolutions per forward when run edge by edge against ~35
here (tests/benchmarks/ time both).

A cell runs *wave* by wave: all edges that leave the cell's inputs (two in a DARTS cell), then
all edges that leave the first intermediate node, the second, ... Within a wave every op type
runs once for all its active edges (grouped convolutions over the edges' channels, one batch
norm over all of them, the parameter-free ops once per source state) and the weighted sum
over (edge, op) is one matrix product per op type. On maps of ``SPLIT_PIXELS`` pixels and
more the four convolution op types of a wave run one after the other instead of as one
grouped call: there a call is long enough that its launch cost no longer matters, and the
one grouped call would cost a concatenation of the depthwise outputs, channel slices of its
output (which turn channels_last tensors into NCHW copies) and their gradients'
concatenation in the backward. There each op type also runs source by source (a source's
edges each feed a different node, so the part's mixing is diagonal: one row-scaled
multiply-add instead of a GEMM) and in runs of at most ``CALL_BYTES`` of input, which keep
the tensors of one call near the caches' size.

"An inactive op is never computed" holds here too: an op runs only for the edges on which
it is active (the grouped convolutions get only those edges' weights, the pools, identities
and BN-skips only the source states that an active edge reads). The op modules' own
``forward`` is not called, so forward hooks cannot count executions; the supernet's
``op_counter`` does (spaces/supernet.py).

The result equals the module path's (``SuperNet(fused=False)``) up to floating-point
rounding; tests/test_fused.py checks values and gradients.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from nasbench_suite.spaces.depthwise import depthwise_conv
from nasbench_suite.spaces.layout import ArchLayout
from nasbench_suite.spaces.macro import Macro
from nasbench_suite.spaces.ops import DilConv, FactorizedReduce, Pool, ReLUConvBN, SepConv, SkipBN
from torch import nn

#: (cell index, edge index, op name): the key of ``SuperNet.op_counter``.
OpKey = tuple[int, int, str]


class SuperCell(Protocol):
    """What the fused path reads of a supercell (spaces/supernet.py builds them): declared
    here, so that this module does not import the supernet that imports it."""

    index: int
    channels: int
    macro: Macro
    edges: nn.ModuleList
    waves: list[Wave]
    wave_kinds: list[dict[str, str]]
    op_names: list[str]
    op_positions: list[int]

    def empty_node(self, node: int, states: list[torch.Tensor]) -> torch.Tensor: ...

#: Maps of at least this many pixels run a wave's convolution op types one by one, source
#: by source, in runs of at most ``CALL_BYTES`` of input (module docstring). Measured at C=8,
#: 5 cells, batch 64, 1 thread, in one process (interleaved): by op type, a DARTS step at
#: 32x32 was 14-18% faster, at 16x16 about 30% (then one grouped call still won below 16x16,
#: launch-bound); source by source, whose mix is diagonal (:func:`_mix`), splitting from 8x8
#: on is 3% faster again at 32x32 and 9% at 16x16 (machine shared, load ~5-6), splitting 4x4
#: too no faster.
SPLIT_PIXELS = 64
#: The same for NCHW maps (op type by op type, all sources in one call), as measured before.
SPLIT_PIXELS_NCHW = 256
#: Runs of at most 8 MB (4 edges' inputs at C=8, 32x32, batch 64): a DARTS step at 32x32 is
#: ~4% faster than with whole op types (16-33 MB tensors, past the caches); 2 MB runs are
#: 10% slower, 4 and 16 MB within noise of 8.
CALL_BYTES = 8 << 20

#: Waves of at most ``MAX_TERMS`` (edge, op) terms in cells of at least ``KRON_MAX_CHANNELS``
#: channels mix channels_last maps term by term (:func:`_mix_terms`) instead of with one
#: Kronecker GEMM, which does C times the multiply-adds. Measured on the nb201 space (waves of
#: 12, 8 and 4 terms), C=16, N=5, 32x32x3, batch 64, 1 thread, in one process (interleaved,
#: machine shared, load ~12): a first-order DARTS step 14.3 s with the GEMM everywhere,
#: 12.8 s from 32 channels on, 12.5 s from 16 on. The restricted DARTS space's waves have 7
#: to 56 terms; its timing at 32x32 did not separate the two under that load.
KRON_MAX_CHANNELS = 16
MAX_TERMS = 12


# -- batched batch norm ------------------------------------------------------------------------

def _cat(tensors: Sequence[torch.Tensor], dim: int = 0) -> torch.Tensor:
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors), dim)


def _uniform(bns: Sequence[nn.BatchNorm2d]) -> bool:
    """Same mode and settings: then one functional call can stand for all of them."""
    b0 = bns[0]
    return all(b.training == b0.training and b.momentum == b0.momentum and b.eps == b0.eps
               and b.affine == b0.affine and b.track_running_stats == b0.track_running_stats
               for b in bns)


def _update_running_stats(bns: Sequence[nn.BatchNorm2d], means: Sequence[torch.Tensor],
                          variances: Sequence[torch.Tensor]) -> None:
    """What ``nn.BatchNorm2d.forward`` does to its buffers in training mode, for many BNs."""
    with torch.no_grad():
        counts = [b.num_batches_tracked for b in bns]
        torch._foreach_add_(counts, 1)
        momentum = bns[0].momentum
        if momentum is not None:
            torch._foreach_lerp_([b.running_mean for b in bns], list(means), momentum)
            torch._foreach_lerp_([b.running_var for b in bns], list(variances), momentum)
            return
        for b, m, v in zip(bns, means, variances, strict=True):  # cumulative average
            factor = 1.0 / float(b.num_batches_tracked)  # type: ignore[arg-type]
            b.running_mean.lerp_(m, factor)  # type: ignore[union-attr]
            b.running_var.lerp_(v, factor)  # type: ignore[union-attr]


def _batch_stats(x: torch.Tensor, eps: float, weight: torch.Tensor | None,
                 bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training-mode BN of ``x`` plus its per-channel mean and unbiased variance.

    Running buffers at momentum 1 receive exactly the batch statistics that BN itself uses
    for its running-average update, without a second pass over ``x``.
    """
    c = x.shape[1]
    # float32 statistics for reduced-precision inputs (as BN keeps them), else x's own dtype
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    mean = torch.zeros(c, dtype=dtype, device=x.device)
    var = torch.ones(c, dtype=dtype, device=x.device)
    out = F.batch_norm(x, mean, var, weight, bias, True, 1.0, eps)
    return out, mean, var


def batch_norm_blocks(x: torch.Tensor, bns: Sequence[nn.BatchNorm2d]) -> torch.Tensor:
    """``cat([bn_i(block_i) for i])`` where block ``i`` is channels ``[i*C, (i+1)*C)`` of x.

    One BN call for all the modules (their statistics are per channel anyway); running
    statistics and batch counters are updated exactly as each module would update its own.
    """
    if not _uniform(bns):
        c = bns[0].num_features
        return torch.cat([bn(xb) for bn, xb in zip(bns, x.split(c, 1), strict=True)], 1)
    b0 = bns[0]
    weight = _cat([b.weight for b in bns]) if b0.affine else None  # type: ignore[misc]
    bias = _cat([b.bias for b in bns]) if b0.affine else None  # type: ignore[misc]
    if not b0.training and b0.track_running_stats:
        return F.batch_norm(x, _cat([b.running_mean for b in bns]),  # type: ignore[misc]
                            _cat([b.running_var for b in bns]),  # type: ignore[misc]
                            weight, bias, False, 0.0, b0.eps)
    if not b0.track_running_stats:
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, b0.eps)
    out, mean, var = _batch_stats(x, b0.eps, weight, bias)
    c = b0.num_features
    _update_running_stats(bns, mean.split(c), var.split(c))
    return out


def shared_batch_norm(x: torch.Tensor, bns: Sequence[Sequence[nn.BatchNorm2d]]
                      ) -> torch.Tensor | None:
    """BN of blocks that several modules normalise identically, or None if they cannot.

    ``bns[i]`` are the modules fed block ``i`` of ``x`` (a pool's output on one source
    state, read by several edges). In training mode a non-affine BN's output depends on its
    input only, so it is computed once per block; each module's running statistics are
    updated with its block's batch statistics.
    """
    flat = [b for group in bns for b in group]
    b0 = flat[0]
    if not _uniform(flat) or b0.affine or not b0.training or not b0.track_running_stats:
        return None
    out, mean, var = _batch_stats(x, b0.eps, None, None)
    c = b0.num_features
    means, variances = mean.split(c), var.split(c)
    _update_running_stats(flat, [means[i] for i, g in enumerate(bns) for _ in g],
                          [variances[i] for i, g in enumerate(bns) for _ in g])
    return out


def gather_blocks(x: torch.Tensor, blocks: Sequence[int], size: int) -> torch.Tensor:
    """Channel blocks ``blocks`` (each ``size`` channels) of ``x``, side by side, in x's
    memory format.

    One index_select over the block axis of a (N, blocks, size, H, W) view (NCHW) or of a
    (N, H, W, blocks, size) view (channels_last): it copies runs of ``size`` channels (or
    maps). A per-channel index_select on the channels_last layout gathers single floats
    along the innermost axis, 3-4x slower forward and backward at 32x32.
    """
    index = torch.tensor(list(blocks), device=x.device)
    n, ch, h, w = x.shape
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return x.reshape(n, ch // size, size, h, w).index_select(1, index).reshape(n, -1, h, w)
    rows = x.permute(0, 2, 3, 1).reshape(n, h, w, ch // size, size).index_select(3, index)
    return rows.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def repeat_channels(x: torch.Tensor, copies: int,
                    channels: tuple[int, int] | None = None) -> torch.Tensor:
    """``x[:, a:b].repeat(1, copies, 1, 1)`` (all channels when ``channels`` is None) that
    keeps a channels_last tensor channels_last."""
    a, b = channels if channels is not None else (0, x.shape[1])
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return x[:, a:b].repeat(1, copies, 1, 1)
    return x.permute(0, 2, 3, 1)[..., a:b].repeat(1, 1, 1, copies).permute(0, 3, 1, 2)


def grouped_pointwise(x: torch.Tensor, weight: torch.Tensor, groups: int) -> torch.Tensor:
    """``F.conv2d(x, weight, groups=groups)`` for a 1x1 ``weight``, as a batched matmul.

    oneDNN's grouped 1x1 convolution on NCHW tensors with many small groups runs 3-8x
    slower than the same work as (groups x C_out x C_in) @ (N x groups x C_in x HW).
    """
    if groups == 1 or not x.is_contiguous():
        return F.conv2d(x, weight, None, 1, 0, 1, groups)
    n, c, h, w = x.shape
    out = torch.matmul(weight.view(groups, -1, c // groups), x.view(n, groups, c // groups, h * w))
    return out.view(n, -1, h, w)


# -- the fused cell ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Wave:
    """Edges that can run together: all that leave ``sources`` (states of the cell).

    ``slot[i]`` is the position in ``sources`` of edge ``edges[i]``'s input, ``target[i]``
    the position in ``targets`` of the node it feeds; ``completes`` is the node (state index)
    whose last input edges are in this wave.
    """

    sources: tuple[int, ...]
    edges: tuple[int, ...]
    slot: tuple[int, ...]
    target: tuple[int, ...]
    targets: tuple[int, ...]
    stride: int
    completes: int


def plan_waves(layout: ArchLayout, group: int) -> list[Wave]:
    """Wave 0 holds the edges from the cell's inputs, each later wave the edges from one
    intermediate node (all but the last, which feeds no edge)."""
    waves = []
    inputs = tuple(range(layout.inputs))
    for sources in [inputs, *[(j,) for j in layout.node_ids[:-1]]]:
        edges = [e for e in layout.edges if e.input in sources]
        targets = sorted({e.node for e in edges})
        strides = {layout.stride(group, e.index) for e in edges}
        assert len(strides) == 1, "a wave mixes strides"
        waves.append(Wave(tuple(sources), tuple(e.index for e in edges),
                          tuple(sources.index(e.input) for e in edges),
                          tuple(targets.index(e.node) for e in edges), tuple(targets),
                          strides.pop(), max(sources) + 1))
    return waves


#: How the fused path runs an op module type. Anything else runs edge by edge. A BN-skip
#: (:class:`spaces.ops.SkipBN`) runs with the pools: a parameter-free map (the identity)
#: followed by a non-affine BN, computed once per source state.
_SEP, _DIL, _POOL, _IDENTITY, _FR, _RCB, _MODULE = ("sep", "dil", "pool", "identity", "fr",
                                                    "rcb", "module")


def op_kind(module: nn.Module) -> str:
    """How the fused path runs ``module`` (one of the kinds above)."""
    if isinstance(module, SepConv):
        return _SEP
    if isinstance(module, DilConv):
        return _DIL
    if isinstance(module, (Pool, SkipBN)):
        return _POOL
    if isinstance(module, nn.Identity):
        return _IDENTITY
    if isinstance(module, FactorizedReduce):
        return _FR
    if isinstance(module, ReLUConvBN):
        return _RCB
    return _MODULE


class _Blocks:
    """Outputs of one wave, as tensors of C-channel blocks, plus who reads which block."""

    def __init__(self) -> None:
        self.parts: list[torch.Tensor] = []
        self.count = 0
        # (block index, wave edge position, op position)
        self.entries: list[tuple[int, int, int]] = []

    def add(self, tensor: torch.Tensor, blocks: int,
            readers: Sequence[tuple[int, int, int]]) -> None:
        """``readers``: (block within ``tensor``, wave edge position, op position)."""
        self.parts.append(tensor)
        self.entries.extend((self.count + b, i, pos) for b, i, pos in readers)
        self.count += blocks


def forward_fused(cell: SuperCell, states: list[torch.Tensor], weights: torch.Tensor,
                  active: list[list[bool]], counter: Counter[OpKey] | None) -> torch.Tensor:
    """The cell's output from its preprocessed inputs ``states``, wave by wave."""
    partial: dict[int, torch.Tensor] = {}
    for wave, kinds in zip(cell.waves, cell.wave_kinds, strict=True):
        mixed = _wave(cell, wave, kinds, states, weights, active, counter)
        if mixed is not None:
            for t, node in enumerate(wave.targets):
                part = mixed[t]
                partial[node] = part if node not in partial else partial[node] + part
        node = wave.completes
        states.append(partial.pop(node) if node in partial else cell.empty_node(node, states))
    return cell.macro.cell_output(states)


def _wave(cell: SuperCell, wave: Wave, kinds: dict[str, str], states: list[torch.Tensor],
          weights: torch.Tensor, active: list[list[bool]], counter: Counter[OpKey] | None
          ) -> list[torch.Tensor] | None:
    """Every active op of the wave's edges, mixed into one tensor per target node."""
    # Active wave-edge positions per op, grouped by how the op runs.
    by_kind: dict[str, list[tuple[str, int, list[int]]]] = {}
    for name, pos in zip(cell.op_names, cell.op_positions, strict=True):
        on = [i for i, e in enumerate(wave.edges) if active[e][pos]]
        if on:
            by_kind.setdefault(kinds[name], []).append((name, pos, on))
            if counter is not None:
                for i in on:
                    counter[(cell.index, wave.edges[i], name)] += 1
    if not by_kind:
        return None
    run = _WaveRun(cell, wave, states,
                   [wave.slot[i] for kind in (_SEP, _DIL, _FR, _RCB)
                    for _, _, on in by_kind.get(kind, []) for i in on])
    blocks = _Blocks()
    seps, dils = by_kind.get(_SEP, []), by_kind.get(_DIL, [])
    source = states[wave.sources[0]]
    h, w = source.shape[-2:]
    # channels_last (channel stride 1): the mix is a GEMM that a diagonal part avoids; NCHW's
    # per-sample product does no extra work, so there runs by source only add calls
    by_source = source.stride(1) == 1 < source.shape[1]
    if h * w >= (SPLIT_PIXELS if by_source else SPLIT_PIXELS_NCHW):
        # one op type (and source) at a time (module docstring)
        per_call = max(1, CALL_BYTES // (source.shape[0] * cell.channels * h * w
                                         * source.element_size()))
        for name, pos, on in seps:
            for chunk in _chunks(wave, on, per_call, by_source):
                run.conv_ops(blocks, [(name, pos, chunk)], [])
        for name, pos, on in dils:
            for chunk in _chunks(wave, on, per_call, by_source):
                run.conv_ops(blocks, [], [(name, pos, chunk)])
    else:
        run.conv_ops(blocks, seps, dils)
    for name, pos, on in by_kind.get(_FR, []):
        run.factorized_reduce(blocks, name, pos, on)
    for name, pos, on in by_kind.get(_RCB, []):
        run.relu_conv_bn(blocks, name, pos, on)
    run.pools(blocks, by_kind.get(_POOL, []))
    for _name, pos, on in by_kind.get(_IDENTITY, []):
        x, slots = run.sources(sorted({wave.slot[i] for i in on}))
        blocks.add(x, len(slots), [(slots.index(wave.slot[i]), i, pos) for i in on])
    for name, pos, on in by_kind.get(_MODULE, []):
        for i in on:
            e = wave.edges[i]
            blocks.add(cell.edges[e][name](states[wave.sources[wave.slot[i]]]),  # type: ignore[index]
                       1, [(0, i, pos)])
    return _mix(cell, wave, blocks, weights)


def _chunks(wave: Wave, on: list[int], size: int, by_source: bool) -> list[list[int]]:
    """The wave edges ``on`` in runs of at most ``size`` edges, source by source if asked.

    One source's edges lead to distinct targets, so a run's mixing is diagonal when it
    covers all of them (:func:`_mix`), and its input is that source repeated.
    """
    groups = ([[i for i in on if wave.slot[i] == slot]
               for slot in sorted({wave.slot[i] for i in on})] if by_source else [on])
    return [mine[k:k + size] for mine in groups for k in range(0, len(mine), size)]


def _mix(cell: SuperCell, wave: Wave, blocks: _Blocks,
         weights: torch.Tensor) -> list[torch.Tensor]:
    """sum over (edge, op) of weight * block, per target node, as matrix products.

    One (T x B) mixing matrix, applied part by part (no concatenation of the parts: a
    copy, and its backward hands channel slices to the batch norms, whose backward is
    several times slower on non-dense gradients in channels_last).
    """
    c = cell.channels
    b_count, t_count = blocks.count, len(wave.targets)
    block_ids, edge_pos, op_pos = zip(*blocks.entries, strict=True)
    edges = torch.tensor([wave.edges[i] for i in edge_pos], device=weights.device)
    ops = torch.tensor(op_pos, device=weights.device)
    where = torch.tensor([wave.target[i] * b_count + b
                          for b, i in zip(block_ids, edge_pos, strict=True)],
                         device=weights.device)
    mixing = weights.new_zeros(t_count * b_count).index_put(
        (where,), weights[edges, ops]).view(t_count, b_count)
    n, _, h, w = blocks.parts[0].shape
    if blocks.parts[0].is_contiguous():
        total: torch.Tensor | None = None
        offset = 0
        for part in blocks.parts:  # per sample: (T x B) @ (B x CHW)
            count = part.shape[1] // c
            m = mixing[:, offset:offset + count].to(part.dtype).expand(n, t_count, count)
            offset += count
            flat = part.reshape(n, count, c * h * w)
            # baddbmm: the running sum is added inside the product, not in a separate pass
            total = torch.bmm(m, flat) if total is None else torch.baddbmm(total, m, flat)
        assert total is not None
        return list(total.view(n, t_count, c, h, w).unbind(1))
    if c >= KRON_MAX_CHANNELS and len(blocks.entries) <= MAX_TERMS:
        return _mix_terms(cell, wave, blocks, weights)
    # channels_last: one GEMM (N*H*W x B*C) @ (B*C x T*C) with mixing (x) identity(C)
    # as the matrix. C times the multiply-adds of the sparse product, but one dense MKL
    # call; per-pixel (T x B) @ (B x C) products are 5-10x slower at 16x16 (too many tiny
    # matrices) and a 1x1 convolution with that weight 1.5x slower below 8x8.
    #
    # A part whose block k is read by target k alone (a split wave's convolutions: one
    # source's edges, one per target) is a diagonal mixing: a row-scaled multiply-add over
    # the part, one pass, 3-4x faster forward and backward than its Kronecker GEMM.
    readers: dict[int, set[int]] = {}
    for b, i in zip(block_ids, edge_pos, strict=True):
        readers.setdefault(b, set()).add(wave.target[i])
    eye = torch.eye(c, dtype=blocks.parts[0].dtype, device=mixing.device)
    total = None
    offset = 0
    for part in blocks.parts:
        count = part.shape[1] // c
        sub = mixing[:, offset:offset + count].to(part.dtype)
        rows = part.permute(0, 2, 3, 1).reshape(n * h * w, count * c)
        if count == t_count and all(readers.get(offset + k) == {k} for k in range(count)):
            scale = sub.diagonal().repeat_interleave(c)
            total = rows * scale if total is None else torch.addcmul(total, rows, scale)
        else:
            kron = torch.kron(sub, eye)
            total = (torch.mm(rows, kron.t()) if total is None
                     else torch.addmm(total, rows, kron.t()))
        offset += count
    assert total is not None
    grid = total.view(n, h, w, t_count * c).permute(0, 3, 1, 2)
    return list(grid.split(c, 1)) if t_count > 1 else [grid]


def _mix_terms(cell: SuperCell, wave: Wave, blocks: _Blocks,
               weights: torch.Tensor) -> list[torch.Tensor]:
    """The channels_last mix term by term: ``out_t += w * block`` per (edge, op).

    The Kronecker GEMM of :func:`_mix` does C times the multiply-adds of the mix; from
    ``KRON_MAX_CHANNELS`` channels on, one fused multiply-add per term costs less.
    """
    c = cell.channels
    pieces = [p.split(c, 1) if p.shape[1] > c else (p,) for p in blocks.parts]
    flat = [piece for group in pieces for piece in group]
    outs: list[torch.Tensor | None] = [None] * len(wave.targets)
    for b, i, pos in blocks.entries:
        t = wave.target[i]
        w = weights[wave.edges[i], pos].to(flat[b].dtype)
        term = outs[t]
        outs[t] = flat[b] * w if term is None else torch.addcmul(term, flat[b], w)
    zero = torch.zeros_like(flat[0])
    return [zero if o is None else o for o in outs]


class _WaveRun:
    """The tensors one wave shares between its op types (sources, their ReLU, gathers)."""

    def __init__(self, cell: SuperCell, wave: Wave, states: list[torch.Tensor],
                 relu_slots: Sequence[int]) -> None:
        self.cell = cell
        self.wave = wave
        self.states = states
        self.c = cell.channels
        # Every source that a ReLU-first op (conv, FactorizedReduce) of the wave reads: the
        # ReLU runs once per wave on these.
        self.relu_slots = tuple(sorted(set(relu_slots)))
        self._sources: dict[tuple[int, ...], torch.Tensor] = {}
        self._relu: torch.Tensor | None = None
        self._gathers: dict[tuple[int, ...], torch.Tensor] = {}

    def sources(self, slots: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
        """The source states ``slots`` side by side on the channel axis."""
        key = tuple(slots)
        if key not in self._sources:
            self._sources[key] = _cat([self.states[self.wave.sources[s]] for s in key], 1)
        return self._sources[key], list(key)

    def gather(self, on: Sequence[int]) -> torch.Tensor:
        """ReLU of each listed edge's input, the edges side by side on the channel axis."""
        key = tuple(self.wave.slot[i] for i in on)
        if key in self._gathers:
            return self._gathers[key]
        if self._relu is None:
            self._relu = F.relu(self.sources(self.relu_slots)[0])
        r = self._relu
        copies, rest = divmod(len(key), len(self.relu_slots))
        if key == self.relu_slots:
            g = r
        elif not rest and key == self.relu_slots * copies:  # e.g. wave 0: (0, 1) x 4 edges
            g = repeat_channels(r, copies)
        elif len(set(key)) == 1:  # one source's edges: that source, repeated
            j = self.relu_slots.index(key[0])
            g = repeat_channels(r, len(key), (j * self.c, (j + 1) * self.c))
        else:
            g = gather_blocks(r, [self.relu_slots.index(s) for s in key], self.c)
        self._gathers[key] = g
        return g

    # -- per-edge op types ------------------------------------------------------------------
    def _module(self, i: int, name: str) -> nn.Module:
        return self.cell.edges[self.wave.edges[i]][name]  # type: ignore[index]

    def conv_ops(self, blocks: _Blocks, seps: list[tuple[str, int, list[int]]],
                 dils: list[tuple[str, int, list[int]]]) -> None:
        """SepConv and DilConv: depthwise per op, then ONE grouped pointwise conv and ONE BN
        for all of them; the SepConvs' second half likewise."""
        if not seps and not dils:
            return
        stride = self.wave.stride
        depthwise, pointwise, bns, readers = [], [], [], []
        count = 0
        for name, pos, on in [*seps, *dils]:
            mods = [self._module(i, name).op for i in on]  # type: ignore[union-attr]
            dw = mods[0][1]
            x = self.gather(on)
            depthwise.append(depthwise_conv(x, _cat([m[1].weight for m in mods]), stride,
                                            dw.padding[0], dw.dilation[0]))
            pointwise.extend(m[2].weight for m in mods)
            bns.extend(m[3] for m in mods)
            readers.append((name, pos, on, count))
            count += len(on)
        y = grouped_pointwise(_cat(depthwise, 1), _cat(pointwise), count)
        y = batch_norm_blocks(y, bns)
        sep_blocks = sum(len(on) for _, _, on in seps)
        # split, not slicing: split's backward is a cat, which keeps channels_last gradients
        # dense; a slice's backward scatters into an NCHW zero tensor.
        sizes = [len(on) * self.c for _, _, on in seps]
        sizes = [*sizes, (count - sep_blocks) * self.c] if dils else sizes
        # one piece: no split, whose backward would copy the gradient (a cat of one)
        parts = y.split(sizes, 1) if len(sizes) > 1 else (y,)
        if dils:
            blocks.add(parts[-1], count - sep_blocks,
                       [(b - sep_blocks + k, i, pos) for name, pos, on, b in readers[len(seps):]
                        for k, i in enumerate(on)])
        if not seps:
            return
        depthwise, pointwise, bns = [], [], []
        for (name, _pos, on), part in zip(seps, parts, strict=False):
            mods = [self._module(i, name).op for i in on]  # type: ignore[union-attr]
            dw = mods[0][5]
            depthwise.append(depthwise_conv(F.relu(part), _cat([m[5].weight for m in mods]), 1,
                                            dw.padding[0], dw.dilation[0]))
            pointwise.extend(m[6].weight for m in mods)
            bns.extend(m[7] for m in mods)
        z = grouped_pointwise(_cat(depthwise, 1), _cat(pointwise), sep_blocks)
        z = batch_norm_blocks(z, bns)
        blocks.add(z, sep_blocks, [(b + k, i, pos) for name, pos, on, b in readers[:len(seps)]
                                   for k, i in enumerate(on)])

    def factorized_reduce(self, blocks: _Blocks, name: str, pos: int, on: list[int]) -> None:
        """Skip at stride 2: the two offset 1x1 stride-2 convs of every edge as ONE grouped
        2x2 stride-2 conv (conv_1 on the (0, 0) tap, conv_2 on the (1, 1) tap)."""
        mods: list[FactorizedReduce] = [self._module(i, name) for i in on]  # type: ignore[misc]
        x = self.gather(on)
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            x = F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2))
        w1 = F.pad(torch.stack([m.conv_1.weight for m in mods]), (0, 1, 0, 1))
        w2 = F.pad(torch.stack([m.conv_2.weight for m in mods]), (1, 0, 1, 0))
        weight = torch.stack([w1, w2], 1).flatten(0, 2)
        y = F.conv2d(x, weight, None, 2, 0, 1, len(on))
        y = batch_norm_blocks(y, [m.bn for m in mods])
        blocks.add(y, len(on), [(k, i, pos) for k, i in enumerate(on)])

    def relu_conv_bn(self, blocks: _Blocks, name: str, pos: int, on: list[int]) -> None:
        """ReLU-conv-BN of every listed edge: one convolution, one BN.

        Edges that all read one source state (every wave of a one-input cell, NAS-Bench-201's)
        run as ONE dense convolution of that source with the edges' filters stacked on the
        output axis: the same sums as the grouped convolution of the source repeated once per
        edge, without the repeat (a copy forward, a sum of the copies' gradients backward).
        """
        mods = [self._module(i, name).op for i in on]  # type: ignore[union-attr]
        conv: nn.Conv2d = mods[0][1]
        one_source = len({self.wave.slot[i] for i in on}) == 1
        x = self.gather(on[:1] if one_source else on)
        y = F.conv2d(x, _cat([m[1].weight for m in mods]), None, conv.stride, conv.padding,
                     conv.dilation, 1 if one_source else len(on))
        y = batch_norm_blocks(y, [m[2] for m in mods])
        blocks.add(y, len(on), [(k, i, pos) for k, i in enumerate(on)])

    # -- parameter-free op types: once per source state --------------------------------------
    def pools(self, blocks: _Blocks, pools: list[tuple[str, int, list[int]]]) -> None:
        """Every pool (and BN-skip) on the sources its active edges read, with one shared BN
        when the BN output is the same for all readers (training, non-affine), else one BN
        per edge."""
        if not pools:
            return
        wave = self.wave
        outs, slots_of, groups = [], [], []
        for name, _pos, on in pools:
            x, slots = self.sources(sorted({wave.slot[i] for i in on}))
            transform, bn = _pool_parts(self._module(on[0], name))
            outs.append(transform(x))
            slots_of.append(slots)
            groups.append([[_pool_parts(self._module(i, name))[1] for i in on
                            if wave.slot[i] == s] for s in slots] if bn is not None else None)
        if all(g is not None for g in groups):
            y = shared_batch_norm(_cat(outs, 1), [bn for g in groups for bn in g])  # type: ignore[union-attr]
            if y is not None:
                base = 0
                readers = []
                for (_name, pos, on), slots in zip(pools, slots_of, strict=True):
                    readers.extend((base + slots.index(wave.slot[i]), i, pos) for i in on)
                    base += len(slots)
                blocks.add(y, base, readers)
                return
        for (name, pos, on), out, slots, group in zip(pools, outs, slots_of, groups,
                                                      strict=True):
            if group is None:  # no BN after the pool
                blocks.add(out, len(slots), [(slots.index(wave.slot[i]), i, pos) for i in on])
                continue
            c = self.c
            if len(slots) == 1 and len(on) == 1:
                per_edge = out
            else:
                per_edge = gather_blocks(out, [slots.index(wave.slot[i]) for i in on], c)
            bns = [_pool_parts(self._module(i, name))[1] for i in on]
            y = batch_norm_blocks(per_edge, bns)  # type: ignore[arg-type]
            blocks.add(y, len(on), [(k, i, pos) for k, i in enumerate(on)])


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def _pool_parts(module: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor],
                                            nn.BatchNorm2d | None]:
    """(parameter-free map, its BN or None) of a pool-kind op: a Pool, or a BN-skip."""
    if isinstance(module, SkipBN):
        return _same, module
    return module[0], (module[1] if len(module) > 1 else None)  # type: ignore[index, arg-type, return-value]
