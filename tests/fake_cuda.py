"""A fake CUDA device for CPU machines: tensors that say ``cuda:0`` and compute on the CPU.

Why: the suite's ``--device cuda`` path (tests/test_gpu.py) only runs where a GPU is, so a
tensor created on the CPU inside a step, or a ``.cpu()`` that leaves an operand behind, would
only fail on a GPU machine. Under :func:`fake_cuda` the same code path runs on a CPU, and any
op that mixes a CUDA tensor with a CPU tensor raises CUDA's own error ("Expected all tensors to
be on the same device"), so CI catches such a bug.

How (why not FakeTensorMode): FakeTensorMode has no data (the supernet's CPU mask is read
with ``.tolist()``, the loop logs ``.item()``), and a tensor whose C++ device is CUDA cannot
go through autograd on a machine without a driver (the engine asks CUDA for the current
stream of every CUDA input). So a :class:`FakeCudaTensor` is a wrapper subclass whose C++
device is the CPU (autograd, optimisers and autocast work unchanged) around a real CPU tensor;
what Python sees is CUDA (``.device``, ``.is_cuda``), and its ``__torch_dispatch__``, which
also sees every op autograd runs in a backward, refuses CPU operands before it runs the op on
the wrapped data and wraps the results. A :class:`torch.overrides.TorchFunctionMode` turns
``device="cuda"`` factories, ``.to("cuda")``, ``.cuda()`` and ``.cpu()`` into tags (moves that
autograd differentiates through; ``Module.to`` swaps each parameter in place, so that it keeps
its identity as on CUDA); in a backward the tensors the autograd engine makes itself (zeros
for a missing gradient) go on the device (:class:`EngineFactories`); ``torch.cuda``'s and
``torch.accelerator``'s device queries, CUDA's random state and ``torch.autocast("cuda")``
are patched for the block.

What is real and what is not:

* the device rules: like CUDA, an op refuses a CPU tensor beside a CUDA one except a 0-dim
  CPU tensor (a scalar), CPU index tensors of advanced indexing, and the cross-device copies
  (``copy_``, ``.to``); a factory given ``device="cuda"`` and a CPU generator raises as on CUDA;
  ``.numpy()`` of a CUDA tensor raises as on CUDA. (A 0-dim CPU operand is allowed for every
  op here, where CUDA allows it for element-wise ops only.)
* AMP: ``torch.autocast("cuda", dtype)`` runs as CPU autocast with the same dtype (CUDA's
  default, float16, when none is given), so the low-precision forward and its backward really
  run, in the dtype the code asked for. The ops autocast lowers are CPU autocast's list (the
  convolutions and matrix products, as on CUDA; CUDA's list has a few more).
* not covered: kernels (the CPU's run: cuDNN's algorithms, TF32, CUDA's numerics), streams and
  asynchrony (``non_blocking`` copies are synchronous), memory, the optimisers' foreach and
  fused CUDA paths (a subclass makes torch take the per-tensor path), and ``torch.save`` (a
  fake CUDA tensor is saved as its CPU data, where a real one is saved as a CUDA tensor).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")
aten = torch.ops.aten

#: ops that move data between devices: a CPU operand is what they are for
CROSS_DEVICE = frozenset({aten.copy_.default, aten._to_copy.default, aten.copy.default})
#: advanced indexing: CUDA takes index tensors on the CPU (their second argument)
CPU_INDICES = frozenset({aten.index.Tensor, aten.index_put_.default, aten.index_put.default,
                         aten._index_put_impl_.default, aten._unsafe_index.Tensor})

#: in-place ops that change a tensor's shape or strides, not its data (``matmul`` of a vector
#: calls ``squeeze_``): the wrapper's metadata must follow its data's
RESHAPE_IN_PLACE = frozenset({aten.squeeze_, aten.unsqueeze_, aten.t_, aten.transpose_,
                              aten.swapdims_, aten.swapaxes_, aten.as_strided_})
PYTHON_KEY = torch._C.DispatchKeySet(torch._C.DispatchKey.Python)


def mismatch(where: str, other: torch.device) -> RuntimeError:
    """CUDA's error for an op given tensors on two devices."""
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least two "
                        f"devices, cuda:0 and {other}! (fake CUDA: {where})")


