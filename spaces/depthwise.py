"""Depthwise convolution with a CPU backward made of forward convolutions.

Why: on the project's CPUs oneDNN's depthwise convolution BACKWARD is 5-25x slower than its
forward (measured with torch 2.14.1 on 2 cores), and the supernet spends most of a search
step there. The same gradients can be computed with forward convolutions, which oneDNN runs fast:

* input gradient: a depthwise convolution of the output gradient with the flipped kernel
  (stride > 1: the output gradient is first spread onto a zero grid with the stride's step);
* weight gradient: per (sample, channel), the correlation of the padded input with the
  output gradient, summed over the batch; computed as ONE grouped convolution whose groups
  are the N*C (sample, channel) pairs, whose kernel is the output gradient and whose stride
  and dilation are the forward's dilation and stride swapped.

Measured choice (2 cores, torch 2.14.1, batch 64, C 8-32, images 2-16 px, process CPU time
of one fwd+bwd, median of 100 calls; NCHW and channels_last alike):

================  ===================  ==========================  ========================
kernel            native backward      forward-conv backward       choice
================  ===================  ==========================  ========================
3x3, dilation 1   0.4-1.7 ms           0.55-1.0 ms (0.8-1.3x)      native
5x5, dilation 1   1.0-9.4 ms           0.4-1.3 ms (2-10x faster)   forward-conv (*)
3x3, dilation 2   1.8-6.7 ms           0.4-0.8 ms (4-10x faster)   forward-conv
5x5, dilation 2   3.2-12 ms            0.5-1.2 ms (5-15x faster)   forward-conv
any, stride 2     0.5-11 ms            0.7-1.8 ms (1x for 3x3)     as for stride 1
================  ===================  ==========================  ========================

(*) except the weight gradient on channels_last maps of 9-31 pixels (a tie).

Plain 3x3 kernels keep the native backward: there the two are within +-30% of each other
with no consistent winner, and the native one needs no extra memory.

Two further exact shortcuts, on the CPU only:

* kernel cropping: a tap that only ever reads the zero padding contributes exact zeros (and
  gets a zero gradient), so on small feature maps the kernel is cut to the taps that can
  reach the image. dil_conv_5x5 on a 2x2 map is a 1x1 kernel; oneDNN takes 2-3 ms for the
  uncropped forward there (a 9x9 footprint over a 2x2 image), the cropped op ~10 us.
* a 1x1 depthwise kernel is a per-channel scale: an element-wise multiply, not a conv call.

Both change which convolution is run, not its result (zero terms aside, the same sums), so
they are skipped while a dispatch mode is active: torch's FlopCounterMode (the suite's cost
counter, spaces/cost.py) must see the reference op (the full k x k kernel) to count the
multiply-adds of the DARTS code. On CUDA the plain F.conv2d (cuDNN) path is always used.
The backward skips the weight gradient when the autograd engine will not use it (DARTS's
architecture phase asks for the alpha gradient only).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def backward_plan(kernel: int, stride: int, dilation: int, size: int,
                  channels_last: bool) -> tuple[bool, bool]:
    """(input gradient by a forward conv, weight gradient by a forward conv) for a kernel
    (already cropped / subsampled) on a map of ``size`` pixels a side.

    The rule of the module docstring's table: the flipped-kernel conv for every stride-1
    input gradient; the folded correlation for the weight gradient of dilated kernels, of
    every kernel on maps of at most 2 pixels, and of 5x5+ kernels except on channels_last
    maps of 9 to 31 pixels (a tie there, and the native one needs no extra memory). At 32+
    pixels in channels_last the folded one wins: a whole DARTS step at 32x32x3 (C=8,
    5 cells, batch 64, 1 thread) is 7-9% faster with it, measured in one process.
    """
    by_conv_x = stride == 1
    if dilation > 1 or size <= 2:
        by_conv_w = True
    elif kernel <= 3:
        by_conv_w = False
    else:
        by_conv_w = size <= 8 or size >= 32 or not channels_last
    return by_conv_x, by_conv_w


def cropped_taps(size: int, out_size: int, kernel: int, stride: int, padding: int,
                 dilation: int) -> int:
    """How many taps can be cut from EACH end of the kernel along one axis.

    Tap ``a`` reads input row ``i * stride + a * dilation - padding`` for output row ``i``;
    it is useless when that row is outside ``[0, size)`` for every ``i < out_size``. Only a
    symmetric cut is made, so the padding stays symmetric and the output size unchanged.
    """
    def used(a: int) -> bool:
        lo = a * dilation - padding
        hi = (out_size - 1) * stride + lo
        return hi >= 0 and lo <= size - 1

    cut = 0
    while cut < (kernel - 1) // 2 and not used(cut) and not used(kernel - 1 - cut):
        cut += 1
    return cut


def _input_grad(grad_out: torch.Tensor, weight: torch.Tensor, in_h: int, in_w: int,
                stride: int, padding: int, dilation: int) -> torch.Tensor:
    """d loss / d input as a forward depthwise conv with the flipped kernel."""
    channels, kernel = weight.shape[0], weight.shape[-1]
    pad = dilation * (kernel - 1) - padding
    flipped = weight.flip(-1, -2)
    if stride == 1:
        return F.conv2d(grad_out, flipped, None, 1, pad, dilation, channels)
    n, _, out_h, out_w = grad_out.shape
    span_h, span_w = (out_h - 1) * stride + 1, (out_w - 1) * stride + 1
    # Rows/columns of the input that no output window reached (floor in the output size).
    extra_h = in_h - (span_h + dilation * (kernel - 1) - 2 * padding)
    extra_w = in_w - (span_w + dilation * (kernel - 1) - 2 * padding)
    grid = torch.empty(n, channels, span_h + extra_h + 2 * pad, span_w + extra_w + 2 * pad,
                       dtype=grad_out.dtype, device=grad_out.device,
                       memory_format=_memory_format(grad_out)).zero_()
    grid[:, :, pad:pad + span_h:stride, pad:pad + span_w:stride] = grad_out
    return F.conv2d(grid, flipped, None, 1, 0, dilation, channels)


def _weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kernel: int, stride: int,
                 padding: int, dilation: int) -> torch.Tensor:
    """d loss / d weight: one grouped conv over the N*C (sample, channel) pairs."""
    n, c, h, w = x.shape
    out_h, out_w = grad_out.shape[-2:]
    folded = x.reshape(1, n * c, h, w)
    taps = grad_out.reshape(n * c, 1, out_h, out_w)
    corr = F.conv2d(folded, taps, None, dilation, padding, stride, n * c)
    return corr[0, :, :kernel, :kernel].reshape(n, c, kernel, kernel).sum(0).unsqueeze(1)


def _memory_format(t: torch.Tensor) -> torch.memory_format:
    if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(
            memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class DepthwiseConvFn(torch.autograd.Function):
    """Depthwise conv whose backward computes each gradient the faster way (module docstring).

    ``by_conv``: (input gradient by a forward conv, weight gradient by a forward conv); a
    gradient not computed by a forward conv comes from oneDNN's own backward kernel.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                dilation: int, by_conv: tuple[bool, bool] = (True, True)) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, by_conv)
        return F.conv2d(x, weight, None, stride, padding, dilation, x.shape[1])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, dilation, (conv_x, conv_w) = ctx.conf
        need_x = ctx.needs_input_grad[0]
        need_w = ctx.needs_input_grad[1] and _engine_needs(ctx, 1)
        grad_x = grad_w = None
        native = [need_x and not conv_x, need_w and not conv_w, False]
        if any(native):
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [stride] * 2, [padding] * 2, [dilation] * 2, False,
                [0, 0], x.shape[1], native)
        if need_x and conv_x:
            grad_x = _input_grad(grad_out, weight, x.shape[-2], x.shape[-1], stride, padding,
                                 dilation)
        if need_w and conv_w:
            grad_w = _weight_grad(x, grad_out, weight.shape[-1], stride, padding, dilation)
        return grad_x, grad_w, None, None, None, None


