"""The fast supernet path equals the plain PyTorch one.

Fast: the fused wave path (spaces/fused.py) in its default CPU memory format (channels_last),
with the fast depthwise kernels of spaces/depthwise.py. Plain: the module path
(``fused=False``), NCHW, every depthwise convolution a plain ``F.conv2d(groups=C)``. Both
spaces, odd image sizes, reduction cells (stride 2), maps large enough for the per-op-type
split of the fused path (``SPLIT_PIXELS``), a random active mask, the BN-skip of GOLD-NAS;
values, every gradient (mixing weights and network weights) and the BN running statistics,
to 1e-5 relative in float64. Then a few DARTS steps: the same alphas and genotype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import nasbench_suite.spaces.fused
import nasbench_suite.spaces.ops
import pytest
import torch
import torch.nn.functional as F
from nasbench_suite.methods.base import SearchContext
from nasbench_suite.methods.darts import Darts, DartsConfig
from nasbench_suite.spaces import NetShape, create_space
from nasbench_suite.spaces.fused import SPLIT_PIXELS
from nasbench_suite.spaces.supernet import SuperNet


def _plain_depthwise(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                     dilation: int) -> torch.Tensor:
    return F.conv2d(x, weight, None, stride, padding, dilation, weight.shape[0])


@contextlib.contextmanager
def plain_depthwise() -> Iterator[None]:
    """Every DepthwiseConv module computes plain F.conv2d (autograd's own backward)."""
    saved = nasbench_suite.spaces.ops.depthwise_conv
    nasbench_suite.spaces.ops.depthwise_conv = _plain_depthwise  # type: ignore[assignment]
    try:
        yield
    finally:
        nasbench_suite.spaces.ops.depthwise_conv = saved  # type: ignore[assignment]


def _pair(space_name: str, shape: NetShape, skip_bn: bool,
          channels_last: bool | None = None) -> tuple[SuperNet, SuperNet]:
    space = create_space(space_name, shape)
    torch.manual_seed(0)
    fast = SuperNet(space.layout, shape.channels, shape.in_channels, shape.num_classes,
                    auxiliary=True, skip_bn=skip_bn, channels_last=channels_last).double()
    plain = SuperNet(space.layout, shape.channels, shape.in_channels, shape.num_classes,
                     auxiliary=True, skip_bn=skip_bn, fused=False,
                     channels_last=False).double()
    plain.load_state_dict(fast.state_dict())
    return fast, plain


def _run(net: SuperNet, x: torch.Tensor, weights: torch.Tensor, active: torch.Tensor,
         probe: torch.Tensor) -> dict[str, torch.Tensor]:
    w = weights.clone().requires_grad_(True)
    net.zero_grad(set_to_none=True)
    logits, aux = net(x, w, active)
    assert aux is not None
    ((logits * probe).sum() + (aux * probe).sum()).backward()
    out = {"logits": logits.detach(), "aux": aux.detach(), "weights.grad": w.grad}
    out.update({f"{n}.grad": p.grad for n, p in net.named_parameters() if p.grad is not None})
    out.update({n: b.clone() for n, b in net.named_buffers()})
    return out


# (space, image size, BN-skip, memory format of the fast path: None = its CPU default,
# channels_last for the restricted space and NCHW for the relaxed one)
CASES = [
    ("restricted", 7, False, None), ("restricted", 9, False, None),
    ("restricted", 17, False, None), ("restricted", 9, False, False),
    ("relaxed", 7, False, None), ("relaxed", 15, False, True), ("relaxed", 17, True, None),
    ("relaxed", 17, True, True), ("relaxed", 9, True, None),
]


@pytest.mark.parametrize(("space_name", "size", "skip_bn", "channels_last"), CASES)
def test_fused_equals_plain_module_path(space_name: str, size: int, skip_bn: bool,
                                        channels_last: bool | None) -> None:
    shape = NetShape(channels=4, layers=3, in_channels=3, num_classes=5, image_size=size)
    fast, plain = _pair(space_name, shape, skip_bn, channels_last)
    layout = fast.layout
    gen = torch.Generator().manual_seed(size)
    active = torch.rand(layout.shape, generator=gen) < 0.7
    nonzero = [i for i, op in enumerate(layout.ops) if op != nasbench_suite.spaces.ops.ZERO]
    active[:, :, nonzero[0]] = True  # every node fed
    weights = torch.rand(layout.shape, generator=gen, dtype=torch.float64)
    x = torch.randn(6, 3, size, size, generator=gen, dtype=torch.float64)
    probe = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    got = _run(fast, x, weights, active, probe)
    with plain_depthwise():
        want = _run(plain, x, weights, active, probe)
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-8, msg=key)


