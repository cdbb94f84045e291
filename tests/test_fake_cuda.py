"""The ``--device cuda`` path on a CPU, on a fake CUDA device (tests/fake_cuda.py).

Why: tests/test_gpu.py runs only where a GPU is, so a tensor created on the CPU inside a step
or a ``.cpu()`` that leaves an operand behind would fail there and nowhere else. Here every
method searches (weight and architecture steps, the loop's evaluations, its checkpoint and its
summary) through ``run_search`` with ``device="cuda"``, with and without AMP, and a derived
network of every space trains from scratch and is evaluated through ``train_from_scratch``;
an op that mixes a CUDA and a CPU tensor raises CUDA's own error. The first tests show that
the fake device does raise it, so that the others can fail.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nasbench_suite.spaces as spaces
import pytest
import torch
from nasbench_suite.methods import get_method, list_methods
from nasbench_suite.methods.hessian import largest_eigenvalue
from nasbench_suite.spaces.supernet import SuperNet
from torch import nn

from nasbench_suite.store.evalfolder import EvalFolder
from nasbench_suite.store.runfolder import RunFolder
from nasbench_suite.training.loop import run_search
from nasbench_suite.training.scratch import resolve_eval_config, train_from_scratch
from tests.fake_cuda import CUDA, FakeCudaTensor, fake_cuda

pytestmark = pytest.mark.usefixtures("one_thread")

#: a search of one epoch and a handful of steps (each test: seconds)
SMALL: dict[str, Any] = {"epochs": 1, "batch_size": 16, "max_train_images": 32, "nodes": 2,
                         "score_portion": 0.05, "bn_calib_batches": 1, "eval_batch_size": 512}
#: each method on its paper's space, the rest on the others (every space searched at least
#: once); a method added to the registry searches the first space
HOME = {"darts": "restricted", "edas": "nb201", "gold": "relaxed", "nse": "relaxed",
        "padnas": "restricted"}
#: per method: what makes its tiny run cover its device-relevant paths quickly
EXTRA: dict[str, dict[str, Any]] = {
    "darts": {"order": 2},
    "padnas": {"population": 2, "generations": 1, "stages": 1, "cost": "latency",
               "latency_repeats": 1, "latency_warmup": 0},
}


@pytest.fixture
def cuda() -> Iterator[None]:
    with fake_cuda():
        yield


def _all_on_fake_cuda(tensors: dict[str, torch.Tensor], what: str) -> None:
    wrong = [name for name, t in tensors.items() if not isinstance(t, FakeCudaTensor)]
    assert not wrong, f"{what} not on the (fake) CUDA device: {wrong[:5]}"


# -- the fake device catches what CUDA would -------------------------------------------------
def test_a_cpu_tensor_in_a_cuda_computation_raises(cuda: None) -> None:
    """The check the other tests rely on: a tensor created on the CPU inside a CUDA forward
    raises as it would on a GPU, in the forward and in a backward."""
    conv = nn.Conv2d(3, 4, 3).to("cuda")
    x = torch.randn(2, 3, 8, 8).to("cuda")
    assert conv.weight.device == CUDA and x.is_cuda and conv(x).device == CUDA
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        conv(x) + torch.ones(2, 4, 6, 6)  # created on the CPU, as a bug would
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        conv(torch.randn(2, 3, 8, 8))  # a batch that was never moved
    w = torch.randn(4, 6, 6, requires_grad=True)  # a CPU parameter meets the CUDA graph
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        (conv(x) * w).sum().backward()


class _CpuInBackward(torch.autograd.Function):
    """A custom backward with the bug the engine's own zeros must not hide."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad * torch.full(grad.shape, 2.0)  # created on the CPU


def test_a_cpu_tensor_in_a_backward_raises(cuda: None) -> None:
    """The zeros the autograd engine fills a missing gradient with are on the device (the
    unused half of a split), a tensor a custom backward creates on the CPU is not."""
    x = torch.randn(4, 3, device="cuda", requires_grad=True)
    used, _ = x.split(2)
    (used**2).sum().backward()
    assert isinstance(x.grad, FakeCudaTensor) and float(x.grad[2:].abs().sum()) == 0.0
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        _CpuInBackward.apply(x).sum().backward()


