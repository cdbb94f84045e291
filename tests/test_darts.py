"""DARTS: first and second order steps, the Hessian-vector product, a real epoch on digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from nasbench_suite.methods import SearchContext, get_method
from nasbench_suite.spaces import NetShape, create_space

from nasbench_suite.data.datasets import load_digits_data, split_train_val

SHAPE = NetShape(channels=4, layers=3, in_channels=1, num_classes=10, image_size=8)


def _darts(space_name: str, order: int, epochs: int = 1, steps: int = 1):
    space = create_space(space_name, SHAPE)
    net = space.supernet()
    cls = get_method("darts")
    ctx = SearchContext(torch.device("cpu"), epochs, steps, seed=0)
    return cls(space, net, cls.Config(order=order), ctx)


def _batch(seed: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("space_name", ["restricted", "relaxed"])
def test_step_moves_alphas_and_weights(order: int, space_name: str) -> None:
    method = _darts(space_name, order)
    alpha0 = method.alpha.detach().clone()
    w0 = [p.detach().clone() for p in method.supernet.parameters()]
    stats = method.step(_batch(0), _batch(1))
    assert set(stats) >= {"loss", "acc", "val_loss"}
    assert not torch.equal(method.alpha, alpha0)
    assert any(not torch.equal(p, q) for p, q in zip(method.supernet.parameters(), w0,
                                                      strict=True))


def test_finite_difference_hvp_matches_autograd_double_backward() -> None:
    """The implementation, not DARTS's step size: in float64 with a small radius (ReLU kinks
    make the default r = 0.01 a coarse approximation) it equals the exact product."""
    torch.manual_seed(0)
    method = _darts("relaxed", 2)
    method.supernet.double()
    with torch.no_grad():
        method.alpha.data = method.alpha.data.double()
    method.cfg.hvp_r = 1e-6  # the BN skip (GOLD-NAS's) curves the loss sharply: 1e-4 is too coarse
    x, y = _batch(3)
    batch = (x.double(), y)
    params = tuple(method.supernet.parameters())
    vector = [torch.randn_like(p) * 1e-2 for p in params]
    method.supernet.train()
    approx = method._hessian_vector(params, vector, batch)
    weights, active = method.mixing()
    loss, _ = method.forward_loss(batch, weights, active)
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vector, strict=True) if g is not None)
    (exact,) = torch.autograd.grad(dot, [method.alpha])
    assert float((approx - exact).norm() / exact.norm()) < 1e-4


@pytest.mark.slow  # a whole epoch on digits
def test_one_epoch_on_digits_moves_alphas_and_lowers_training_loss() -> None:
    torch.manual_seed(0)
    data = load_digits_data(None)
    train, val = split_train_val(data.train, 0.5, seed=0)
    method = _darts("restricted", 1, epochs=1, steps=len(train) // 32)
    alpha0 = method.alpha.detach().clone()
    probe = next(train.batches(256, None, torch.device("cpu")))

    def train_loss() -> float:
        method.supernet.train()
        with torch.no_grad():
            w, a = method.mixing()
            return float(F.cross_entropy(method.supernet(probe[0], w, a)[0], probe[1]))

    before = train_loss()
    method.begin_epoch(0)
    gen = torch.Generator().manual_seed(0)
    val_batches = val.batches(32, gen, torch.device("cpu"))
    for batch in train.batches(32, gen, torch.device("cpu")):
        method.step(batch, next(val_batches))
    assert train_loss() < 0.8 * before
    assert (method.alpha.detach() - alpha0).abs().max() > 1e-4


def test_cosine_schedule_is_a_function_of_the_epoch() -> None:
    method = _darts("restricted", 1, epochs=10)
    method.begin_epoch(0)
    assert method.w_lr == pytest.approx(0.025)
    method.begin_epoch(5)
    assert method.w_lr == pytest.approx(0.001 + 0.024 * 0.5)
    method.begin_epoch(10)
    assert method.w_lr == pytest.approx(0.001)


def test_relaxed_threshold_keeps_every_op_above_it() -> None:
    method = _darts("relaxed", 1)
    method.cfg.relaxed_threshold = 0.4
    with torch.no_grad():
        method.alpha.zero_()  # softmax 0.5 everywhere: both ops kept
    assert method.space.mask_of(method.genotype()).all()


def test_second_order_updates_the_live_batch_norms_four_times_per_step() -> None:
    """The reference evaluates the unrolled network as a copy: the live supernet's running
    statistics see the train loss at w, the two finite-difference passes and the weight
    step (4), not the unrolled validation pass too (5)."""
    method = _darts("restricted", 2)
    bn = next(m for m in method.supernet.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = int(bn.num_batches_tracked)
    method.step(_batch(0), _batch(1))
    assert int(bn.num_batches_tracked) - before == 4


@pytest.mark.slow
def test_the_default_run_learns_its_architecture(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`nasbench run --method darts --space restricted` (mini preset, digits): the mixing
    weights move (median edge spread >= 0.05) and at least a quarter of the edges change
    their choice after the first epoch, so the derived cell is a search result."""
    from nasbench_suite.config import resolve_config
    from nasbench_suite.store.runfolder import RunFolder
    from nasbench_suite.training.loop import run_search

    # One thread: the result does not depend on it, and two threads on cores another
    # process also uses (a background experiment) made this 95 s test take over 10 minutes.
    cfg = resolve_config({"method": "darts", "space": "restricted", "out": str(tmp_path),
                          "threads": 1})
    run = RunFolder(run_search(cfg, progress=False, log=lambda _: None))
    arch = run.arch()
    first, last = torch.tensor(arch[1].weights), torch.tensor(arch[-1].weights)
    spread = (last.amax(-1) - last.amin(-1)).flatten()
    assert float(spread.median()) >= 0.05
    changed = (first.argmax(-1) != last.argmax(-1)).float().mean()
    assert float(changed) >= 0.25
    assert run.summary().learning["edge_spread_median"] >= 0.05