class FakeCudaTensor(torch.Tensor):
    """A CPU tensor (``_data``) that says it is on ``cuda:0``; see the module's docstring."""

    _data: torch.Tensor
    # the dispatch level does the work; a __torch_function__ would see only Python calls
    __torch_function__ = torch._C._disabled_torch_function_impl

    @staticmethod
    def __new__(cls, data: torch.Tensor, requires_grad: bool = False) -> FakeCudaTensor:
        if isinstance(data, FakeCudaTensor) or data.device != CPU:
            raise TypeError(f"FakeCudaTensor wraps a CPU tensor, got {type(data).__name__} on "
                            f"{data.device}")
        out = torch.Tensor._make_wrapper_subclass(
            cls, data.size(), strides=data.stride(), storage_offset=data.storage_offset(),
            dtype=data.dtype, layout=data.layout, device=CPU, requires_grad=requires_grad)
        out._data = data
        return out

    # A traceable wrapper: Module.to() swaps a parameter for its moved copy in place
    # (torch.utils.swap_tensors), so that a parameter keeps its identity as on CUDA.
    def __tensor_flatten__(self) -> tuple[list[str], None]:
        return ["_data"], None

    @staticmethod
    def __tensor_unflatten__(inner: dict[str, torch.Tensor], meta: None, outer_size: Any,
                             outer_stride: Any) -> FakeCudaTensor:
        return FakeCudaTensor(inner["_data"])

    # what Python code reads: CUDA
    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return CUDA

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_cpu(self) -> bool:  # type: ignore[override]
        return False

    def get_device(self) -> int:  # type: ignore[override]
        return 0

    def tolist(self) -> Any:  # type: ignore[override]
        return self._data.tolist()  # as on CUDA: a copy to the host

    def numpy(self, *, force: bool = False) -> Any:  # type: ignore[override]
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to "
                        "copy the tensor to host memory first.")

    def __array__(self, dtype: Any = None) -> Any:
        return self.numpy()

    def __reduce_ex__(self, proto: Any) -> Any:  # torch.save: the CPU data (module docstring)
        return self._data.detach().__reduce_ex__(proto)

    def __deepcopy__(self, memo: dict[int, Any]) -> FakeCudaTensor:
        out = FakeCudaTensor(self._data.detach().clone(), self.requires_grad)
        memo[id(self)] = out
        return out

    def __repr__(self, *, tensor_contents: Any = None) -> str:  # type: ignore[override]
        return f"FakeCudaTensor({self._data!r}, device='cuda:0')"

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        flat, spec = tree_flatten((args, kwargs or {}))
        check_devices(func, args, kwargs or {}, flat)
        inner = {id(t._data): t for t in flat if type(t) is FakeCudaTensor}
        # (A ``device`` argument here names the C++ device, the CPU, for every tensor: an
        # explicit CPU result, ``zeros_like(x, device="cpu")``, is FakeCudaMode's to untag.)
        plain_args, plain_kwargs = tree_unflatten(
            [t._data if type(t) is FakeCudaTensor else t for t in flat], spec)
        out = func(*plain_args, **plain_kwargs)
        if func.overloadpacket in RESHAPE_IN_PLACE:  # the wrapper's own shape changes too
            with torch._C._ExcludeDispatchKeyGuard(PYTHON_KEY):
                func(*args, **(kwargs or {}))
            return args[0]

        def wrap(t: Any) -> Any:
            if type(t) is not torch.Tensor:
                return t
            same = inner.get(id(t))  # an in-place op returns its input
            return same if same is not None else FakeCudaTensor(t)

        return wrap(out) if type(out) is torch.Tensor else tree_map(wrap, out)


def check_devices(func: Any, args: tuple, kwargs: dict, flat: list[Any]) -> None:
    """Raise CUDA's error where ``func`` gets a CPU tensor beside a fake CUDA one (``flat``:
    the arguments' leaves)."""
    if func in CROSS_DEVICE:
        return
    if func in CPU_INDICES:
        flat = tree_flatten((args[0], *args[2:], kwargs))[0]
    if not any(type(t) is FakeCudaTensor for t in flat):
        return
    for t in flat:  # a 0-dim CPU tensor is a scalar: allowed
        if isinstance(t, torch.Tensor) and type(t) is not FakeCudaTensor and t.dim() > 0:
            raise mismatch(str(func), t.device)