def test_what_cuda_allows_is_allowed(cuda: None) -> None:
    """0-dim CPU scalars, CPU index tensors, copies between devices, ``.item()`` and
    ``.tolist()`` work as on CUDA; gradients and optimiser states stay on the device;
    ``.numpy()`` refuses as on CUDA; a ``device="cuda"`` factory with a CPU generator too."""
    x = torch.randn(3, 4, device="cuda", requires_grad=True)
    y = x * torch.tensor(2.0) + 1
    assert y.device == CUDA and y[torch.tensor([0, 2])].device == CUDA
    assert x.detach().cpu().device == torch.device("cpu") and isinstance(x.tolist(), list)
    moved = torch.zeros(3, 4, device="cuda")
    moved.copy_(torch.ones(3, 4))
    assert float(moved.sum()) == 12.0
    opt = torch.optim.Adam([x], lr=0.1)
    (y.cpu() ** 2).sum().backward()  # the gradient crosses back to the device
    opt.step()
    _all_on_fake_cuda({"grad": x.grad, **{k: v for k, v in opt.state[x].items()
                                         if v.dim() > 0}}, "gradient and Adam state")
    with pytest.raises(TypeError, match="can't convert cuda"):
        x.detach().numpy()
    with pytest.raises(RuntimeError, match="generator"):
        torch.randn(3, generator=torch.Generator(), device="cuda")


def test_autocast_runs_in_the_dtype_asked_for(cuda: None) -> None:
    """AMP on the fake device is real mixed precision: the convolution's output is in the
    autocast dtype (float16 when none is given, as CUDA's default), its gradient in fp32."""
    conv = nn.Conv2d(3, 4, 3).to("cuda")
    x = torch.randn(2, 3, 8, 8, device="cuda")
    for dtype, expected in ((None, torch.float16), (torch.bfloat16, torch.bfloat16)):
        with torch.autocast("cuda", dtype=dtype):
            out = conv(x)
        assert out.dtype == expected and out.device == CUDA
        out.float().sum().backward()
        assert conv.weight.grad.dtype == torch.float32
        assert isinstance(conv.weight.grad, FakeCudaTensor)


# -- the suite's CUDA path ------------------------------------------------------------------
def test_hessian_eigenvalue_on_fake_cuda(cuda: None) -> None:
    """RobustDARTS's eigenvalue (methods/hessian.py) of a loss of CUDA parameters: each
    Hessian-vector product crosses between the device and ARPACK's NumPy vectors. (The
    search tests leave the loop's eigenvalue out: its double backwards take minutes here.)"""
    a = torch.tensor([1.0, -2.0, 0.5], device="cuda", requires_grad=True)
    b = torch.tensor([[0.3]], device="cuda", requires_grad=True)
    m = torch.diag(torch.tensor([4.0, 1.0, 2.0])).to("cuda")

    def loss() -> torch.Tensor:  # Hessian diag(4, 1, 2, 6): the largest eigenvalue is 6
        return a @ m @ a / 2 + 3 * (b**2).sum()

    ev = largest_eigenvalue(loss, [a, b], iters=4)
    assert ev.converged and ev.value == pytest.approx(6.0, abs=1e-4)



def _space_of(method: str) -> str:
    return HOME.get(method, spaces.list_spaces()[0])


def _optimizers(method: Any) -> dict[str, torch.optim.Optimizer]:
    return {k: v for k, v in vars(method).items() if isinstance(v, torch.optim.Optimizer)}


