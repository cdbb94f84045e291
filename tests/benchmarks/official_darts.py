"""The DARTS search network and first-order step as the DARTS paper's code defines them.

Written here from the definitions of quark0/darts (``cnn/model_search.py``,
``cnn/operations.py``, ``cnn/architect.py``, ``cnn/train_search.py``) so that the benchmarks
time the suite against the reference on the same machine, in the same process:

* PRIMITIVES in the official order: none, max_pool_3x3, avg_pool_3x3, skip_connect,
  sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5;
* the mixed op sums ``w * op(x)`` over ALL ops, the zero op included (``x.mul(0.)``, after a
  stride-2 subsampling in reduction cells); pools are followed by a non-affine BN;
* preprocessing: ReLU-conv1x1-BN, or FactorizedReduce after a reduction cell; the stem is a
  3x3 conv to 3C plus an (affine) BN; 4 nodes, output = the 4 nodes concatenated;
* the architecture step (first order) is a plain ``loss.backward()`` on the validation batch,
  which fills every weight gradient as well as the alphas', then Adam (lr 3e-4, betas
  (0.5, 0.999), wd 1e-3); the weight step is SGD (momentum 0.9, wd 3e-4) with the gradient
  norm clipped at 5.

``groups`` of alphas: 2 (normal, reduce; the DARTS space) or one per cell (the relaxed space
timed with the same naive mixing). ``gate="sigmoid"`` makes the mixing GOLD-NAS's (every op
multiplied by ``sigmoid(alpha)``, every op computed), ``skip_bn`` its stride-1 skip (a
non-affine BN) and ``auxiliary`` adds DARTS's auxiliary head (AuxiliaryHeadCIFAR) at 2/3 of
the depth, for the GOLD-NAS step benchmark (:func:`gold_step`: one-level, CE + 0.4 x aux CE,
weights SGD lr 0.01 momentum 0.9 wd 3e-4 clipped at 5, gates SGD lr 1 momentum 0.9).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
NODES = 4
Batch = tuple[torch.Tensor, torch.Tensor]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out, affine=False))


class SepConv(nn.Sequential):
    """Two ReLU - depthwise k x k - pointwise - BN blocks; the first carries the stride."""

    def __init__(self, c: int, k: int, stride: int) -> None:
        pad = k // 2
        super().__init__(
            nn.ReLU(), nn.Conv2d(c, c, k, stride, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False),
            nn.ReLU(), nn.Conv2d(c, c, k, 1, pad, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False))


class DilConv(nn.Sequential):
    """ReLU - depthwise k x k at dilation 2 - pointwise - BN."""

    def __init__(self, c: int, k: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(), nn.Conv2d(c, c, k, stride, k - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False))


class Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """ReLU, two 1x1 stride-2 convs offset by one pixel, concatenated, BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = False) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], 1))


class BNIdentity(nn.BatchNorm2d):
    """GOLD-NAS's search-network skip_connect at stride 1: a non-affine BN."""

    def __init__(self, c: int) -> None:
        super().__init__(c, affine=False)


def make_op(name: str, c: int, stride: int, skip_bn: bool = False) -> nn.Module:
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), nn.BatchNorm2d(c, affine=False))
    if name == "avg_pool_3x3":
        return nn.Sequential(nn.AvgPool2d(3, stride, 1, count_include_pad=False),
                             nn.BatchNorm2d(c, affine=False))
    if name == "skip_connect":
        if stride == 2:
            return FactorizedReduce(c, c)
        return BNIdentity(c) if skip_bn else nn.Identity()
    kind, _, size = name.rpartition("_")
    k = int(size.split("x")[0])
    return SepConv(c, k, stride) if kind == "sep_conv" else DilConv(c, k, stride)


class MixedOp(nn.Module):
    def __init__(self, ops: tuple[str, ...], c: int, stride: int, skip_bn: bool) -> None:
        super().__init__()
        self._ops = nn.ModuleList(make_op(name, c, stride, skip_bn) for name in ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self._ops, strict=True))  # type: ignore


class Cell(nn.Module):
    def __init__(self, ops: tuple[str, ...], c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool, skip_bn: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(c_pp, c) if reduction_prev
                            else ReLUConvBN(c_pp, c))
        self.preprocess1 = ReLUConvBN(c_p, c)
        self._ops = nn.ModuleList(
            MixedOp(ops, c, 2 if reduction and j < 2 else 1, skip_bn)
            for i in range(NODES) for j in range(2 + i))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(NODES):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)  # type: ignore[arg-type]
        return torch.cat(states[-NODES:], 1)