class _ToCuda(torch.autograd.Function):
    """A CPU tensor's copy on the fake device; the gradient goes back to the CPU."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        return FakeCudaTensor(t.detach().clone())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _host(grad)


class _ToCpu(torch.autograd.Function):
    """A fake CUDA tensor's copy on the CPU; the gradient goes back to the fake device."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        return t._data.detach().clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad if isinstance(grad, FakeCudaTensor) else FakeCudaTensor(grad.contiguous())


def _host(t: torch.Tensor) -> torch.Tensor:
    return t._data.clone() if isinstance(t, FakeCudaTensor) else t


def to_device(t: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    """``t`` on ``device`` (None: where it is), differentiably."""
    if device is None or (device.type == "cuda") == isinstance(t, FakeCudaTensor):
        return t
    if device.type == "cuda":
        if t.device != CPU:
            raise RuntimeError(f"fake CUDA: cannot move a {t.device} tensor to CUDA")
        out = _ToCuda.apply(t)
    elif device == CPU:
        out = _ToCpu.apply(t)
    else:
        raise RuntimeError(f"fake CUDA: cannot move a CUDA tensor to {device}")
    return out


def _device_of(value: Any) -> torch.device | None:
    if value is None:
        return None
    device = torch.device(value) if not isinstance(value, int) else torch.device("cuda", value)
    if device.type == "cuda" and device.index not in (None, 0):
        raise RuntimeError(f"fake CUDA has one device, cuda:0 (asked for {device})")
    return CUDA if device.type == "cuda" else device


MOVES = frozenset({torch.Tensor.to, torch.Tensor.cuda, torch.Tensor.cpu})
#: the factories Python code calls (a call of one is never the autograd engine's own)
FACTORIES = frozenset({
    torch.zeros, torch.ones, torch.empty, torch.full, torch.rand, torch.randn, torch.randint,
    torch.randperm, torch.arange, torch.linspace, torch.logspace, torch.eye, torch.tensor,
    torch.as_tensor, torch.scalar_tensor, torch.empty_strided})
#: how many Python factory calls are under way (see EngineFactories)
_python_factories = [0]


class EngineFactories(TorchDispatchMode):
    """In a backward of a fake CUDA graph: the tensors the autograd engine makes itself on
    the device, as CUDA's engine would.

    Why: the engine fills a missing gradient with zeros made from the input's metadata, and
    a fake CUDA tensor's C++ device is the CPU, so without this the zeros would be a CPU
    tensor and its first op a (false) device mismatch. A factory that Python code calls in
    a custom backward is left on the CPU (FakeCudaMode counts those calls), so a CPU tensor
    created in a backward still raises. (Entered by :func:`_engine_run`.)"""

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if _python_factories[0] or any(isinstance(t, torch.Tensor)
                                       for t in tree_flatten((args, kwargs))[0]):
            return out
        return tree_map(lambda t: FakeCudaTensor(t) if type(t) is torch.Tensor
                        and t.device == CPU else t, out)




class FakeCudaMode(TorchFunctionMode):
    """Factories with ``device="cuda"`` and the device moves of every tensor, as tags."""

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in MOVES:
            return self._move(func, args, dict(kwargs))
        if func in FACTORIES or (kwargs.get("device") is not None
                                 and not isinstance(func, torch._ops.OpOverload)):
            # (an aten op called by a dispatch handler names the C++ device: not a request)
            _python_factories[0] += 1
            try:
                return self._factory(func, args, dict(kwargs))
            finally:
                _python_factories[0] -= 1
        return func(*args, **kwargs)

    @staticmethod
    def _factory(func: Callable, args: tuple, kwargs: dict) -> Any:
        device = _device_of(kwargs.get("device"))
        if device is None:
            return func(*args, **kwargs)
        if device.type != "cuda":  # an explicit CPU result, also of a fake CUDA tensor's op
            return tree_map(lambda t: to_device(t, device) if isinstance(t, torch.Tensor)
                            else t, func(*args, **kwargs))
        generator = kwargs.get("generator")
        if generator is not None and generator.device.type != "cuda":
            raise RuntimeError(f"Expected a 'cuda' device type for generator but found "
                               f"'{generator.device.type}' (fake CUDA: {func.__name__})")
        requires_grad = bool(kwargs.pop("requires_grad", False))
        kwargs["device"] = CPU
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) and not isinstance(out, FakeCudaTensor):
            out = FakeCudaTensor(out)
        return out.requires_grad_(requires_grad) if requires_grad else out

    @staticmethod
    def _move(func: Callable, args: tuple, kwargs: dict) -> Any:
        t, rest = args[0], args[1:]
        copy = bool(kwargs.pop("copy", False))
        if func is torch.Tensor.cpu:
            return to_device(t, CPU)
        if func is torch.Tensor.cuda:
            device = _device_of(rest[0] if rest else kwargs.get("device")) or CUDA
            return to_device(t, device)
        if rest and isinstance(rest[0], torch.Tensor):  # .to(other): other's device and dtype
            device, dtype, fmt = rest[0].device, rest[0].dtype, None
        else:
            device, dtype, _, fmt = torch._C._nn._parse_to(*rest, **kwargs)
        moved = to_device(t, _device_of(device))
        if dtype is None and fmt is None:
            return moved.clone() if copy and moved is t else moved
        options: dict[str, Any] = {"copy": copy and moved is t}
        if fmt is not None:
            options["memory_format"] = fmt
        return moved.to(dtype if dtype is not None else moved.dtype, **options)