@pytest.mark.parametrize("terms", [False, True])
@pytest.mark.parametrize("size", [8, 16])  # even: the residual blocks halve the maps
def test_fused_equals_plain_in_the_nb201_space(size: int, terms: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """NAS-Bench-201's one-input cell: every wave reads one source, so its convolutions run
    as one dense convolution per wave (the edges' filters stacked), not a grouped one;
    ``terms``: the channels_last mix term by term (from 1 channel on) instead of the GEMM."""
    monkeypatch.setattr(nasbench_suite.spaces.fused, "KRON_MAX_CHANNELS", 1 if terms else 10**6)
    shape = NetShape(channels=4, layers=6, in_channels=3, num_classes=5, image_size=size)
    space = create_space("nb201", shape)
    torch.manual_seed(0)
    fast = SuperNet(space.layout, 4, 3, 5, auxiliary=True, macro=space.macro,
                    pool_bn=space.search_pool_bn).double()
    plain = SuperNet(space.layout, 4, 3, 5, auxiliary=True, macro=space.macro, fused=False,
                     pool_bn=space.search_pool_bn, channels_last=False).double()
    plain.load_state_dict(fast.state_dict())
    gen = torch.Generator().manual_seed(size)
    active = torch.rand(fast.layout.shape, generator=gen) < 0.7
    for conv in ("nor_conv_1x1", "nor_conv_3x3"):
        active[:, :, fast.layout.ops.index(conv)] = True  # the dense path on 3, 2, 1 edges
    weights = torch.rand(fast.layout.shape, generator=gen, dtype=torch.float64)
    x = torch.randn(6, 3, size, size, generator=gen, dtype=torch.float64)
    probe = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    got = _run(fast, x, weights, active, probe)
    want = _run(plain, x, weights, active, probe)
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-8, msg=key)


