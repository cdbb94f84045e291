"""Inherited-weight evaluation: a derived network that takes its weights from the supernet.

EDAS and PAD-NAS evaluate this way, GOLD-NAS records its Pareto points this way, and every
run reports the supernet-to-derived accuracy gap with it, on the run's scoring split.
Batch-norm statistics are recalibrated on training batches first: the supernet's running
statistics describe the mixed outputs, not the outputs of the kept ops alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nasbench_suite.data.datasets import Split
from nasbench_suite.spaces import Genotype, Space
from nasbench_suite.spaces.supernet import SuperNet
from nasbench_suite.training.accuracy import evaluate


def recalibrate_bn(model: nn.Module, batches: list[torch.Tensor],
                   forward: Callable[[torch.Tensor], Any] | None = None) -> None:
    """Reset every BN's running statistics and re-estimate them as a plain average."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the calibration batches
    was_training = model.training
    model.train()
    with torch.no_grad():
        for x in batches:
            (forward or model)(x)
    for bn, m in zip(bns, momenta, strict=True):
        bn.momentum = m
    model.train(was_training)


def calibration_batches(train: Split, batch_size: int, n_batches: int, seed: int,
                        device: torch.device) -> list[torch.Tensor]:
    """A fixed set of training batches (no augmentation) for BN recalibration."""
    gen = torch.Generator().manual_seed(seed + 424_242)
    out = []
    for x, _ in train.batches(batch_size, gen, device):
        out.append(x)
        if len(out) >= n_batches:
            break
    return out


def derived_network(space: Space, supernet: SuperNet, genotype: Genotype) -> nn.Module:
    """The genotype's network in the supernet's op flavour, holding the supernet's weights."""
    net = space.network(genotype, search_ops=True)
    net.inherit_from(supernet)
    return net.to(next(supernet.parameters()).device)


def inherited_accuracy(space: Space, supernet: SuperNet, genotype: Genotype,
                       calib: list[torch.Tensor], heldout: Split, batch_size: int,
                       device: torch.device) -> float:
    """Accuracy on ``heldout`` of the derived network with inherited, recalibrated weights."""
    net = derived_network(space, supernet, genotype)
    recalibrate_bn(net, calib)
    net.eval()
    return evaluate(lambda x: net(x)[0], heldout, batch_size, device)[1]


def supernet_accuracy(supernet: SuperNet, weights: torch.Tensor, active: torch.Tensor,
                      calib: list[torch.Tensor], heldout: Split, batch_size: int,
                      device: torch.device) -> float:
    """Accuracy of the supernet with its mixing weights, on a recalibrated copy."""
    net = copy.deepcopy(supernet)
    weights = weights.detach()
    recalibrate_bn(net, calib, lambda x: net(x, weights, active))
    net.eval()
    return evaluate(lambda x: net(x, weights, active)[0], heldout, batch_size, device)[1]
