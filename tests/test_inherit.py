"""Inherited-weight evaluation: a derived network must equal its part of the supernet.

The supernet restricted to a genotype's ops (every other op's mixing weight zero, or the op
switched off) and the genotype's discrete network holding the copied weights are the same
function; after the same BN recalibration they must give the same held-out accuracy. If
they did not, every supernet-to-derived gap the suite reports would include an artefact.
"""

from __future__ import annotations

import pytest
import torch
from nasbench_suite.spaces import DARTS_V2, Genotype, NetShape, Space, create_space

from nasbench_suite.data.datasets import TensorSplit
from nasbench_suite.training.inherit import (
    derived_network,
    inherited_accuracy,
    recalibrate_bn,
    supernet_accuracy,
)

TINY_SHAPE = NetShape(channels=4, layers=3, in_channels=1, num_classes=10, image_size=8)
DEVICE = torch.device("cpu")


#: tiny networks are overhead-bound: one intra-op thread (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def _genotype(space: Space) -> Genotype:
    """The DARTS cell (restricted) or a random many-ops-per-edge genotype (relaxed)."""
    if not space.capabilities.multi_op_edges:
        return DARTS_V2
    gen = torch.Generator().manual_seed(3)
    keep = torch.rand(space.layout.shape, generator=gen) < 0.5
    return space.derive(torch.rand(space.layout.shape, generator=gen), keep=keep)


def _trained_bn(space: Space) -> torch.nn.Module:
    """A supernet whose BN running statistics are not the defaults (a few train forwards)."""
    torch.manual_seed(0)
    net = space.supernet()
    weights = torch.full(space.layout.shape, 1.0 / len(space.ops))
    with torch.no_grad():
        net(torch.randn(16, 1, 8, 8), weights, space.layout.full_mask())
    return net


@pytest.mark.parametrize("space_name", ["restricted", "relaxed"])
def test_inherited_accuracy_equals_supernet_with_other_ops_zeroed(space_name: str) -> None:
    space = create_space(space_name, TINY_SHAPE)
    supernet = _trained_bn(space)
    genotype = _genotype(space)
    mask = space.mask_of(genotype)
    weights = mask.to(torch.float32)

    gen = torch.Generator().manual_seed(1)
    calib = [torch.randn(32, 1, 8, 8, generator=gen)]
    heldout = TensorSplit(torch.randn(64, 1, 8, 8, generator=gen),
                          torch.randint(0, 10, (64,), generator=gen))

    derived = inherited_accuracy(space, supernet, genotype, calib, heldout, 64, DEVICE)
    # Other ops switched off (never computed), or computed with mixing weight zero.
    for active in (mask, space.layout.full_mask()):
        assert derived == supernet_accuracy(supernet, weights, active, calib, heldout, 64,
                                            DEVICE)

    # The same holds logit by logit, not just for the accuracy.
    net = derived_network(space, supernet, genotype)
    recalibrate_bn(net, calib)
    recalibrate_bn(supernet, calib, lambda x: supernet(x, weights, mask))
    net.eval()
    supernet.eval()
    with torch.no_grad():
        a = net(heldout.x)[0]
        b = supernet(heldout.x, weights, mask)[0]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_inherited_accuracy_leaves_the_supernet_untouched() -> None:
    space = create_space("restricted", TINY_SHAPE)
    supernet = _trained_bn(space)
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    calib = [torch.randn(16, 1, 8, 8)]
    heldout = TensorSplit(torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,)))
    mask = space.mask_of(DARTS_V2)
    inherited_accuracy(space, supernet, DARTS_V2, calib, heldout, 32, DEVICE)
    supernet_accuracy(supernet, mask.float(), mask, calib, heldout, 32, DEVICE)
    for k, v in supernet.state_dict().items():
        assert torch.equal(v, before[k]), k