@pytest.mark.parametrize("call_bytes", [1, 1 << 40])
def test_split_wave_runs_and_diagonal_mix_equal_plain(call_bytes: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every op active on maps that split (``SPLIT_PIXELS``): the convolutions run source by
    source, in runs of one edge (``call_bytes`` 1) or of all the source's edges, whose mix is
    then diagonal (one row-scaled multiply-add per part instead of the Kronecker GEMM)."""
    monkeypatch.setattr(nasbench_suite.spaces.fused, "CALL_BYTES", call_bytes)
    scaled = []
    addcmul = torch.addcmul

    def spy(*args: torch.Tensor, **kwargs: object) -> torch.Tensor:
        if isinstance(args[2], torch.Tensor) and args[2].dim() == 1:  # a mix's row scale
            scaled.append(len(set(args[2].tolist())))  # the part's blocks (distinct weights)
        return addcmul(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch, "addcmul", spy)
    shape = NetShape(channels=4, layers=3, in_channels=3, num_classes=5, image_size=17)
    fast, plain = _pair("restricted", shape, skip_bn=False)
    gen = torch.Generator().manual_seed(1)
    active = torch.ones(fast.layout.shape, dtype=torch.bool)
    weights = torch.rand(fast.layout.shape, generator=gen, dtype=torch.float64)
    x = torch.randn(6, 3, 17, 17, generator=gen, dtype=torch.float64)
    probe = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    got = _run(fast, x, weights, active, probe)
    # one-edge runs are diagonal in one-target waves only; whole sources in every wave
    assert scaled and (max(scaled) > 1) == (call_bytes > 1)
    with plain_depthwise():
        want = _run(plain, x, weights, active, probe)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-8, msg=key)


def test_cases_cover_the_split_and_the_bn_skip() -> None:
    """The cases above reach the per-op-type split and build BN-skips."""
    assert any(size * size >= SPLIT_PIXELS for _, size, _, _ in CASES)
    assert any(size * size < SPLIT_PIXELS for _, size, _, _ in CASES)
    shape = NetShape(channels=4, layers=3, in_channels=3, num_classes=5, image_size=7)
    net, _ = _pair("relaxed", shape, skip_bn=True)
    kinds = {type(m).__name__ for m in net.cells[0].edges.modules()}
    assert "SkipBN" in kinds


def _darts(fast: bool) -> Darts:
    shape = NetShape(channels=4, layers=3, in_channels=3, num_classes=10, image_size=9)
    space = create_space("restricted", shape)
    torch.manual_seed(0)
    supernet = (space.supernet() if fast else
                SuperNet(space.layout, 4, 3, 10, fused=False, channels_last=False))
    ctx = SearchContext(device=torch.device("cpu"), epochs=2, steps_per_epoch=3, seed=0)
    return Darts(space, supernet, DartsConfig(), ctx)


def test_darts_steps_give_the_same_alphas_and_genotype() -> None:
    fast, plain = _darts(True), _darts(False)
    plain.supernet.load_state_dict(fast.supernet.state_dict())
    torch.testing.assert_close(fast.alpha, plain.alpha)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, 9, 9, generator=gen), torch.randint(0, 10, (8,), generator=gen))
               for _ in range(4)]
    for step in range(2):
        train, val = batches[2 * step], batches[2 * step + 1]
        got = fast.step(train, val)
        with plain_depthwise():
            want = plain.step(train, val)
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
    # Adam moves each alpha by about lr = 3e-4 per step whatever the gradient's size.
    torch.testing.assert_close(fast.alpha, plain.alpha, rtol=0, atol=1e-6)
    assert fast.genotype() == plain.genotype()


@pytest.mark.parametrize("channels_last", [None, True])
def test_a_masked_bn_skip_is_never_computed(channels_last: bool | None) -> None:
    """A BN-skip has no parameters to poison; its batch counter shows whether it ran: the
    fused path updates exactly the active ones, once per forward, as the module path does."""
    shape = NetShape(channels=4, layers=3, in_channels=3, num_classes=5, image_size=9)
    fast, plain = _pair("relaxed", shape, skip_bn=True, channels_last=channels_last)
    layout = fast.layout
    skip = layout.ops.index("skip_connect")
    active = torch.rand(layout.shape, generator=torch.Generator().manual_seed(4)) < 0.5
    active[:, :, layout.ops.index("sep_conv_3x3")] = True  # every node fed
    x = torch.randn(4, 3, 9, 9, dtype=torch.float64)
    weights = torch.rand(layout.shape, dtype=torch.float64)
    for net in (fast, plain):
        net(x, weights, active)
    seen = set()
    for i, cell in enumerate(fast.cells):
        for e, edge in enumerate(cell.edges):
            module = edge["skip_connect"]
            if isinstance(module, torch.nn.BatchNorm2d):
                want = int(bool(active[i, e, skip]))
                seen.add(want)
                assert int(module.num_batches_tracked) == want, (i, e)
                twin = plain.cells[i].edges[e]["skip_connect"]
                torch.testing.assert_close(module.running_var, twin.running_var)
    assert seen == {0, 1}  # both masked and active BN-skips were checked