class AuxiliaryHead(nn.Module):
    """DARTS's AuxiliaryHeadCIFAR (an 8x8 input pooled to 2x2)."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


class SearchNetwork(nn.Module):
    """DARTS's search ``Network`` with its alphas, ``groups`` alpha groups."""

    def __init__(self, c: int, num_classes: int, layers: int, in_channels: int = 3,
                 ops: tuple[str, ...] = PRIMITIVES, per_cell: bool = False,
                 gate: str = "softmax", skip_bn: bool = False, stem_multiplier: int = 3,
                 auxiliary: bool = False) -> None:
        super().__init__()
        self.gate = gate
        self.aux_index = 2 * layers // 3
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        self.group: list[int] = []
        reduction_prev = False
        c_aux = 0
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(Cell(ops, c_pp, c_p, c_curr, reduction, reduction_prev, skip_bn))
            self.group.append(i if per_cell else int(reduction))
            reduction_prev = reduction
            c_pp, c_p = c_p, NODES * c_curr
            if i == self.aux_index:
                c_aux = c_p
        self.auxiliary = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        edges = sum(2 + i for i in range(NODES))
        groups = layers if per_cell else 2
        init = torch.zeros if gate == "sigmoid" else lambda *s: 1e-3 * torch.randn(*s)
        # Not an nn.Parameter: as in the DARTS code, model.parameters() are the weights only.
        self.alphas = init(groups, edges, len(ops)).requires_grad_(True)

    def arch_parameters(self) -> list[torch.Tensor]:
        return [self.alphas]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_aux(x)[0]

    def forward_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = (torch.sigmoid(self.alphas) if self.gate == "sigmoid"
             else torch.softmax(self.alphas, -1))
        s0 = s1 = self.stem(x)
        aux = None
        for i, (cell, g) in enumerate(zip(self.cells, self.group, strict=True)):
            s0, s1 = s1, cell(s0, s1, w[g])
            if i == self.aux_index and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1)), aux


def darts_step(net: SearchNetwork, train: Batch, val: Batch, w_lr: float = 0.025
               ) -> Callable[[], torch.Tensor]:
    """The first-order step of DARTS's train_search.py: architect.step, then the weights."""
    w_opt = torch.optim.SGD(net.parameters(), lr=w_lr, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999),
                             weight_decay=1e-3)

    def step() -> torch.Tensor:
        net.train()
        a_opt.zero_grad()
        F.cross_entropy(net(val[0]), val[1]).backward()  # fills the weights' grads too
        a_opt.step()
        w_opt.zero_grad()
        loss = F.cross_entropy(net(train[0]), train[1])
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        w_opt.step()
        return loss.detach()

    return step


def gold_step(net: SearchNetwork, batch: Batch, aux_weight: float = 0.4
              ) -> Callable[[], torch.Tensor]:
    """GOLD-NAS's one-level step (sunsmarterjie/GOLD_NAS train_search.py) with every op
    computed: weights and gates step together on one batch (lambda = 0 at the start)."""
    w_opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.SGD(net.arch_parameters(), lr=1.0, momentum=0.9)

    def step() -> torch.Tensor:
        net.train()
        w_opt.zero_grad()
        a_opt.zero_grad()
        logits, aux = net.forward_aux(batch[0])
        loss = F.cross_entropy(logits, batch[1])
        if aux is not None:
            loss = loss + aux_weight * F.cross_entropy(aux, batch[1])
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        w_opt.step()
        a_opt.step()
        return loss.detach()

    return step


#: a checkout of quark0/darts's cnn/ folder (fetched into a scratch folder, never committed):
#: when set, the benchmark times the official code itself instead of this rewrite
OFFICIAL_ENV = "NASBENCH_OFFICIAL_DARTS"


def official_network(channels: int, num_classes: int, layers: int) -> tuple[nn.Module, str]:
    """The DARTS search network to time: quark0/darts's own ``model_search.Network`` from the
    folder ``$NASBENCH_OFFICIAL_DARTS`` names, else this module's rewrite of it; returns it
    and which it is. The official code moves its alphas to CUDA at construction
    (``Variable(...).cuda()``), so its ``.cuda()`` is the identity while it is built here.
    The official network takes 3-channel images only."""
    import os
    import sys
    from unittest import mock

    folder = os.environ.get(OFFICIAL_ENV)
    if not folder:
        return SearchNetwork(channels, num_classes, layers, 3), "tests/benchmarks rewrite"
    if not (Path(folder) / "model_search.py").is_file():
        raise FileNotFoundError(f"${OFFICIAL_ENV}={folder} holds no model_search.py "
                                "(point it at quark0/darts's cnn/ folder)")
    sys.path.insert(0, str(folder))
    try:
        with mock.patch.object(torch.Tensor, "cuda", lambda self, *a, **k: self):
            import model_search  # type: ignore[import-not-found]

            net = model_search.Network(channels, num_classes, layers, nn.CrossEntropyLoss())
    finally:
        sys.path.remove(str(folder))
    return net, f"quark0/darts at {folder}"