class _RngState:
    """``torch.cuda``'s random state for one fake device (saved and put back by fork_rng)."""

    def __init__(self) -> None:
        self.state = torch.zeros(16, dtype=torch.uint8)

    def get(self, device: Any = "cuda") -> torch.Tensor:
        return self.state.clone()

    def set(self, state: torch.Tensor, device: Any = "cuda") -> None:
        self.state = state.clone()


def _engine_run(original: Callable[..., Any]) -> Callable[..., Any]:
    """The autograd engine's entry (under ``backward()`` and ``autograd.grad``): a backward
    of a fake CUDA graph runs with :class:`EngineFactories`, and with :class:`FakeCudaMode`
    for custom backwards' calls (the mode is off while it handles the call that got here)."""

    def run(outputs: Any, *args: Any, **kwargs: Any) -> Any:
        if not any(type(t) is FakeCudaTensor for t in tree_flatten(outputs)[0]):
            return original(outputs, *args, **kwargs)
        with EngineFactories(), FakeCudaMode():
            return original(outputs, *args, **kwargs)

    return run


class _Stream:
    """The fake device's one stream (the optimisers ask whether it captures a CUDA graph)."""

    def is_capturing(self) -> bool:
        return False

    def synchronize(self) -> None:
        pass


def _autocast(original: type) -> Callable[..., Any]:
    """``torch.autocast`` with ``cuda`` run as CPU autocast in the dtype CUDA's would use."""

    def autocast(device_type: str, dtype: torch.dtype | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> Any:
        if device_type == "cuda":
            dtype = dtype if dtype is not None else torch.get_autocast_dtype("cuda")
            device_type = "cpu"
        return original(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    return autocast


@contextlib.contextmanager
def fake_cuda() -> Iterator[None]:
    """Within the block this CPU machine has one CUDA device (see the module's docstring)."""
    rng = _RngState()
    patches = {
        "is_available": lambda: True, "device_count": lambda: 1, "current_device": lambda: 0,
        "is_bf16_supported": lambda *a, **k: True, "synchronize": lambda *a, **k: None,
        "get_device_name": lambda *a, **k: "fake CUDA (CPU)", "get_rng_state": rng.get,
        "set_rng_state": rng.set,
    }
    autocast = _autocast(torch.amp.autocast_mode.autocast)
    with contextlib.ExitStack() as stack:
        for name, value in patches.items():
            stack.enter_context(mock.patch.object(torch.cuda, name, value))
        stack.enter_context(mock.patch.object(torch.cuda, "is_current_stream_capturing",
                                              lambda: False))
        accelerator = {"is_available": lambda: True, "device_count": lambda: 1,
                       "current_device_index": lambda: 0, "synchronize": lambda *a, **k: None,
                       "current_stream": lambda *a, **k: _Stream()}
        for name, value in accelerator.items():
            stack.enter_context(mock.patch.object(torch.accelerator, name, value))
        stack.enter_context(mock.patch.object(torch, "autocast", autocast))
        stack.enter_context(mock.patch.object(torch.amp, "autocast", autocast))
        stack.enter_context(mock.patch.object(
            torch.autograd, "_engine_run_backward",
            _engine_run(torch.autograd._engine_run_backward)))
        stack.enter_context(FakeCudaMode())
        yield


def on_fake_cuda(t: torch.Tensor) -> bool:
    return isinstance(t, FakeCudaTensor)
