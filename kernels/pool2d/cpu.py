"""2-D max and average pooling, Numba CPU-parallel.

Same functions and arguments as :mod:`kernels.pool2d.reference`, which they are tested against.

How the work is split: the input is viewed as N * C independent planes of H x W, and ``prange``
hands whole planes to the threads. Each thread writes only to its own plane, so the backward
passes can *scatter* (add a window's gradient into the input positions it came from) without two
threads ever touching the same element: no atomics, no locks, and the additions happen in the same
order on every run, so results are identical run to run. Inside a plane the loops are plain scalar
loops (no array expressions inside prange bodies: they would allocate a temporary per iteration).

Window geometry, used by every kernel: output (oh, ow) reads input rows
``oh * sh - ph ... oh * sh - ph + kh - 1`` and columns ``ow * sw - pw ... ow * sw - pw + kw - 1``;
the rows and columns outside 0..H-1, 0..W-1 are padding and are skipped (padding never wins a max and
adds zero to a sum).

The compiled code is cached on disk (``cache=True``), one version per dtype (float32, float64).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from .._checks import argmax_range_error
from .._cache import njit, sized
from .._jit import ZERO
from .._recycle import empty as recycled
from .windows import scatter_row, tiles_2x2

#: No BLAS call here: the entry points call these functions directly (kernels.runtime.host_kernels).
BLAS_FREE = True

U = np.uint64   # an index compared as unsigned (see _max_backward_planes)

#: max_backward refuses an argmax index outside its plane itself, while it reads argmax (no pass of its
#: own): the entry point (kernels.pool2d) leaves that check to it.
CHECKS_ARGMAX = True


# --- the compiled kernels: planes of shape (N * C, H, W) -----------------------------------------

@njit(cache=True)
def _first_nan(x, p, h_lo, h_hi, w_lo, w_hi, width):
    """The flat index of the first NaN in row-major order of the window (one is known to be there)."""
    for h in range(h_lo, h_hi):
        for w in range(w_lo, w_hi):
            if x[p, h, w] != x[p, h, w]:
                return h * width + w
    return -1


@njit(parallel=True, cache=True)
def _max_forward_planes(x, kh, kw, sh, sw, ph, pw, y, argmax):
    """y[p, oh, ow] = max of window (oh, ow) of plane p; argmax = its flat index h * W + w.

    The running best starts at the window's first real element and is replaced only by a strictly
    larger one, so ties go to the first maximum in row-major order. A NaN wins (it propagates, as
    in torch): the loop only notes that it saw one (``v != v``, no branch), and such a window is
    scanned again for its first NaN. Keeping the inner loop to one comparison and one select
    matters: with a short-circuit ``or`` for the NaN test it ran 3x slower, from mispredicted branches.
    """
    planes, height, width = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    for p in prange(planes):
        for oh in range(out_h):
            h0 = oh * sh - ph
            h_lo = h0 if h0 > 0 else 0                 # the window's real rows: h_lo .. h_hi - 1
            h_hi = h0 + kh if h0 + kh < height else height
            for ow in range(out_w):
                w0 = ow * sw - pw
                w_lo = w0 if w0 > 0 else 0
                w_hi = w0 + kw if w0 + kw < width else width
                best = x[p, h_lo, w_lo]
                best_at = h_lo * width + w_lo
                seen_nan = False
                for h in range(h_lo, h_hi):
                    for w in range(w_lo, w_hi):
                        v = x[p, h, w]
                        seen_nan |= v != v
                        if v > best:
                            best = v
                            best_at = h * width + w
                if seen_nan:
                    best_at = _first_nan(x, p, h_lo, h_hi, w_lo, w_hi, width)
                    best = x[p, best_at // width, best_at % width]
                y[p, oh, ow] = best
                argmax[p, oh, ow] = best_at


@njit(parallel=True, cache=True)
def _max_forward_2x2(x, y, argmax):
    """The same for the most common case, 2x2 windows with stride 2 and no padding, unrolled
    (4x faster here than the general loop, whose window bounds are only known at run time)."""
    planes, height, width = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    for p in prange(planes):
        for oh in range(out_h):
            h = 2 * oh
            for ow in range(out_w):
                w = 2 * ow
                best = x[p, h, w]
                best_at = h * width + w
                seen_nan = best != best
                v = x[p, h, w + 1]
                seen_nan |= v != v
                if v > best:
                    best, best_at = v, h * width + w + 1
                v = x[p, h + 1, w]
                seen_nan |= v != v
                if v > best:
                    best, best_at = v, (h + 1) * width + w
                v = x[p, h + 1, w + 1]
                seen_nan |= v != v
                if v > best:
                    best, best_at = v, (h + 1) * width + w + 1
                if seen_nan:
                    best_at = _first_nan(x, p, h, h + 2, w, w + 2, width)
                    best = x[p, best_at // width, best_at % width]
                y[p, oh, ow] = best
                argmax[p, oh, ow] = best_at


@njit(parallel=True, cache=True)
def _max_values_2x2(x, y):
    """y alone, for 2x2 windows with stride 2 and no padding: the running maximum only (one select per
    element, no index to follow), so a forward that needs no argmax writes a third of the bytes (no int64).
    A window holding a NaN takes its first NaN, as _max_forward_2x2 does: the same bits in y. The chain is
    written out in both: moved into one shared function, it was compiled to branches (both ran slower)."""
    planes, width = x.shape[0], x.shape[2]
    out_h, out_w = y.shape[1], y.shape[2]
    for p in prange(planes):
        for oh in range(out_h):
            h = 2 * oh
            for ow in range(out_w):
                w = 2 * ow
                best = x[p, h, w]
                seen_nan = best != best
                v = x[p, h, w + 1]
                seen_nan |= v != v
                best = v if v > best else best
                v = x[p, h + 1, w]
                seen_nan |= v != v
                best = v if v > best else best
                v = x[p, h + 1, w + 1]
                seen_nan |= v != v
                best = v if v > best else best
                if seen_nan:
                    at = _first_nan(x, p, h, h + 2, w, w + 2, width)
                    best = x[p, at // width, at % width]
                y[p, oh, ow] = best


@njit(parallel=True, cache=True)
def _max_backward_planes(g, argmax, dx):
    """dx[p, argmax[p, oh, ow]] += g[p, oh, ow] (dx: planes of H * W; each thread zeroes its plane
    first, so the zeros are written by the thread that adds into them, while the plane is in cache).

    Returns how many indices lay outside their plane (0 for an argmax from max_forward; they are
    skipped, and the caller raises): the range is checked here, while argmax is read anyway, rather
    than by passes of its own (NumPy's min and max of argmax took 0.12 ms beside this loop's 0.3 ms
    for the Keras CNN's first pooling, batch 128). The index is compared as unsigned, so a negative
    one is a huge one: one test for both ends. Each plane's arrays are taken as views once
    (indexing the 3-D arrays at every step instead was 1.3x slower here)."""
    outside = 0
    for p in prange(g.shape[0]):
        plane, grads, indices = dx[p], g[p], argmax[p]
        size = U(plane.size)
        for k in range(plane.size):
            plane[k] = ZERO
        strays = 0
        for oh in range(grads.shape[0]):
            for ow in range(grads.shape[1]):
                at = U(indices[oh, ow])
                if at < size:
                    plane[at] += grads[oh, ow]
                else:
                    strays += 1
        outside += strays
    return outside


@njit(parallel=True, cache=True)
def _max_scatter_2x2(g, x, dx):
    """dx for 2x2 windows with stride 2 and no padding, from g and x (windows.scatter_row, a row of windows
    at a time): max_backward's dx for max_forward's argmax, bit for bit; the column and row no window
    covers (an odd width or height) are 0."""
    planes, height, width = x.shape
    out_h, out_w = g.shape[1], g.shape[2]
    like, xa, ga, da = np.zeros(1, x.dtype)[0], x.ctypes.data, g.ctypes.data, dx.ctypes.data
    for p in prange(planes):
        for oh in range(out_h):
            top = (p * height + 2 * oh) * width
            scatter_row(like, xa, top, top + width, ga, (p * out_h + oh) * out_w, da, out_w)
            for w in range(2 * out_w, width):
                dx[p, 2 * oh, w] = ZERO
                dx[p, 2 * oh + 1, w] = ZERO
        for h in range(2 * out_h, height):
            for w in range(width):
                dx[p, h, w] = ZERO


@njit(parallel=True, cache=True)
def _avg_forward_planes(x, kh, kw, sh, sw, ph, pw, area, y):
    """y[p, oh, ow] = (sum of the window's real elements) / area, area = kh * kw in x's dtype."""
    planes, height, width = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    for p in prange(planes):
        for oh in range(out_h):
            h_lo = max(oh * sh - ph, 0)
            h_hi = min(oh * sh - ph + kh, height)
            for ow in range(out_w):
                w_lo = max(ow * sw - pw, 0)
                w_hi = min(ow * sw - pw + kw, width)
                total = ZERO         # the typed zero: a float32 sum stays float32 (kernels._jit)
                for h in range(h_lo, h_hi):
                    for w in range(w_lo, w_hi):
                        total += x[p, h, w]
                y[p, oh, ow] = total / area


@njit(parallel=True, cache=True)
def _avg_backward_planes(g, kh, kw, sh, sw, ph, pw, area, dx):
    """Each window adds g / area to each of its real elements (each thread zeroes its plane first)."""
    planes, height, width = dx.shape
    out_h, out_w = g.shape[1], g.shape[2]
    for p in prange(planes):
        for h in range(height):
            for w in range(width):
                dx[p, h, w] = ZERO
        for oh in range(out_h):
            h_lo = max(oh * sh - ph, 0)
            h_hi = min(oh * sh - ph + kh, height)
            for ow in range(out_w):
                w_lo = max(ow * sw - pw, 0)
                w_hi = min(ow * sw - pw + kw, width)
                share = g[p, oh, ow] / area
                for h in range(h_lo, h_hi):
                    for w in range(w_lo, w_hi):
                        dx[p, h, w] += share


# --- the backend's functions: NCHW in, NCHW out --------------------------------------------------

def max_forward(x, geometry):
    """Max pooling: ``(y, argmax)``; see :func:`kernels.pool2d.max_pool2d_forward`."""
    n, c, h, w = x.shape
    kernel, stride, padding = geometry.kernel_size, geometry.stride, geometry.padding
    out_h, out_w = geometry.output_hw(h, w)
    y = recycled((n * c, out_h, out_w), x.dtype)
    argmax = recycled((n * c, out_h, out_w), np.int64)
    planes = np.ascontiguousarray(x).reshape(n * c, h, w)
    if tiles_2x2(geometry):
        sized(_max_forward_2x2, x.size)(planes, y, argmax)
    else:
        sized(_max_forward_planes, x.size)(planes, *kernel, *stride, *padding, y, argmax)
    return y.reshape(n, c, out_h, out_w), argmax.reshape(n, c, out_h, out_w)


def max_values(x, geometry):
    """Max pooling's ``y`` alone (no argmax): max_forward's y, bit for bit."""
    if not tiles_2x2(geometry):
        return max_forward(x, geometry)[0]
    n, c, h, w = x.shape
    out_h, out_w = geometry.output_hw(h, w)
    y = recycled((n * c, out_h, out_w), x.dtype)
    sized(_max_values_2x2, x.size)(np.ascontiguousarray(x).reshape(n * c, h, w), y)
    return y.reshape(n, c, out_h, out_w)


def max_backward(g, argmax, input_shape):
    """Gradient of max pooling: g routed to the argmax positions, overlaps accumulated."""
    n, c, h, w = input_shape
    out_h, out_w = g.shape[2:]
    dx = recycled((n * c, h * w), g.dtype)
    planes = np.ascontiguousarray(g).reshape(n * c, out_h, out_w)
    indices = np.ascontiguousarray(argmax).reshape(n * c, out_h, out_w)
    if sized(_max_backward_planes, dx.size)(planes, indices, dx):
        raise argmax_range_error(argmax, input_shape)
    return dx.reshape(n, c, h, w)


def max_scatter(g, x, geometry):
    """max_backward(g, max_forward(x, geometry)[1], x.shape) without the argmax array: for 2x2 windows with
    stride 2 and no padding, one pass over x and g (_max_scatter_2x2); other windows, those two calls."""
    if not tiles_2x2(geometry):
        return max_backward(g, max_forward(x, geometry)[1], x.shape)
    n, c, h, w = x.shape
    out_h, out_w = g.shape[2:]
    dx = recycled((n * c, h, w), g.dtype)
    sized(_max_scatter_2x2, dx.size)(np.ascontiguousarray(g).reshape(n * c, out_h, out_w),
                                     np.ascontiguousarray(x).reshape(n * c, h, w), dx)
    return dx.reshape(n, c, h, w)


def avg_forward(x, geometry):
    """Average pooling (zero padding counted in the divisor kh * kw)."""
    n, c, h, w = x.shape
    (kh, kw), stride, padding = geometry.kernel_size, geometry.stride, geometry.padding
    out_h, out_w = geometry.output_hw(h, w)
    y = recycled((n * c, out_h, out_w), x.dtype)
    area = x.dtype.type(kh * kw)
    sized(_avg_forward_planes, x.size)(np.ascontiguousarray(x).reshape(n * c, h, w), kh, kw, *stride, *padding, area, y)
    return y.reshape(n, c, out_h, out_w)


def avg_backward(g, input_shape, geometry):
    """Gradient of average pooling: each window shares its g equally among its kh * kw places."""
    n, c, h, w = input_shape
    (kh, kw), stride, padding = geometry.kernel_size, geometry.stride, geometry.padding
    out_h, out_w = g.shape[2:]
    dx = recycled((n * c, h, w), g.dtype)
    area = g.dtype.type(kh * kw)
    sized(_avg_backward_planes, dx.size)(np.ascontiguousarray(g).reshape(n * c, out_h, out_w), kh, kw, *stride,
                                         *padding, area, dx)
    return dx.reshape(n, c, h, w)
