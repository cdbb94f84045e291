"""What every search space provides: layout, supernet, network, costs, derivation, size."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import torch
from nasbench_suite.spaces.cost import Cost, CostTable, count_cost_table
from nasbench_suite.spaces.genotype import CellGenotype, Genotype
from nasbench_suite.spaces.layout import ArchLayout
from nasbench_suite.spaces.macro import Macro, darts_macro
from nasbench_suite.spaces.network import Network
from nasbench_suite.spaces.ops import ZERO, check_ops
from nasbench_suite.spaces.supernet import SuperNet


@dataclass(frozen=True)
class NetShape:
    """The sizes a space is instantiated at: they fix the cost table. What a skeleton needs
    of them (DARTS's: at least 3 cells) its space checks when it builds its macro."""

    channels: int
    layers: int
    in_channels: int
    num_classes: int
    image_size: int
    nodes: int = 4
    stem_multiplier: int = 3

    def __post_init__(self) -> None:
        for name in ("channels", "layers", "in_channels", "num_classes", "image_size", "nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


#: the search supernet's stride-1 skip: the space's own, a non-affine BN, or an identity
SKIPS = ("auto", "bn", "identity")


@dataclass(frozen=True)
class Capabilities:
    """What a method may rely on, instead of a space's name.

    * ``zero_op``: the op list holds ``none`` (never computed; a derived cell drops it);
    * ``shared_groups``: several cells share one architecture group (DARTS's normal and
      reduction cells) rather than every cell having its own;
    * ``inputs_per_node``: how many input edges a derived node keeps (DARTS: 2), or None
      when the derivation keeps any number (at least one);
    * ``multi_op_edges``: a derived edge may keep several ops (then each op is an independent
      choice: sigmoid gates rather than a softmax over the edge);
    * ``complete_edges``: a derived cell keeps every edge of every node, each with exactly one
      op of the list, ``none`` included (NAS-Bench-201: a choice per edge, none per node, so
      ``inputs_per_node`` is None and a node may end up with no input but ``none``).
    """

    zero_op: bool
    shared_groups: bool
    inputs_per_node: int | None
    multi_op_edges: bool
    complete_edges: bool = False


class Space:
    """Data plus builders. Subclasses set the op list, the groups and the derivation rule.

    A space never knows which method drives it; methods use only this public interface and
    read :attr:`capabilities`, never the space's name.
    """

    name: ClassVar[str]
    default_ops: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    #: derivation rule, for people: how scores or kept ops become a genotype
    derivation: ClassVar[str]
    shared_groups: ClassVar[bool]
    inputs_per_node: ClassVar[int | None]
    multi_op_edges: ClassVar[bool]
    #: the search supernet's stride-1 skip_connect: a non-affine BatchNorm (GOLD-NAS's public
    #: search network) or an identity (DARTS's)
    skip_bn_default: ClassVar[bool] = False
    #: Capabilities.complete_edges: every edge keeps one op, ``none`` included (NAS-Bench-201)
    complete_edges: ClassVar[bool] = False
    #: whether the search supernet follows each pool with a non-affine BN (DARTS's search cell)
    search_pool_bn: ClassVar[bool] = True

    def __init__(self, shape: NetShape, ops: tuple[str, ...] | None = None,
                 skip: str = "auto") -> None:
        if skip not in SKIPS:
            raise ValueError(f"skip must be one of {', '.join(SKIPS)}, got {skip!r}")
        self.shape = shape
        self.ops = tuple(ops) if ops else self.default_ops
        check_ops(self.ops)
        #: the network around the cells, at the space's own sizes
        self.macro = self.macro_for(shape.channels, shape.layers)
        self.layout = self._layout()
        self.capabilities = self.capabilities_for(self.ops)
        #: the search flavour's skip: ``auto`` is the space's own (skip_bn_default)
        self.skip_bn = self.skip_of(skip) == "bn"

    @classmethod
    def skip_of(cls, skip: str = "auto") -> str:
        """The stride-1 skip ``skip`` names in this space: ``bn`` or ``identity`` (``auto``:
        the space's own)."""
        if skip != "auto":
            return skip
        return "bn" if cls.skip_bn_default else "identity"

    @classmethod
    def capabilities_for(cls, ops: tuple[str, ...] | None = None) -> Capabilities:
        """The capabilities of this space with op list ``ops`` (default: its own)."""
        return Capabilities(zero_op=ZERO in (ops or cls.default_ops),
                            shared_groups=cls.shared_groups,
                            inputs_per_node=cls.inputs_per_node,
                            multi_op_edges=cls.multi_op_edges,
                            complete_edges=cls.complete_edges)

    # -- subclasses -------------------------------------------------------------------------
    def macro_for(self, channels: int, layers: int) -> Macro:
        """The network around the cells at ``channels`` and ``layers`` cells (default:
        DARTS's NetworkCIFAR; a ValueError if the skeleton cannot have that depth)."""
        return darts_macro(channels, layers, self.shape.nodes, self.shape.stem_multiplier)

    def _layout(self) -> ArchLayout:
        raise NotImplementedError

    def derive(self, scores: torch.Tensor, keep: torch.Tensor | None = None) -> Genotype:
        """Genotype from per-(group, edge, op) strengths; ``keep`` limits or names the ops."""
        raise NotImplementedError

    def log10_size(self, layers: int | None = None) -> float:
        """log10 of the number of distinct architectures at ``layers`` cells."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    @property
    def nonzero_ops(self) -> list[int]:
        return [i for i, op in enumerate(self.ops) if op != ZERO]

    def nonzero_mask(self) -> torch.Tensor:
        """Bool (O,): the ops that have an output (every op but ``none``)."""
        mask = torch.zeros(len(self.ops), dtype=torch.bool)
        mask[self.nonzero_ops] = True
        return mask

    def supernet(self, affine: bool = False, pool_bn: bool | None = None,
                 auxiliary: bool = False) -> SuperNet:
        """The search supernet; ``pool_bn`` None: the space's own (:attr:`search_pool_bn`)."""
        s = self.shape
        pool_bn = self.search_pool_bn if pool_bn is None else pool_bn
        return SuperNet(self.layout, s.channels, s.in_channels, s.num_classes,
                        s.stem_multiplier, affine=affine, pool_bn=pool_bn, auxiliary=auxiliary,
                        skip_bn=self.skip_bn, macro=self.macro)

    def network(self, genotype: Genotype, channels: int | None = None, layers: int | None = None,
                auxiliary: bool = False, drop_path_prob: float = 0.0,
                search_ops: bool = False) -> Network:
        """The discrete network of ``genotype``; ``search_ops`` builds the supernet's op flavour
        (non-affine BN, the search cell's BN after pools, the search skip) so that
        :meth:`Network.inherit_from` fits. Trained from scratch, a skip is an identity
        (DARTS's evaluation network). Built in the space's skeleton at ``channels`` and
        ``layers`` (:meth:`macro_for`)."""
        s = self.shape
        channels, layers = channels or s.channels, layers or s.layers
        return Network(genotype, channels, layers, s.in_channels,
                       s.num_classes, s.nodes, s.stem_multiplier, auxiliary, drop_path_prob,
                       affine=not search_ops, pool_bn=search_ops and self.search_pool_bn,
                       skip_bn=search_ops and self.skip_bn,
                       macro=self.macro_for(channels, layers))

    @cached_property
    def cost(self) -> CostTable:
        s = self.shape
        return count_cost_table(self.layout, s.channels, s.in_channels, s.num_classes,
                                s.image_size, s.stem_multiplier, self.macro)

    def genotype_cost(self, genotype: Genotype) -> Cost:
        return self.cost.genotype_cost(genotype)

    def genotype_from_mask(self, keep: torch.Tensor) -> Genotype:
        """Exactly the kept non-zero ops, as a genotype of this space (no rule applied)."""
        groups = {}
        for g, name in enumerate(self.layout.groups):
            edges = tuple((self.ops[o], e.input, e.node) for e in self.layout.edges
                          for o in self.nonzero_ops if bool(keep[g, e.index, o]))
            groups[name] = CellGenotype(edges, self.concat)
        return Genotype(self.name, groups, self._cell_group_names())

    def _cell_group_names(self) -> tuple[str, ...]:
        return ()

    @property
    def concat(self) -> tuple[int, ...]:
        """The nodes a derived cell outputs, as the macro's output rule says."""
        ids = self.layout.node_ids
        return tuple(ids) if self.macro.output == "concat" else (ids[-1],)

    def check_genotype(self, genotype: Genotype) -> None:
        """A ValueError unless ``genotype`` fits this space's cells (inputs, nodes, and
        nodes without input only where the macro allows them)."""
        genotype.check(self.layout.nodes, self.layout.inputs, self.macro.empty_nodes)

    def mask_of(self, genotype: Genotype) -> torch.Tensor:
        """The (G, E, O) bool mask of a genotype's ops: the inverse of genotype_from_mask."""
        mask = torch.zeros(self.layout.shape, dtype=torch.bool)
        edge_index = {(e.input, e.node): e.index for e in self.layout.edges}
        for g, name in enumerate(self.layout.groups):
            for op, src, dst in genotype.groups[name].edges:
                mask[g, edge_index[(src, dst)], self.ops.index(op)] = True
        return mask