def _engine_needs(ctx: Any, index: int) -> bool:
    """False when the running backward will not use input ``index``'s gradient.

    ``needs_input_grad`` is fixed at forward time; ``torch.autograd.grad(loss, [alpha])``
    does not want the weight gradients, and computing them is half the backward's work.
    """
    node = ctx.next_functions[index][0]
    if node is None:
        return False
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):  # private API: if it changes, compute the gradient
        return True


class SubsampleFn(torch.autograd.Function):
    """``x[:, :, ::s, ::s]`` whose gradient keeps ``x``'s memory format.

    (The slice's own backward scatters into an NCHW zero tensor, which would turn a
    channels_last network's gradients NCHW from there on.)
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, step: int) -> torch.Tensor:
        ctx.step, ctx.shape, ctx.format = step, x.shape, _memory_format(x)
        return x[:, :, ::step, ::step].contiguous(memory_format=ctx.format)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        step = ctx.step
        full = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device,
                           memory_format=ctx.format).zero_()
        full[:, :, ::step, ::step] = grad
        return full, None


def _out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _plain(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
           dilation: int) -> torch.Tensor:
    return F.conv2d(x, weight, None, stride, padding, dilation, weight.shape[0])


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                   dilation: int) -> torch.Tensor:
    """Depthwise 2-D convolution of ``x`` (N, C, H, W) with ``weight`` (C, 1, k, k).

    Same values and gradients as ``F.conv2d(..., groups=C)``; on the CPU the kernel is
    cropped to the taps that reach the image and the backward is chosen per kernel.
    """
    if (x.device.type != "cpu" or torch._C._len_torch_dispatch_stack() > 0
            or torch.is_autocast_enabled("cpu")):
        return _plain(x, weight, stride, padding, dilation)
    kernel = weight.shape[-1]
    if weight.shape[-2] != kernel:
        return _plain(x, weight, stride, padding, dilation)
    if stride > 1 and dilation % stride == 0 and padding % stride == 0 and all(
            _out_size(size, kernel, stride, padding, dilation)
            == _out_size(-(-size // stride), kernel, 1, padding // stride, dilation // stride)
            for size in x.shape[-2:]):
        # Only every stride-th row and column is ever read (dil_conv at stride 2): the same
        # conv at stride 1 on the subsampled map, without a zero-stuffed backward.
        x = SubsampleFn.apply(x, stride)
        stride, padding, dilation = 1, padding // stride, dilation // stride
    cut = min(cropped_taps(size, _out_size(size, kernel, stride, padding, dilation), kernel,
                           stride, padding, dilation) for size in x.shape[-2:])
    if cut:
        weight = weight[:, :, cut:kernel - cut, cut:kernel - cut]
        kernel -= 2 * cut
        padding -= cut * dilation
    if kernel == 1 and padding == 0:
        if stride > 1:
            x = SubsampleFn.apply(x, stride)
        return x * weight.reshape(1, -1, 1, 1)
    if not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return _plain(x, weight, stride, padding, dilation)
    plan = backward_plan(kernel, stride, dilation, max(x.shape[-2:]),
                         _memory_format(x) == torch.channels_last)
    if not any(plan) or dilation * (kernel - 1) < padding:
        return _plain(x, weight, stride, padding, dilation)
    return DepthwiseConvFn.apply(x, weight, stride, padding, dilation, plan)
