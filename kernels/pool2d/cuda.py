"""2-D max and average pooling as numba.cuda kernels.

Same functions and arguments as :mod:`kernels.pool2d.reference`, which they are tested against
(in Numba's CUDA simulator when there is no GPU). Each function takes host (NumPy) arrays or numba
CUDA device arrays: device in, device out (nothing is copied back); host in, host out.

How the work is split: one thread per element of the array being *written*, numbered by
``cuda.grid(1)`` and turned back into (n, c, row, column) with ``kernels._jit.unravel4``; threads past
the end of the array return at once (the bounds check). The launch configuration and the host/device
moves are shared by the three CUDA modules (``kernels/_cuda.py``); sums start from ``kernels._jit.ZERO``.

- Forward: one thread per output element; it reads its window.
- Backward: one thread per *input* element; it gathers the gradient from every output that used it
  and writes its own dx element once. This is the "gather" form of a backward pass. Its alternative,
  the "scatter" form (one thread per output adding into its window, as :mod:`kernels.pool2d.cpu`
  does one plane per thread), would have threads of overlapping windows adding into the same dx
  element at the same time: it would need atomic adds, and floating-point atomics add in whatever
  order the threads arrive, so results would vary from run to run. The gather needs no atomics and
  is deterministic.

Window geometry: output (oh, ow) reads input rows ``oh * sh - ph ... oh * sh - ph + kh - 1`` (and the
same for columns). Turned around, input row h lies in the windows of the output rows oh with
``h + ph - kh + 1 <= oh * sh <= h + ph``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .._cuda import launch_config, on_device, to_caller, to_device
from .._jit import ZERO, unravel4


# --- kernels -------------------------------------------------------------------------------------

@cuda.jit
def _max_forward_kernel(x, kh, kw, sh, sw, ph, pw, y, argmax):
    """One thread per output element: the max of its window and the flat index h * W + w of it.

    Ties go to the first maximum in row-major order (only a strictly larger value replaces the running
    best); a NaN replaces a number (NaN propagates).
    """
    t = cuda.grid(1)
    _, channels, out_h, out_w = y.shape
    height, width = x.shape[2], x.shape[3]
    if t >= y.size:
        return
    n, c, oh, ow = unravel4(t, channels, out_h, out_w)
    h_lo = max(oh * sh - ph, 0)                        # the window's real rows: h_lo .. h_hi - 1
    h_hi = min(oh * sh - ph + kh, height)
    w_lo = max(ow * sw - pw, 0)
    w_hi = min(ow * sw - pw + kw, width)
    best = x[n, c, h_lo, w_lo]
    best_at = h_lo * width + w_lo
    for h in range(h_lo, h_hi):
        for w in range(w_lo, w_hi):
            v = x[n, c, h, w]
            if v > best or (math.isnan(v) and not math.isnan(best)):
                best = v
                best_at = h * width + w
    y[n, c, oh, ow] = best
    argmax[n, c, oh, ow] = best_at


@cuda.jit
def _max_backward_kernel(g, argmax, dx):
    """One thread per input element: the sum of g over the outputs whose argmax is this element.

    The window geometry is not among max_backward's arguments, so the thread cannot list the few
    windows that contain it; it scans every output of its (n, c) plane (Ho * Wo comparisons, read
    from cache by all threads of the plane) and adds the g of those that chose it.
    """
    t = cuda.grid(1)
    _, channels, height, width = dx.shape
    out_h, out_w = g.shape[2], g.shape[3]
    if t >= dx.size:
        return
    n, c, h, w = unravel4(t, channels, height, width)
    me = h * width + w
    total = ZERO
    for oh in range(out_h):
        for ow in range(out_w):
            if argmax[n, c, oh, ow] == me:
                total += g[n, c, oh, ow]
    dx[n, c, h, w] = total


@cuda.jit
def _avg_forward_kernel(x, kh, kw, sh, sw, ph, pw, area, y):
    """One thread per output element: (sum of the window's real elements) / area (= kh * kw)."""
    t = cuda.grid(1)
    _, channels, out_h, out_w = y.shape
    height, width = x.shape[2], x.shape[3]
    if t >= y.size:
        return
    n, c, oh, ow = unravel4(t, channels, out_h, out_w)
    total = ZERO
    for h in range(max(oh * sh - ph, 0), min(oh * sh - ph + kh, height)):
        for w in range(max(ow * sw - pw, 0), min(ow * sw - pw + kw, width)):
            total += x[n, c, h, w]
    y[n, c, oh, ow] = total / area


@cuda.jit
def _avg_backward_kernel(g, kh, kw, sh, sw, ph, pw, area, dx):
    """One thread per input element: the sum of g / area over the windows that contain it.

    Input row h is in the window of output row oh when h + ph - kh + 1 <= oh * sh <= h + ph, i.e. for
    oh from ceil((h + ph - kh + 1) / sh) to floor((h + ph) / sh), clipped to 0 .. Ho - 1.
    """
    t = cuda.grid(1)
    _, channels, height, width = dx.shape
    out_h, out_w = g.shape[2], g.shape[3]
    if t >= dx.size:
        return
    n, c, h, w = unravel4(t, channels, height, width)
    first_h = h + ph - kh + 1                           # the lowest oh * sh whose window reaches row h
    oh_lo = 0 if first_h <= 0 else (first_h + sh - 1) // sh
    oh_hi = min((h + ph) // sh, out_h - 1)
    first_w = w + pw - kw + 1
    ow_lo = 0 if first_w <= 0 else (first_w + sw - 1) // sw
    ow_hi = min((w + pw) // sw, out_w - 1)
    total = ZERO
    for oh in range(oh_lo, oh_hi + 1):
        for ow in range(ow_lo, ow_hi + 1):
            total += g[n, c, oh, ow]
    dx[n, c, h, w] = total / area


# --- the backend's functions: those of kernels.pool2d.reference, with the same arguments -----------

def _max_pool(x, geometry):
    """(y, argmax) as device arrays."""
    n, c, h, w = x.shape
    out_shape = (n, c, *geometry.output_hw(h, w))
    y = cuda.device_array(out_shape, dtype=x.dtype)
    argmax = cuda.device_array(out_shape, dtype=np.int64)
    _max_forward_kernel[launch_config(y.size)](to_device(x), *geometry.kernel_size, *geometry.stride,
                                               *geometry.padding, y, argmax)
    return y, argmax


def max_forward(x, geometry):
    """Max pooling: ``(y, argmax)``; see :func:`kernels.pool2d.max_pool2d_forward`."""
    y, argmax = _max_pool(x, geometry)
    return to_caller(y, on_device(x)), to_caller(argmax, on_device(x))


def max_values(x, geometry):
    """Max pooling's ``y`` alone (the argmax stays on the device, dropped)."""
    return to_caller(_max_pool(x, geometry)[0], on_device(x))


def max_backward(g, argmax, input_shape):
    """Gradient of max pooling: each input element gathers the g of the windows that chose it."""
    dx = cuda.device_array(tuple(input_shape), dtype=g.dtype)
    _max_backward_kernel[launch_config(dx.size)](to_device(g), to_device(argmax), dx)
    return to_caller(dx, on_device(g))


def max_scatter(g, x, geometry):
    """max_backward's dx for the argmax that max_forward finds in x (the argmax stays on the device)."""
    argmax = _max_pool(x, geometry)[1]
    dx = cuda.device_array(tuple(x.shape), dtype=g.dtype)
    _max_backward_kernel[launch_config(dx.size)](to_device(g), argmax, dx)
    return to_caller(dx, on_device(g))


def avg_forward(x, geometry):
    """Average pooling (zero padding counted in the divisor kh * kw)."""
    n, c, h, w = x.shape
    out_shape = (n, c, *geometry.output_hw(h, w))
    y = cuda.device_array(out_shape, dtype=x.dtype)
    (kh, kw), stride, padding = geometry.kernel_size, geometry.stride, geometry.padding
    area = np.dtype(x.dtype).type(kh * kw)
    _avg_forward_kernel[launch_config(y.size)](to_device(x), kh, kw, *stride, *padding, area, y)
    return to_caller(y, on_device(x))


def avg_backward(g, input_shape, geometry):
    """Gradient of average pooling: each input element gathers g / (kh * kw) from its windows."""
    dx = cuda.device_array(tuple(input_shape), dtype=g.dtype)
    (kh, kw), stride, padding = geometry.kernel_size, geometry.stride, geometry.padding
    area = np.dtype(g.dtype).type(kh * kw)
    _avg_backward_kernel[launch_config(dx.size)](to_device(g), kh, kw, *stride, *padding, area, dx)
    return to_caller(dx, on_device(g))