def _checked(step: Any, seen: dict[str, Any]) -> Any:
    """``Method.step`` that asserts, around each step, that the batches, every parameter and
    buffer of the supernet, every parameter an optimiser of the method trains (the
    architecture parameters), the gradients and the optimisers' state are on the device (the
    active mask is on the CPU by design: it steers Python)."""

    @functools.wraps(step)
    def checked(self: Any, batch: Any, val_batch: Any) -> dict[str, float]:
        optimizers = _optimizers(self)
        trained = {f"{name}[{i}]": p for name, opt in optimizers.items()
                   for i, p in enumerate(q for g in opt.param_groups for q in g["params"])}
        before = {**dict(self.supernet.named_parameters()), **dict(self.supernet.named_buffers()),
                  **trained, "x": batch[0], "y": batch[1]}
        if val_batch is not None:
            before.update(val_x=val_batch[0], val_y=val_batch[1])
        _all_on_fake_cuda(before, f"{type(self).__name__} before a step")
        stats = step(self, batch, val_batch)
        after = {f"{n}.grad": p.grad for n, p in trained.items() if p.grad is not None}
        for name, opt in optimizers.items():
            after.update({f"{name}.state.{k}": v for state in opt.state.values()
                          for k, v in state.items()
                          if isinstance(v, torch.Tensor) and v.dim() > 0})
        _all_on_fake_cuda(after, f"{type(self).__name__} after a step")
        assert not isinstance(self.mixing()[1], FakeCudaTensor)
        seen["steps"] += 1
        return stats

    return checked


def _record_logits(forward: Any, seen: dict[str, Any]) -> Any:
    @functools.wraps(forward)
    def recorded(self: SuperNet, *args: Any, **kwargs: Any) -> Any:
        out = forward(self, *args, **kwargs)
        if self.training and torch.is_grad_enabled():
            seen["dtypes"].add(out[0].dtype)
        return out

    return recorded


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "amp"])
@pytest.mark.parametrize("method", list_methods())
def test_every_method_searches_on_fake_cuda(tiny_config, monkeypatch: pytest.MonkeyPatch,
                                            method: str, amp: bool) -> None:
    """A whole tiny search on ``cuda`` (the entry point ``nasbench run --device cuda``
    takes): steps, epoch-end pruning and evolution, evaluations, checkpoint and summary. With
    AMP the training forwards run in bfloat16 (``--amp``'s documented dtype: float16 without
    a gradient scaler would underflow gradients)."""
    seen: dict[str, Any] = {"steps": 0, "dtypes": set()}
    cls = get_method(method)
    monkeypatch.setattr(cls, "step", _checked(cls.step, seen))
    monkeypatch.setattr(SuperNet, "forward", _record_logits(SuperNet.forward, seen))
    cfg = tiny_config(method=method, space=_space_of(method), device="cuda", amp=amp,
                      **{**SMALL, **EXTRA.get(method, {})})
    with fake_cuda():
        run = RunFolder(run_search(cfg, progress=False, log=lambda _: None))
    assert run.finished() and run.summary().device == "cuda"
    assert seen["steps"] > 0
    assert seen["dtypes"] == ({torch.bfloat16} if amp else {torch.float32})


@pytest.mark.parametrize("space", spaces.list_spaces())
def test_training_from_scratch_on_fake_cuda(cuda: None, tmp_path: Path, space: str) -> None:
    """A derived network of each space trains one epoch and is evaluated on ``cuda``
    (``nasbench evaluate --device cuda``'s path); its weights and buffers are on the device."""
    shape = spaces.NetShape(4, 3, 1, 10, 8)
    built = spaces.create_space(space, shape)
    genotype = built.derive(torch.rand(built.layout.shape))
    cfg = resolve_eval_config({"epochs": 1, "channels": 4, "layers": 3, "batch_size": 512,
                               "eval_batch_size": 512, "out": str(tmp_path), "device": "cuda",
                               "threads": 1})
    moved: list[nn.Module] = []
    original = nn.Module.to

    def to(module: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
        moved.append(module)
        return original(module, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nn.Module, "to", to)
        out = train_from_scratch(cfg, "fake-cuda", genotype, progress=False,
                                 log=lambda _: None)
    assert 0.0 <= EvalFolder(out).result().test_acc <= 1.0
    net = moved[-1]
    _all_on_fake_cuda({**dict(net.named_parameters()), **dict(net.named_buffers())},
                      "the trained network")
